-- Report view: trend_enrollment
-- Reads: meta.runs, core.machines, report.periods
-- Enrolled versus eligible, month by month, over the ledger's monthly runs of the report run's scope:
-- for each run (run_id) and each month of its reporting period that has a good (succeeded or incomplete)
-- monthly run of the same scope no later than it, the latest such run of that month (trend_run_id; the
-- report run itself stands for its own month). Eligible = Windows machines on a hotpatch track (readiness
-- gate 1: eligible OS and edition, the "Not Enrolled" rather than "Not Available" rule); enrolled =
-- Windows machines with hotpatch status Enabled.
create or replace view report.trend_enrollment as
with runs as (
    select run_id, scope, as_of, is_monthly, status in ('succeeded', 'incomplete') as is_good
    from meta.runs
),

candidates as (
    select r.run_id, o.run_id as trend_run_id, strftime(o.as_of, '%Y-%m') as month, o.as_of
    from runs as r
    join report.periods as p on p.run_id = r.run_id
    join runs as o
        on o.scope = r.scope and o.as_of <= r.as_of
        and strftime(o.as_of, '%Y-%m') >= p.period_start
        and ((o.is_monthly and o.is_good) or o.run_id = r.run_id)
),

per_month as (
    -- one run per month: the report run in its own month, else the month's latest run
    select run_id, month, arg_max(trend_run_id, (trend_run_id = run_id, as_of)) as trend_run_id, max(as_of) as as_of
    from candidates
    group by run_id, month
),

machines as (
    select
        run_id,
        count(*) filter (where track is not null) as eligible_machines,
        count(*) filter (where hotpatch_status = 'Enabled') as enrolled_machines,
        count(*) as windows_machines
    from core.machines
    where os_family = 'windows'
        and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by run_id
)

select
    pm.run_id,
    pm.month,
    pm.trend_run_id,
    t.as_of as trend_as_of,
    coalesce(m.windows_machines, 0) as windows_machines,
    coalesce(m.eligible_machines, 0) as eligible_machines,
    coalesce(m.enrolled_machines, 0) as enrolled_machines,
    coalesce(m.enrolled_machines, 0) / nullif(coalesce(m.eligible_machines, 0), 0) as enrolled_rate
from per_month as pm
join runs as t on t.run_id = pm.trend_run_id
left join machines as m on m.run_id = pm.trend_run_id;

comment on view report.trend_enrollment is 'Enrolled versus eligible by month: per report run (run_id) and month of its reporting period with a good monthly run of the same scope no later than it, trend_run_id (the latest such run of the month; the report run for its own month) and its as-of, Windows machines, eligible_machines (on a hotpatch track: readiness gate 1), enrolled_machines (hotpatch status Enabled) and enrolled_rate = enrolled / eligible. Follows the report_owner variable.';
