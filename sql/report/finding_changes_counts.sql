-- Report view: finding_changes_counts
-- Reads: audit.finding_run_pairs, audit.finding_changes_between (sql/audit/96_finding_changes.sql)
-- One row per run and audit (all four, zeros included): how findings changed since the previous good
-- monthly run of the same scope. previous_run_id is null for the first monthly run (nothing to compare).
create or replace view report.finding_changes_counts as
with audits (audit, audit_order) as (
    values
        ('reboot_avoidance', 1),
        ('missed_hotpatches', 2),
        ('wsus_misconfigurations', 3),
        ('vbs_blockers', 4)
),

changes as (
    select
        run_id,
        audit,
        count(*) filter (where change = 'new') as new,
        count(*) filter (where change = 'regressed') as regressed,
        count(*) filter (where change = 'still_open') as still_open,
        count(*) filter (where change = 'fixed') as fixed,
        count(*) filter (where change = 'unknown') as unknown,
        count(*) filter (where change = 'waived') as waived
    from audit.finding_changes_between(null, null)
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id, audit
)

select
    pairs.run_id,
    pairs.previous_run_id,
    pairs.previous_as_of,
    audits.audit,
    audits.audit_order,
    coalesce(changes.new, 0) as new,
    coalesce(changes.regressed, 0) as regressed,
    coalesce(changes.still_open, 0) as still_open,
    coalesce(changes.fixed, 0) as fixed,
    coalesce(changes.unknown, 0) as unknown,
    coalesce(changes.waived, 0) as waived
from audit.finding_run_pairs as pairs
cross join audits
left join changes on changes.run_id = pairs.run_id and changes.audit = audits.audit;

comment on view report.finding_changes_counts is 'Per run and audit (all four, zeros included, audit_order as in the report): findings new, regressed, still_open, fixed, unknown and waived since previous_run_id, the previous good monthly run of the same scope (null: first monthly run, nothing to compare).';
