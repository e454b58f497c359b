-- Report view: findings_overview
-- Reads: meta.runs, audit.findings
-- One row per run and audit (all four, zero included): findings by status, and open findings
-- (fail, warn) by severity.
create or replace view report.findings_overview as
with audits (audit, audit_order) as (
    values ('reboot_avoidance', 1), ('missed_hotpatches', 2), ('wsus_misconfigurations', 3), ('vbs_blockers', 4)
),

counts as (
    select
        run_id,
        audit,
        count(*) filter (where status in ('fail', 'warn')) as open,
        count(*) filter (where status = 'fail') as fail,
        count(*) filter (where status = 'warn') as warn,
        count(*) filter (where status = 'unknown') as unknown,
        count(*) filter (where status = 'waived') as waived,
        count(*) filter (where status = 'pass') as pass,
        count(*) filter (where status in ('fail', 'warn') and severity = 'critical') as critical,
        count(*) filter (where status in ('fail', 'warn') and severity = 'high') as high,
        count(*) filter (where status in ('fail', 'warn') and severity = 'medium') as medium,
        count(*) filter (where status in ('fail', 'warn') and severity = 'low') as low,
        count(*) filter (where status in ('fail', 'warn') and severity = 'info') as info,
        count(*) as total
    from audit.findings
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id, audit
)

select
    runs.run_id,
    audits.audit,
    audits.audit_order,
    coalesce(counts.open, 0) as open,
    coalesce(counts.fail, 0) as fail,
    coalesce(counts.warn, 0) as warn,
    coalesce(counts.unknown, 0) as unknown,
    coalesce(counts.waived, 0) as waived,
    coalesce(counts.pass, 0) as pass,
    coalesce(counts.critical, 0) as critical,
    coalesce(counts.high, 0) as high,
    coalesce(counts.medium, 0) as medium,
    coalesce(counts.low, 0) as low,
    coalesce(counts.info, 0) as info,
    coalesce(counts.total, 0) as total
from meta.runs as runs
cross join audits
left join counts on counts.run_id = runs.run_id and counts.audit = audits.audit;

comment on view report.findings_overview is 'Per run and audit (all four, zero included, audit_order as in the report): findings by status (open = fail + warn, unknown, waived, pass) and open findings by severity (critical ... info).';
