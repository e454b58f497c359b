-- Report view: reboot_cost_by_month
-- Reads: audit.machine_months, core.machines, core.run_prices (the run's prices), report.periods
-- One row per run and month of the reporting period: what hotpatch cost and bought that month.
-- Enrolled = hotpatch status Enabled at the start of the month (audit.machine_months.enrolled_at_start).
-- Product: Azure VMs are azure_edition, Arc servers arc_hotpatch; each month is priced at the row of
-- ref.prices in force on the month's first day (no proration: May 2026 is billed in full at $1.50
-- although Arc hotpatch became free on 19 May 2026). Cores follow billing_cores (core.machines.cores);
-- enrolled machines on a paid price without a core count cost nothing here and are counted in
-- machines_without_cores. The getvariable('report_owner') filter scopes a per-owner report.
create or replace view report.reboot_cost_by_month as
with machine_months as (
    select
        mm.run_id,
        mm.month,
        mm.machine_id,
        mm.machine_kind,
        mm.track,
        mm.outcome,
        mm.enrolled_at_start,
        cast(strptime(mm.month || '-01', '%Y-%m-%d') as date) as month_start
    from audit.machine_months as mm
    join report.periods as p on p.run_id = mm.run_id
    where mm.month between p.period_start and p.period_end
        and (getvariable('report_owner') is null
             or coalesce(mm.owner, '(no owner tag)') = getvariable('report_owner'))
),

priced as (
    select
        mm.*,
        m.cores,
        pr.price_per_core_month_usd as price
    from machine_months as mm
    left join core.machines as m on m.run_id = mm.run_id and m.machine_id = mm.machine_id
    left join core.run_prices as pr
        on pr.run_id = mm.run_id
        and pr.product = case mm.machine_kind when 'arc' then 'arc_hotpatch' else 'azure_edition' end
        and pr.track = mm.track
        and mm.month_start between pr.valid_from and coalesce(pr.valid_to, date '9999-12-31')
    where mm.enrolled_at_start
),

months as (
    select
        run_id,
        month,
        count(*) filter (where outcome = 'avoided') as reboots_avoided
    from machine_months
    group by run_id, month
),

costs as (
    select
        run_id,
        month,
        count(*) as machines_enrolled,
        count(*) filter (where machine_kind = 'arc') as arc_machines_enrolled,
        coalesce(sum(cores) filter (where price > 0), 0) as cores_billed,
        count(*) filter (where price > 0 and cores is null) as machines_without_cores,
        count(*) filter (where price is null) as machines_without_price,
        coalesce(sum(cores * price) filter (where price > 0), 0) as licence_cost_usd
    from priced
    group by run_id, month
),

arc_price as (
    select
        mo.run_id,
        mo.month,
        pr.price_per_core_month_usd as arc_price_per_core_usd
    from months as mo
    left join core.run_prices as pr
        on pr.run_id = mo.run_id
        and pr.product = 'arc_hotpatch' and pr.track = 'ws2025'
        and cast(strptime(mo.month || '-01', '%Y-%m-%d') as date)
            between pr.valid_from and coalesce(pr.valid_to, date '9999-12-31')
)

select
    mo.run_id,
    mo.month,
    ap.arc_price_per_core_usd,
    coalesce(c.machines_enrolled, 0) as machines_enrolled,
    coalesce(c.arc_machines_enrolled, 0) as arc_machines_enrolled,
    coalesce(c.cores_billed, 0) as cores_billed,
    coalesce(c.machines_without_cores, 0) as machines_without_cores,
    coalesce(c.machines_without_price, 0) as machines_without_price,
    cast(coalesce(c.licence_cost_usd, 0) as decimal(18, 2)) as licence_cost_usd,
    mo.reboots_avoided,
    mo.reboots_avoided * p.downtime_minutes_per_reboot as downtime_avoided_minutes,
    cast(coalesce(c.licence_cost_usd, 0) / nullif(mo.reboots_avoided, 0) as decimal(18, 2))
        as cost_per_avoided_reboot_usd
from months as mo
join report.periods as p on p.run_id = mo.run_id
left join costs as c on c.run_id = mo.run_id and c.month = mo.month
left join arc_price as ap on ap.run_id = mo.run_id and ap.month = mo.month;

comment on view report.reboot_cost_by_month is 'Per run and month of the reporting period: machines enrolled at the start of the month (hotpatch status Enabled), Arc ones among them, cores_billed (physical or logical per billing_cores) on paid prices, machines_without_cores (enrolled on a paid price, no core count: counted, not billed), machines_without_price, licence_cost_usd = cores x the ref.prices price in force on the month''s first day (no proration), reboots_avoided (avoided machine-months), downtime_avoided_minutes (x downtime_minutes_per_reboot) and cost_per_avoided_reboot_usd (null when none avoided). arc_price_per_core_usd shows the Arc price of the month. Scoped to one owner when the report_owner variable is set.';
