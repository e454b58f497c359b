-- Report view: reboot_months
-- Reads: audit.machine_months, report.periods
-- One row per run and month of the reporting period: machine-months by outcome, the reboot-free
-- coverage rate and the hotpatch efficacy rate. Both are judged on hotpatch months only (baseline
-- months need their reboot): reboot-free coverage = avoided / known hotpatch machine-months of every
-- eligible machine (reboot_free_rate); hotpatch efficacy = the same over machines Enabled at the start
-- of the month (efficacy_rate). no_install is not reboot-free success (nothing was
-- patched); unknown and not_applicable months are left out of the denominator, and coverage
-- (known / applicable) is printed beside the rate.
create or replace view report.reboot_months as
with machine_months as (
    select mm.*
    from audit.machine_months as mm
    join report.periods as p on p.run_id = mm.run_id
    where mm.month between p.period_start and p.period_end
        and (getvariable('report_owner') is null or coalesce(mm.owner, '(no owner tag)') = getvariable('report_owner'))
)

select
    run_id,
    month,
    bool_or(kind = 'hotpatch') as is_hotpatch_month,
    string_agg(distinct kind, ', ' order by kind) as kinds,
    count(*) as machine_months,
    count(*) filter (where outcome = 'avoided') as avoided,
    count(*) filter (where outcome = 'expected_reboot') as expected_reboot,
    count(*) filter (where outcome = 'unexpected_reboot') as unexpected_reboot,
    count(*) filter (where outcome = 'avoidable_reboot') as avoidable_reboot,
    count(*) filter (where outcome = 'no_install') as no_install,
    count(*) filter (where outcome = 'unknown') as unknown,
    count(*) filter (where outcome = 'not_applicable') as not_applicable,
    coalesce(sum(reboot_count), 0) as reboots,
    count(*) filter (where outcome not in ('unknown', 'not_applicable')) as known_months,
    count(*) filter (where outcome <> 'not_applicable') as applicable_months,
    count(*) filter (where kind = 'hotpatch' and outcome = 'avoided') as rate_avoided,
    count(*) filter (where kind = 'hotpatch' and outcome not in ('unknown', 'not_applicable')) as rate_known,
    count(*) filter (where kind = 'hotpatch' and outcome <> 'not_applicable') as rate_applicable,
    (count(*) filter (where kind = 'hotpatch' and outcome = 'avoided'))
        / nullif(count(*) filter (where kind = 'hotpatch' and outcome not in ('unknown', 'not_applicable')), 0)
        as reboot_free_rate,
    (count(*) filter (where outcome not in ('unknown', 'not_applicable')))
        / nullif(count(*) filter (where outcome <> 'not_applicable'), 0) as coverage_rate,
    -- hotpatch efficacy: the same rate over machines Enabled at the start of the month only
    count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome = 'avoided') as efficacy_avoided,
    count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome not in ('unknown', 'not_applicable')) as efficacy_known,
    count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome <> 'not_applicable') as efficacy_applicable,
    (count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome = 'avoided'))
        / nullif(count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome not in ('unknown', 'not_applicable')), 0)
        as efficacy_rate,
    (count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome not in ('unknown', 'not_applicable')))
        / nullif(count(*) filter (where kind = 'hotpatch' and enrolled_at_start and outcome <> 'not_applicable'), 0)
        as efficacy_coverage_rate
from machine_months
group by run_id, month;

comment on view report.reboot_months is 'Per run and month of the reporting period: machine-months by outcome (avoided, expected_reboot, unexpected_reboot, avoidable_reboot, no_install, unknown, not_applicable), reboots, reboot_free_rate = avoided / known hotpatch-kind machine-months (rate_avoided / rate_known; baseline months have no rate; unknown and not_applicable excluded; null when none known), rate_applicable, and coverage_rate = known / applicable months (data coverage). Hotpatch efficacy over machines Enabled at the start of the month: efficacy_rate = efficacy_avoided / efficacy_known, efficacy_coverage_rate = efficacy_known / efficacy_applicable. reboot_free_rate is the reboot-free coverage (every eligible machine, enrolled or not).';
