-- Report view: findings_by_owner
-- Reads: audit.findings
-- One row per run and owner ('(no owner tag)' when missing) with any finding needing action: open
-- findings (fail + warn) by severity, unknown findings, and machines needing action (any fail, warn or
-- unknown finding). owner_rank orders owners by open findings, then machines needing action, then name.
create or replace view report.findings_by_owner as
with findings as (
    select run_id, coalesce(owner, '(no owner tag)') as owner, machine_id, status, severity, state
    from audit.findings
    where (status = 'unknown' or (status in ('fail', 'warn') and coalesce(state, 'open') = 'open'))
        and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
),

owners as (
    select
        run_id,
        owner,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open') as open,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'critical') as critical,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'high') as high,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'medium') as medium,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'low') as low,
        count(*) filter (where status in ('fail', 'warn') and coalesce(state, 'open') = 'open' and severity = 'info') as info,
        count(*) filter (where status = 'unknown') as unknown,
        count(distinct machine_id) as machines_needing_action
    from findings
    group by run_id, owner
)

select
    *,
    row_number() over (partition by run_id order by open desc, machines_needing_action desc, owner) as owner_rank,
    count(*) over (partition by run_id) as owners_total
from owners;

comment on view report.findings_by_owner is 'Per run and owner (''(no owner tag)'' when missing) with findings needing action: open findings (fail + warn) and open by severity (critical ... info), unknown findings, machines_needing_action (distinct machines with a fail, warn or unknown finding); owner_rank orders owners by open findings, machines, then name; owners_total. Follows the report_owner variable.';
