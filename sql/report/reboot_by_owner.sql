-- Report view: reboot_by_owner
-- Reads: audit.machine_months, report.periods
-- One row per run and owner tag: reboot avoidance over the reporting period, ranked by machines.
create or replace view report.reboot_by_owner as
with machine_months as (
    select mm.run_id, coalesce(mm.owner, '(no owner tag)') as owner, mm.machine_id, mm.outcome, mm.kind
    from audit.machine_months as mm
    join report.periods as p on p.run_id = mm.run_id
    where mm.month between p.period_start and p.period_end
        and (getvariable('report_owner') is null or coalesce(mm.owner, '(no owner tag)') = getvariable('report_owner'))
),

owners as (
    select
        run_id,
        owner,
        count(distinct machine_id) as machines,
        count(*) filter (where outcome = 'avoided') as avoided,
        count(*) filter (where outcome = 'unexpected_reboot') as unexpected_reboot,
        count(*) filter (where outcome = 'avoidable_reboot') as avoidable_reboot,
        count(*) filter (where outcome = 'unknown') as unknown,
        count(*) filter (where outcome not in ('unknown', 'not_applicable')) as known_months,
        (count(*) filter (where kind = 'hotpatch' and outcome = 'avoided'))
            / nullif(count(*) filter (where kind = 'hotpatch' and outcome not in ('unknown', 'not_applicable')), 0)
            as reboot_free_rate
    from machine_months
    group by run_id, owner
)

select
    *,
    row_number() over (partition by run_id order by machines desc, owner) as owner_rank,
    count(*) over (partition by run_id) as owners_total
from owners;

comment on view report.reboot_by_owner is 'Per run and owner tag (''(no owner tag)'' when missing): machines, avoided, unexpected and avoidable reboots, unknown months, reboot_free_rate over the period; owner_rank orders owners by machines.';
