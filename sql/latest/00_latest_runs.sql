-- The run of record per scope, for analysts: `select * from latest_findings` instead of repeating "the newest good
-- run of this scope" in every question. In the default schema (main), so no prefix is needed: the views work
-- in any read-only session on the ledger (hotpatch-audit query, duckdb -readonly, DBeaver).
--
-- Latest = what hotpatch_audit.ledger.latest_run (the run `hotpatch-audit report` renders) takes, per scope:
-- the newest run by as_of (then start time) whose status is succeeded or incomplete. An incomplete run is the
-- run of record for its scope and as-of (a complete re-run would have superseded it) and is judged with its gaps
-- as unknown, never compliant; its status says so. Superseded, failed, running and loaded runs are never latest.
create or replace view main.latest_runs as
select
    run_id, scope, as_of, status, is_monthly, source, tool_version, calendar_version, started_at, finished_at, note
from meta.runs
where status in ('succeeded', 'incomplete')
qualify row_number() over (partition by scope order by as_of desc, started_at desc, run_id desc) = 1;
comment on view main.latest_runs is 'One row per scope: its run of record, the newest run by as_of (then started_at) with status succeeded or incomplete, as hotpatch_audit.ledger.latest_run and `hotpatch-audit report` choose it. Superseded, failed, running and loaded runs are never latest. status incomplete: a query failed or came back short, and the machines it left without data are judged unknown. Every other latest_* view holds the rows of these runs only.';
