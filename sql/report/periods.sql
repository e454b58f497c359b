-- Report view: periods
-- Reads: meta.runs, meta.settings
-- One row per run: the reporting period (months up to and including the as-of month) and the
-- settings the report's figures use. Defaults follow audits.md when a run stored no setting.
create or replace view report.periods as
with runs as (
    select run_id, as_of from meta.runs
),

settings as (
    select
        run_id,
        max(try_cast(value as integer)) filter (where key = 'period_months') as period_months,
        max(try_cast(value as integer)) filter (where key = 'downtime_minutes_per_reboot') as downtime_minutes
    from meta.settings
    group by run_id
)

select
    runs.run_id,
    runs.as_of,
    coalesce(settings.period_months, 12) as period_months,
    strftime(date_trunc('month', runs.as_of) - to_months(coalesce(settings.period_months, 12) - 1), '%Y-%m')
        as period_start,
    strftime(runs.as_of, '%Y-%m') as period_end,
    coalesce(settings.downtime_minutes, 15) as downtime_minutes_per_reboot
from runs
left join settings using (run_id);

comment on view report.periods is 'One row per run: reporting period (period_start..period_end, YYYY-MM, from meta.settings period_months, default 12) and downtime_minutes_per_reboot (default 15).';
