-- Report view: coverage_summary
-- Reads: meta.runs, meta.query_stats, core.machines, audit.coverage, audit.findings
-- One row per run: is the collection complete? A run is complete only when it succeeded, every query
-- returned complete results without error, and no machine in scope has missing or stale data.
create or replace view report.coverage_summary as
with queries as (
    select
        run_id,
        count(*) as queries_total,
        count(*) filter (where not complete or error is not null) as queries_incomplete
    from meta.query_stats
    group by run_id
),

machines as (
    select run_id, count(*) filter (where os_family = 'windows') as machines_in_scope
    from core.machines
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id
),

gaps as (
    select run_id, count(distinct machine_id) as machines_with_gaps
    from audit.coverage as c
    where (getvariable('report_owner') is null or exists (select 1 from audit.readiness as r where r.run_id = c.run_id
        and r.machine_id = c.machine_id and coalesce(r.owner, '(no owner tag)') = getvariable('report_owner')))
    group by run_id
),

unknowns as (
    select run_id, count(*) as unknown_findings
    from audit.findings
    where status = 'unknown' and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id
)

select
    runs.run_id,
    runs.status as run_status,
    -- the error of a failed run; else the note of a run that replaced, or was kept beside, another of its
    -- scope and as-of (meta.runs.note), so the report says which run is the run of record
    coalesce(runs.error, runs.note) as run_error,
    coalesce(queries.queries_total, 0) as queries_total,
    coalesce(queries.queries_incomplete, 0) as queries_incomplete,
    coalesce(machines.machines_in_scope, 0) as machines_in_scope,
    coalesce(gaps.machines_with_gaps, 0) as machines_with_gaps,
    coalesce(unknowns.unknown_findings, 0) as unknown_findings,
    runs.status = 'succeeded' and coalesce(queries.queries_incomplete, 0) = 0 as collection_complete,
    runs.status = 'succeeded' and coalesce(queries.queries_incomplete, 0) = 0
        and coalesce(gaps.machines_with_gaps, 0) = 0 as is_complete
from meta.runs as runs
left join queries using (run_id)
left join machines using (run_id)
left join gaps using (run_id)
left join unknowns using (run_id);

comment on view report.coverage_summary is 'One row per run: run_status and run_error (the run''s error, else its note: which run of the same scope and as-of it replaced or was kept beside), queries_total and queries_incomplete (not complete or with an error), Windows machines_in_scope, machines_with_gaps (any audit.coverage issue), unknown_findings, collection_complete (run succeeded and every query complete) and is_complete (collection complete and no machine with gaps).';
