-- Report view: finding_changes_items
-- Reads: audit.finding_changes_between (sql/audit/96_finding_changes.sql)
-- The new and regressed findings of each run since its previous good monthly run, with the report's
-- sort order as item_rank (regressed first, then by severity, month, machine) and the run's total.
create or replace view report.finding_changes_items as
with items as (
    select
        *,
        case change when 'regressed' then 0 else 1 end as change_rank,
        case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end
            as severity_rank
    from audit.finding_changes_between(null, null)
    where change in ('new', 'regressed') and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
)

select
    run_id,
    previous_run_id,
    finding_id,
    audit,
    code,
    machine_id,
    machine_name,
    owner,
    month,
    change,
    status_before,
    status_now,
    severity,
    reason,
    reason_key,
    params,
    change_detail,
    row_number() over (
        partition by run_id
        order by change_rank, severity_rank, month nulls last, machine_name, audit, code, finding_id
    ) as item_rank,
    count(*) over (partition by run_id) as items_total
from items;

comment on view report.finding_changes_items is 'Per run: the findings new or regressed since the previous good monthly run of the same scope, item_rank in report order (regressed first, then severity, month, machine) and items_total, the run''s count before any cap.';
