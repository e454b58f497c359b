-- Report view: scope_summary
-- Reads: meta.runs, core.machines
-- One row per run: machines in scope. Windows machines are audited; Linux machines are counted only.
create or replace view report.scope_summary as
with machines as (
    select run_id, machine_kind, os_family, hotpatch_status, hotpatch_intended from core.machines
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
),

counts as (
    select
        run_id,
        count(*) as machines_total,
        count(*) filter (where os_family = 'windows') as windows_machines,
        count(*) filter (where os_family = 'linux') as linux_machines,
        count(*) filter (where os_family = 'windows' and machine_kind = 'azure_vm') as windows_azure_vms,
        count(*) filter (where os_family = 'windows' and machine_kind = 'arc') as windows_arc_machines,
        count(*) filter (where os_family = 'windows' and hotpatch_status = 'Enabled') as enrolled_machines,
        count(*) filter (where os_family = 'windows' and coalesce(hotpatch_intended, false))
            as hotpatch_intended_machines,
        count(*) filter (where os_family = 'windows' and hotpatch_status = 'Unknown') as status_unknown_machines
    from machines
    group by run_id
)

select
    runs.run_id,
    coalesce(counts.machines_total, 0) as machines_total,
    coalesce(counts.windows_machines, 0) as windows_machines,
    coalesce(counts.linux_machines, 0) as linux_machines,
    coalesce(counts.windows_azure_vms, 0) as windows_azure_vms,
    coalesce(counts.windows_arc_machines, 0) as windows_arc_machines,
    coalesce(counts.enrolled_machines, 0) as enrolled_machines,
    coalesce(counts.hotpatch_intended_machines, 0) as hotpatch_intended_machines,
    coalesce(counts.status_unknown_machines, 0) as status_unknown_machines
from meta.runs as runs
left join counts using (run_id);

comment on view report.scope_summary is 'One row per run: machines in scope (total, Windows audited, Linux counted not audited), Windows Azure VMs and Arc servers, hotpatch Enabled, hotpatch-intended, and hotpatch status Unknown.';
