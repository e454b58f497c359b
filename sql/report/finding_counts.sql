-- Report view: finding_counts
-- Reads: audit.findings
-- One row per run, audit and code: findings by lifecycle state (open now, closed in the period, past
-- outcomes, opportunities) and status (unknown, waived, pass), ordered by code.
create or replace view report.finding_counts as
select
    run_id,
    audit,
    code,
    count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open') as open,
    count(*) filter (where status in ('fail', 'warn') and state = 'closed') as closed,
    count(*) filter (where status in ('fail', 'warn') and state = 'past') as past,
    count(*) filter (where status in ('fail', 'warn') and state = 'opportunity') as opportunity,
    count(*) filter (where status = 'fail') as fail,
    count(*) filter (where status = 'warn') as warn,
    count(*) filter (where status = 'unknown') as unknown,
    count(*) filter (where status = 'waived') as waived,
    count(*) filter (where status = 'pass') as pass,
    count(*) as total,
    count(distinct machine_id) as machines,
    count(distinct machine_id) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open') as open_machines
from audit.findings
where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
group by run_id, audit, code;

comment on view report.finding_counts is 'Per run, audit and code: findings by lifecycle (open: fail or warn still open at the as-of time; closed: resolved since, in the period''s register; past: a past month''s outcome; opportunity: avoidable_reboot) and by status (fail, warn, unknown, waived, pass), total, distinct machines and machines with an open finding (open_machines).';
