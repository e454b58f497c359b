create or replace view core.run_settings as
with
runs as (
    select run_id, scope, as_of, status, is_monthly from meta.runs
),
settings as (
    select
        run_id,
        max(case when key = 'grace_days' then try_cast(value as integer) end) as grace_days,
        max(case when key = 'assessment_stale_days' then try_cast(value as integer) end) as assessment_stale_days,
        max(case when key = 'guest_facts_max_age_days' then try_cast(value as integer) end) as guest_facts_max_age_days,
        max(case when key = 'pending_max_days' then try_cast(value as integer) end) as pending_max_days,
        max(case when key = 'downtime_minutes_per_reboot' then try_cast(value as integer) end) as downtime_minutes_per_reboot,
        max(case when key = 'period_months' then try_cast(value as integer) end) as period_months,
        max(case when key = 'billing_cores' then lower(value) end) as billing_cores,
        max(case when key = 'owner_tag' then nullif(trim(value), '') end) as owner_tag,
        max(case when key = 'remediation_days_critical' then try_cast(value as integer) end) as remediation_days_critical,
        max(case when key = 'remediation_days_high' then try_cast(value as integer) end) as remediation_days_high,
        max(case when key = 'remediation_days_medium' then try_cast(value as integer) end) as remediation_days_medium,
        max(case when key = 'remediation_days_low' then try_cast(value as integer) end) as remediation_days_low,
        max(case when key = 'remediation_days_info' then try_cast(value as integer) end) as remediation_days_info
    from meta.settings
    group by run_id
),
with_defaults as (
    select
        r.run_id, r.scope, r.as_of, r.status, r.is_monthly,
        coalesce(s.grace_days, 14) as grace_days,
        coalesce(s.assessment_stale_days, 7) as assessment_stale_days,
        coalesce(s.guest_facts_max_age_days, 30) as guest_facts_max_age_days,
        coalesce(s.pending_max_days, 7) as pending_max_days,
        coalesce(s.downtime_minutes_per_reboot, 15) as downtime_minutes_per_reboot,
        greatest(coalesce(s.period_months, 12), 1) as period_months,
        coalesce(s.billing_cores, 'physical') as billing_cores,
        coalesce(s.owner_tag, 'owner') as owner_tag,
        -- remediation windows per severity: an open action is due this many days after it became due or was
        -- first seen open (settings remediation_days_*)
        coalesce(s.remediation_days_critical, 7) as remediation_days_critical,
        coalesce(s.remediation_days_high, 14) as remediation_days_high,
        coalesce(s.remediation_days_medium, 30) as remediation_days_medium,
        coalesce(s.remediation_days_low, 90) as remediation_days_low,
        coalesce(s.remediation_days_info, 180) as remediation_days_info
    from runs r
    left join settings s using (run_id)
)
select
    *,
    strftime(as_of, '%Y-%m') as as_of_month,
    cast(date_trunc('month', as_of) - to_months(period_months - 1) as date) as period_start,
    strftime(date_trunc('month', as_of) - to_months(period_months - 1), '%Y-%m') as period_start_month
from with_defaults;
comment on view core.run_settings is 'One row per run: scope, as_of and the audit rules it was judged with (meta.settings, owner_tag and the remediation windows per severity included, with the documented defaults where a key is missing), plus the reporting period (period_months months up to and including the as-of month): period_start, and period_start_month .. as_of_month as YYYY-MM.';
