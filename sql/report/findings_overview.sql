-- Report view: findings_overview
-- Reads: meta.runs, ref.audits, audit.findings, report.action_items
-- One row per run and audit (all four, zero included): findings by status, open findings (fail, warn
-- with state open) by severity, the period's closed findings, past outcomes and opportunities, and the
-- open actions the section lists (report.action_items).
create or replace view report.findings_overview as
with audits as (
    -- every audit of the metadata files (sql/audit/*.toml), in report order
    select audit, audit_order from ref.audits
),

counts as (
    select
        run_id,
        audit,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open') as open,
        count(*) filter (where status = 'fail' and coalesce(state, 'open') = 'open') as fail,
        count(*) filter (where status = 'warn' and coalesce(state, 'open') = 'open') as warn,
        count(*) filter (where state = 'closed' and status <> 'waived') as closed,
        count(*) filter (where state = 'past' and status <> 'waived') as past,
        count(*) filter (where state = 'opportunity' and status <> 'waived') as opportunity,
        count(*) filter (where status = 'unknown') as unknown,
        count(*) filter (where status = 'waived') as waived,
        count(*) filter (where status = 'pass') as pass,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'critical') as critical,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'high') as high,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'medium') as medium,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'low') as low,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'info') as info,
        count(*) as total
    from audit.findings
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id, audit
),

actions as (
    select run_id, audit, count(*) as actions, count(*) filter (where status in ('fail', 'warn')) as actions_open
    from report.action_items
    where list_kind = 'action'
    group by run_id, audit
)

select
    runs.run_id,
    audits.audit,
    audits.audit_order,
    coalesce(counts.open, 0) as open,
    coalesce(actions.actions, 0) as actions,
    coalesce(actions.actions_open, 0) as actions_open,
    coalesce(counts.fail, 0) as fail,
    coalesce(counts.warn, 0) as warn,
    coalesce(counts.unknown, 0) as unknown,
    coalesce(counts.waived, 0) as waived,
    coalesce(counts.pass, 0) as pass,
    coalesce(counts.closed, 0) as closed,
    coalesce(counts.past, 0) as past,
    coalesce(counts.opportunity, 0) as opportunity,
    coalesce(counts.critical, 0) as critical,
    coalesce(counts.high, 0) as high,
    coalesce(counts.medium, 0) as medium,
    coalesce(counts.low, 0) as low,
    coalesce(counts.info, 0) as info,
    coalesce(counts.total, 0) as total
from meta.runs as runs
cross join audits
left join counts on counts.run_id = runs.run_id and counts.audit = audits.audit
left join actions on actions.run_id = runs.run_id and actions.audit = audits.audit;

comment on view report.findings_overview is 'Per run and audit (every audit of ref.audits, zero included, audit_order as in the report): findings by status (open = fail + warn still open at the as-of time, unknown, waived, pass), open findings by severity (critical ... info), the period''s closed findings, past outcomes (past) and opportunities, and actions: the open actions the section lists (one per machine and root cause), actions_open: those of them to fix (fail or warn; the rest wait for current data).';
