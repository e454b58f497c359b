-- Report view: reboot_period
-- Reads: report.periods, report.reboot_months
-- One row per run: reboot avoidance over the period and for the latest hotpatch month.
create or replace view report.reboot_period as
with months as (
    select * from report.reboot_months
),

latest_hotpatch as (
    select run_id, max(month) as month
    from months
    where is_hotpatch_month
    group by run_id
),

period as (
    select
        run_id,
        sum(avoided) as reboots_avoided,
        sum(expected_reboot) as expected_reboots,
        sum(unexpected_reboot) as unexpected_reboots,
        sum(avoidable_reboot) as avoidable_reboots,
        sum(no_install) as no_install_months,
        sum(unknown) as unknown_months,
        sum(known_months) as known_months,
        sum(applicable_months) as applicable_months,
        sum(rate_avoided) as rate_avoided,
        sum(rate_known) as rate_known,
        sum(rate_applicable) as rate_applicable,
        sum(efficacy_avoided) as efficacy_avoided,
        sum(efficacy_known) as efficacy_known
    from months
    group by run_id
)

select
    p.run_id,
    p.period_start,
    p.period_end,
    p.downtime_minutes_per_reboot,
    coalesce(period.reboots_avoided, 0) as reboots_avoided,
    coalesce(period.reboots_avoided, 0) * p.downtime_minutes_per_reboot as downtime_avoided_minutes,
    coalesce(period.expected_reboots, 0) as expected_reboots,
    coalesce(period.unexpected_reboots, 0) as unexpected_reboots,
    coalesce(period.avoidable_reboots, 0) as avoidable_reboots,
    coalesce(period.no_install_months, 0) as no_install_months,
    coalesce(period.unknown_months, 0) as unknown_months,
    coalesce(period.rate_known, 0) as known_months,
    coalesce(period.rate_applicable, 0) as applicable_months,
    period.rate_avoided / nullif(period.rate_known, 0) as reboot_free_rate,
    period.rate_known / nullif(period.rate_applicable, 0) as coverage_rate,
    latest_hotpatch.month as latest_hotpatch_month,
    lm.reboot_free_rate as latest_reboot_free_rate,
    lm.coverage_rate as latest_coverage_rate,
    coalesce(lm.rate_known, 0) as latest_known_months,
    coalesce(lm.rate_applicable, 0) as latest_applicable_months,
    lm.efficacy_rate as latest_efficacy_rate,
    lm.efficacy_coverage_rate as latest_efficacy_coverage_rate,
    coalesce(lm.avoided, 0) as latest_avoided,
    coalesce(lm.avoidable_reboot, 0) as latest_avoidable_reboots,
    period.efficacy_avoided / nullif(period.efficacy_known, 0) as efficacy_rate
from report.periods as p
left join period using (run_id)
left join latest_hotpatch using (run_id)
left join months as lm on lm.run_id = p.run_id and lm.month = latest_hotpatch.month;

comment on view report.reboot_period is 'One row per run: over the reporting period, reboots avoided (avoided machine-months), downtime_avoided_minutes (x downtime_minutes_per_reboot), expected, unexpected and avoidable reboots, unknown months, reboot_free_rate = avoided / known hotpatch-kind machine-months with coverage_rate, known_months and applicable_months of those hotpatch-kind machine-months; and the same rate and coverage for latest_hotpatch_month; efficacy_rate (period) and latest_efficacy_rate / latest_efficacy_coverage_rate: the rate over machines Enabled at the start of each month; latest_avoided and latest_avoidable_reboots: the latest hotpatch month''s reboots avoided and avoidable reboots (the opportunity).';
