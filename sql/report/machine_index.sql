-- Report view: machine_index
-- Reads: report.action_items
-- One row per run and machine with at least one finding that is not a pass: its findings by status and
-- the audits they come from. audit.html lists it as the machine index (the target of #m-... deep links).
create or replace view report.machine_index as
with machines as (
    select
        run_id,
        machine_id,
        max(machine_name) as machine_name,
        max(machine_kind) as machine_kind,
        max(subscription_id) as subscription_id,
        max(resource_group) as resource_group,
        max(owner) as owner,
        count(*) filter (where status = 'fail') as fail,
        count(*) filter (where status = 'warn') as warn,
        count(*) filter (where status = 'unknown') as unknown,
        count(*) filter (where status = 'waived') as waived,
        list_sort(list(distinct audit)) as audits
    from report.action_items
    group by run_id, machine_id
)

select
    *,
    row_number() over (
        partition by run_id order by fail desc, warn desc, unknown desc, waived desc, machine_name, machine_id
    ) as machine_rank,
    count(*) over (partition by run_id) as machines_total
from machines;

comment on view report.machine_index is 'Per run and machine with a finding that is not a pass: name, kind, subscription, resource group, owner, findings by status (fail, warn, unknown, waived), audits (sorted list of audit stems); machine_rank orders machines by fail, warn, unknown, waived (descending), then name.';
