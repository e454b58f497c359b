-- Report view: top_actions
-- Reads: audit.open_actions
-- The machines to fix first (page 1): per run, each machine with an open action (fail or warn; unknown
-- data is the coverage box's) and its most urgent one: highest severity, then longest overdue, then the
-- earliest due date. machine_rank orders the machines that way; the page lists the first ten.
create or replace view report.top_actions as
with ranked as (
    select *,
        row_number() over (partition by run_id, machine_id
            order by severity_rank, days_overdue desc nulls last, due_date, root_cause) as pick,
        count(*) over (partition by run_id, machine_id) as machine_actions
    from audit.open_actions
    where status in ('fail', 'warn')
        and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
)
select *,
    row_number() over (partition by run_id
        order by severity_rank, days_overdue desc nulls last, due_date, machine_name, machine_id) as machine_rank
from ranked
where pick = 1;

comment on view report.top_actions is 'Per run: one row per machine with an open fail or warn action, its most urgent action (severity, then days overdue, then due date), machine_actions (how many open actions it has) and machine_rank (1 = fix first). Follows the report_owner variable.';
