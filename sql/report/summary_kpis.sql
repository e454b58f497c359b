-- Report view: summary_kpis
-- Reads: audit.finding_run_pairs, report.periods, report.scope_summary, report.reboot_period,
--        report.reboot_months, report.findings_overview, report.finding_changes_counts
-- The executive summary: one row per run and key figure, with the same figure of the previous good
-- monthly run of the same scope (audit.finding_run_pairs, as the month-over-month changes use) and the
-- change since then. Monthly figures are the latest hotpatch month's (report.reboot_period), so a run
-- is always compared like with like (a hotpatch month with the previous run's latest hotpatch month,
-- never with a baseline month); "year to date" is the as-of year's months up to the as-of month,
-- within the run's reporting period. Hotpatch efficacy counts machines Enabled at the start of the
-- month, reboot-free coverage every eligible machine. new / regressed / fixed are themselves changes
-- since the previous run: null when the run has none to compare with (its first monthly run).
-- Every figure follows the report_owner variable, like the views it reads.
create or replace view report.summary_kpis as
with kpis (kpi, kpi_order, unit, better) as (
    values
        ('machines_in_scope', 1, 'count', 'none'),
        ('enrolled_machines', 2, 'count', 'up'),
        ('hotpatch_efficacy', 3, 'rate', 'up'),
        ('reboot_free_coverage', 4, 'rate', 'up'),
        ('reboots_avoided_month', 5, 'count', 'up'),
        ('reboots_avoided_ytd', 6, 'count', 'up'),
        ('downtime_avoided_month', 7, 'minutes', 'up'),
        ('downtime_avoided_ytd', 8, 'minutes', 'up'),
        ('avoidable_reboots_month', 9, 'count', 'down'),
        ('open_actions', 10, 'count', 'down'),
        ('open_findings', 11, 'count', 'down'),
        ('new_findings', 12, 'count', 'down'),
        ('regressed_findings', 13, 'count', 'down'),
        ('fixed_findings', 14, 'count', 'up'),
        ('licence_cost_month', 15, 'usd', 'none'),
        ('licence_cost_ytd', 16, 'usd', 'none'),
        ('critical_high_actions', 17, 'count', 'down'),
        ('machines_to_fix', 18, 'count', 'down')
),

costs as (
    -- the licence cost from the dated price table (report.reboot_cost_by_month): the latest hotpatch month's
    -- and the year to date's
    select
        p.run_id,
        coalesce(sum(c.licence_cost_usd) filter (where c.month >= left(p.period_end, 4) || '-01'), 0) as cost_ytd,
        coalesce(sum(c.licence_cost_usd) filter (where c.month = rp.latest_hotpatch_month), 0) as cost_month
    from report.periods as p
    join report.reboot_period as rp using (run_id)
    left join report.reboot_cost_by_month as c on c.run_id = p.run_id and c.month <= p.period_end
    group by p.run_id
),

urgent as (
    select run_id,
        count(*) filter (where severity_rank <= 1 and status in ('fail', 'warn')) as critical_high_actions,
        count(distinct machine_id) filter (where status in ('fail', 'warn')) as machines_to_fix
    from audit.open_actions
    where getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner')
    group by run_id
),

reboots as (
    select
        p.run_id,
        coalesce(sum(m.avoided) filter (where m.month >= left(p.period_end, 4) || '-01'), 0) as avoided_ytd,
        any_value(p.downtime_minutes_per_reboot) as downtime_minutes_per_reboot
    from report.periods as p
    left join report.reboot_months as m on m.run_id = p.run_id and m.month <= p.period_end
    group by p.run_id
),

findings as (
    select run_id, sum(open) as open_findings, sum(actions) as open_actions from report.findings_overview group by run_id
),

changes as (
    select
        run_id,
        any_value(previous_run_id) as previous_run_id,
        sum(new) as new_findings,
        sum(regressed) as regressed_findings,
        sum(fixed) as fixed_findings
    from report.finding_changes_counts
    group by run_id
),

per_run as (
    -- every figure of every run, long: (run_id, kpi, value, month, coverage)
    select
        s.run_id,
        p.period_end,
        rp.latest_hotpatch_month,
        rp.latest_coverage_rate,
        rp.latest_efficacy_coverage_rate,
        [
            {'kpi': 'machines_in_scope', 'value': cast(s.machines_total as double)},
            {'kpi': 'enrolled_machines', 'value': cast(s.enrolled_machines as double)},
            {'kpi': 'hotpatch_efficacy', 'value': cast(rp.latest_efficacy_rate as double)},
            {'kpi': 'reboot_free_coverage', 'value': cast(rp.latest_reboot_free_rate as double)},
            {'kpi': 'reboots_avoided_month', 'value': cast(rp.latest_avoided as double)},
            {'kpi': 'reboots_avoided_ytd', 'value': cast(r.avoided_ytd as double)},
            {'kpi': 'downtime_avoided_month', 'value': cast(rp.latest_avoided * r.downtime_minutes_per_reboot as double)},
            {'kpi': 'downtime_avoided_ytd', 'value': cast(r.avoided_ytd * r.downtime_minutes_per_reboot as double)},
            {'kpi': 'avoidable_reboots_month', 'value': cast(rp.latest_avoidable_reboots as double)},
            {'kpi': 'open_actions', 'value': cast(coalesce(f.open_actions, 0) as double)},
            {'kpi': 'open_findings', 'value': cast(coalesce(f.open_findings, 0) as double)},
            {'kpi': 'new_findings', 'value': cast(c.new_findings as double)},
            {'kpi': 'regressed_findings', 'value': cast(c.regressed_findings as double)},
            {'kpi': 'fixed_findings', 'value': cast(c.fixed_findings as double)},
            {'kpi': 'licence_cost_month', 'value': cast(co.cost_month as double)},
            {'kpi': 'licence_cost_ytd', 'value': cast(co.cost_ytd as double)},
            {'kpi': 'critical_high_actions', 'value': cast(coalesce(u.critical_high_actions, 0) as double)},
            {'kpi': 'machines_to_fix', 'value': cast(coalesce(u.machines_to_fix, 0) as double)}
        ] as figures,
        c.previous_run_id is not null as has_changes
    from report.scope_summary as s
    join report.periods as p using (run_id)
    join report.reboot_period as rp using (run_id)
    join reboots as r using (run_id)
    left join findings as f using (run_id)
    left join changes as c using (run_id)
    left join costs as co using (run_id)
    left join urgent as u using (run_id)
),

figures as (
    select
        run_id,
        period_end,
        latest_hotpatch_month,
        latest_coverage_rate,
        latest_efficacy_coverage_rate,
        fig.kpi,
        -- changes of a run without a previous run are not zero: there is nothing to compare
        case when fig.kpi in ('new_findings', 'regressed_findings', 'fixed_findings') and not has_changes
             then null else fig.value end as value
    from per_run, unnest(figures) as t(fig)
)

select
    pairs.run_id,
    pairs.previous_run_id,
    pairs.previous_as_of,
    kpis.kpi,
    kpis.kpi_order,
    kpis.unit,
    kpis.better,
    case
        when kpis.kpi in ('hotpatch_efficacy', 'reboot_free_coverage') or kpis.kpi like '%\_month' escape '\'
            then cur.latest_hotpatch_month
        when kpis.kpi like '%\_ytd' escape '\' then left(cur.period_end, 4) || '-01'
    end as month_from,
    case
        when kpis.kpi in ('hotpatch_efficacy', 'reboot_free_coverage') or kpis.kpi like '%\_month' escape '\'
            then cur.latest_hotpatch_month
        when kpis.kpi like '%\_ytd' escape '\' then cur.period_end
    end as month_to,
    case when kpis.kpi = 'reboot_free_coverage' then cur.latest_coverage_rate
         when kpis.kpi = 'hotpatch_efficacy' then cur.latest_efficacy_coverage_rate end as coverage_rate,
    cur.value,
    prev.value as previous_value,
    cur.value - prev.value as delta,
    case
        when cur.value is null or prev.value is null then null
        when cur.value > prev.value then 'up'
        when cur.value < prev.value then 'down'
        else 'same'
    end as direction,
    case
        when cur.value is null or prev.value is null or cur.value = prev.value or kpis.better = 'none' then 'neutral'
        when (cur.value > prev.value) = (kpis.better = 'up') then 'better'
        else 'worse'
    end as assessment
from audit.finding_run_pairs as pairs
cross join kpis
left join figures as cur on cur.run_id = pairs.run_id and cur.kpi = kpis.kpi
left join figures as prev on prev.run_id = pairs.previous_run_id and prev.kpi = kpis.kpi;

comment on view report.summary_kpis is 'Executive summary: per run and key figure (kpi, in kpi_order: machines_in_scope, enrolled_machines, hotpatch_efficacy (avoided / enrolled machine-months of known outcome) and reboot_free_coverage (avoided / all eligible machine-months of known outcome) of the latest hotpatch month, reboots_avoided_month (latest hotpatch month) / _ytd, downtime_avoided_month / _ytd in minutes, avoidable_reboots_month (latest hotpatch month: the opportunity), open_actions (one per machine and root cause), open_findings, new_findings, regressed_findings, fixed_findings, licence_cost_month (latest hotpatch month) and licence_cost_ytd in USD from the dated price table, critical_high_actions (open fail/warn actions of severity critical or high), machines_to_fix (machines with an open fail/warn action)), unit (count, rate, minutes, usd), better (up, down, none), month_from and month_to (the months the figure covers: _month and rates = the latest hotpatch month, so runs compare like with like; null: not monthly), coverage_rate (for the rates: the share of machine-months with a known outcome), value, and previous_value, delta, direction (up, down, same) and assessment (better, worse, neutral) against previous_run_id, the previous good monthly run of the same scope (audit.finding_run_pairs; null: no previous run). new, regressed and fixed are null without a previous run. Follows the report_owner variable.';
