-- Report view: action_fixes
-- Reads: audit.open_actions
-- Each audit opens with its roll-up ("fix X on N machines"): per run, audit, root cause and fix
-- (remediation text; code lists the codes it fixes), the machines it concerns, the highest severity, how many are fail / warn /
-- unknown, how many are past their due date at the as-of time and the earliest due date. fix_rank
-- numbers the rows within the audit (F1, F2, ...), most severe and most machines first; the action
-- list refers to them.
create or replace view report.action_fixes as
with actions as (
    select a.*, cast(r.as_of as date) as as_of_date
    from audit.open_actions as a
    join meta.runs as r on r.run_id = a.run_id
    where getvariable('report_owner') is null or coalesce(a.owner, '(no owner tag)') = getvariable('report_owner')
),
grouped as (
    select run_id, audit, root_cause, remediation,
        string_agg(distinct code, ', ' order by code) as code,
        count(distinct machine_id) as machines,
        min(severity_rank) as severity_rank,
        count(*) filter (where status = 'fail') as fail,
        count(*) filter (where status = 'warn') as warn,
        count(*) filter (where status = 'unknown') as unknown,
        count(*) filter (where due_date < as_of_date) as overdue,
        min(due_date) as first_due,
        arg_min(remediation_key, due_date) as remediation_key,
        arg_min(params, due_date) as params
    from actions
    group by run_id, audit, root_cause, remediation
)
select *,
    ['critical', 'high', 'medium', 'low', 'info'][severity_rank + 1] as severity,
    row_number() over (partition by run_id, audit
        order by case when unknown = machines then 1 else 0 end, severity_rank, machines desc, first_due, code, remediation)
        as fix_rank
from grouped;

comment on view report.action_fixes is 'Per run and audit: the open actions rolled up by root_cause and fix (remediation; code: the codes it fixes, comma-separated): machines, the highest severity, fail / warn / unknown, overdue (due date before the as-of date), first_due, and fix_rank (F1, F2 ... within the audit; the action lists refer to it). Follows the report_owner variable.';
