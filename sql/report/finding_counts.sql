-- Report view: finding_counts
-- Reads: audit.findings
-- One row per run, audit and code: findings by status, ordered by code.
create or replace view report.finding_counts as
select
    run_id,
    audit,
    code,
    count(*) filter (where status = 'fail') as fail,
    count(*) filter (where status = 'warn') as warn,
    count(*) filter (where status = 'unknown') as unknown,
    count(*) filter (where status = 'waived') as waived,
    count(*) filter (where status = 'pass') as pass,
    count(*) as total,
    count(distinct machine_id) as machines
from audit.findings
where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
group by run_id, audit, code;

comment on view report.finding_counts is 'Per run, audit and code: findings by status (fail, warn, unknown, waived, pass), total, and distinct machines.';
