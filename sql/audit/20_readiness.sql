-- Computed live as audit.readiness_live; audit.readiness is the same rows materialized per run
-- (hotpatch_audit.analyze.materialize_run), so audits and reports read them once.
create or replace view audit.readiness_live as
with
machines as (
    select * from core.machines where os_family = 'windows'
),
runs as (
    select run_id, as_of, pending_max_days, as_of_month from core.run_settings
),
guest as (
    select * from core.guest_facts where is_fresh
),
pending_since as (
    select t.run_id, m.machine_id, min(t.evidence_as_of) as first_pending_as_of
    from core.run_evidence t
    join core.machines m on m.run_id = t.evidence_run_id and m.hotpatch_status = 'Pending'
    group by t.run_id, m.machine_id
),
current_month as (
    -- the latest due baseline and whether the machine is off track now
    select run_id, machine_id,
        arg_max(month_kb_installed_at is not null or coalesce(month_kb_installed_by_build, false), month)
            filter (where kind in ('baseline', 'unplanned_baseline') and is_due and month_kb is not null) as on_baseline,
        arg_max(month, month) filter (where kind in ('baseline', 'unplanned_baseline') and is_due and month_kb is not null) as baseline_month,
        max(off_track_event_month) filter (where off_track_event_month is not null and (off_track_until is null or off_track_until > as_of_month)) as off_track_since,
        bool_or(kind = 'hotpatch' and month_kb_installed_at is not null and reboot_count = 0) as hotpatch_without_reboot
    from audit.machine_months join runs using (run_id)
    group by run_id, machine_id
),
wsus as (
    select run_id, machine_id, true as on_wsus, wu_server
    from guest
    where use_wu_server = 1 and wu_server is not null and coalesce(quality_updates_source, 1) <> 0
),
facts as (
    select
        m.*,
        r.as_of,
        r.pending_max_days,
        g.machine_id is not null as has_guest_facts,
        g.vbs_status, g.hvci_configured, g.firmware_type as guest_firmware_type, g.secure_boot,
        g.hyperv_generation as guest_hyperv_generation, g.hyperv_role, g.wsl2, g.is_virtual_machine, g.collected_at,
        coalesce(g.is_virtual_machine = 1, false) or g.hyperv_generation is not null
            or lower(coalesce(m.model, '')) like '%virtual%' or lower(coalesce(m.manufacturer, '')) similar to '.*(vmware|qemu|xen|innotek|parallels).*' as is_vm,
        coalesce(ps.first_pending_as_of, m.hotpatch_enrollment_date) as pending_since,
        w.on_wsus, w.wu_server,
        cm.on_baseline, cm.baseline_month, cm.off_track_since, coalesce(cm.hotpatch_without_reboot, false) as hotpatch_without_reboot
    from machines m
    join runs r using (run_id)
    left join guest g on g.run_id = m.run_id and g.machine_id = m.machine_id
    left join pending_since ps on ps.run_id = m.run_id and ps.machine_id = m.machine_id
    left join wsus w on w.run_id = m.run_id and w.machine_id = m.machine_id
    left join current_month cm on cm.run_id = m.run_id and cm.machine_id = m.machine_id
),
gates as (
    select
        f.*,
        case
            when f.track is null then 'OS_NOT_ELIGIBLE'
        end as gate_os,
        case when f.machine_kind = 'arc' and f.build_ubr < 1742 then 'BUILD_TOO_OLD' end as gate_build,
        case
            when f.machine_kind = 'arc' and coalesce(f.agent_status, '') <> 'Connected' then 'AGENT_NOT_CONNECTED'
            when f.machine_kind = 'azure_vm' and not coalesce(f.vm_agent, false) then 'AGENT_NOT_CONNECTED'
            when f.machine_kind = 'azure_vm' and coalesce(f.patch_mode, '') <> 'AutomaticByPlatform' then 'PATCH_MODE_NOT_PLATFORM'
        end as gate_agent,
        case when f.machine_kind = 'arc' then
            case
                when f.guest_hyperv_generation = 1 then 'HYPERV_GEN1'
                when upper(coalesce(f.guest_firmware_type, f.firmware_type, '')) = 'BIOS' then 'FIRMWARE_NOT_UEFI'
                when f.secure_boot = 0 then 'SECURE_BOOT_OFF'
            end
        end as gate_firmware,
        case when f.machine_kind = 'arc' and f.vbs_status = 0 then 'VBS_NOT_ENABLED' end as gate_vbs_enabled,
        case when f.machine_kind = 'arc' and f.vbs_status = 1 then
            case when f.is_vm and (f.hyperv_role = 1 or f.wsl2 = 1) then 'VBS_NESTED_VIRTUALIZATION' else 'VBS_NOT_RUNNING' end
        end as gate_vbs_running,
        case when f.machine_kind = 'arc' and f.vbs_status = 2 and f.hvci_configured = false then 'HVCI_NOT_CONFIGURED' end as gate_hvci,
        case when f.machine_kind = 'arc' and (not f.has_guest_facts or f.vbs_status is null)
                and not (f.hotpatch_status = 'Enabled' and f.hotpatch_without_reboot) then 'VBS_UNKNOWN' end as gate_vbs_known,
        case f.hotpatch_status
            when 'Enabled' then null
            when 'Pending' then case when f.pending_since < f.as_of - to_days(f.pending_max_days) then 'PENDING_TOO_LONG' end
            when 'Action Required' then 'ACTION_REQUIRED'
            when 'Enrollment Failed' then 'ENROLLMENT_FAILED'
            when 'Canceled' then 'CANCELED'
            when 'Unknown' then 'STATUS_UNKNOWN'
            else 'NOT_ENROLLED'
        end as gate_enrollment,
        case when f.on_wsus then 'UPDATE_SOURCE_WSUS' end as gate_update_source,
        case when f.off_track_since is not null or f.on_baseline = false then 'NOT_ON_BASELINE' end as gate_baseline
    from facts f
),
first_gate as (
    select
        g.*,
        case
            when gate_os is not null then 1 when gate_build is not null then 2 when gate_agent is not null then 3
            when gate_firmware is not null then 4 when gate_vbs_enabled is not null then 5
            when gate_vbs_running is not null then 6 when gate_hvci is not null then 7 when gate_vbs_known is not null then 8
            when gate_enrollment is not null then 9 when gate_update_source is not null then 10
            when gate_baseline is not null then 11 else 12
        end as first_failing_gate,
        coalesce(gate_os, gate_build, gate_agent, gate_firmware, gate_vbs_enabled, gate_vbs_running, gate_hvci,
            gate_vbs_known, gate_enrollment, gate_update_source, gate_baseline, 'READY') as gate_code
    from gates g
)
select
    run_id, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
    hotpatch_status, hotpatch_intended,
    first_failing_gate,
    gate_code,
    audit.readiness_message(reason_key, params) as reason,
    audit.readiness_message(remediation_key, params) as remediation,
    reason_key, remediation_key, params,
    to_json({'run_id': run_id, 'hotpatch_status': hotpatch_status, 'agent_status': agent_status, 'os_build': os_build,
        'patch_mode': patch_mode, 'guest_facts_collected_at': collected_at, 'vbs_status': vbs_status, 'hvci_configured': hvci_configured,
        'firmware_type': coalesce(guest_firmware_type, firmware_type), 'secure_boot': secure_boot, 'hyperv_generation': guest_hyperv_generation,
        'hyperv_role': hyperv_role, 'wsl2': wsl2, 'is_vm': is_vm, 'wu_server': wu_server,
        'hotpatch_without_reboot': hotpatch_without_reboot, 'off_track_since': off_track_since, 'baseline_month': baseline_month}) as evidence,
    has_guest_facts,
    hotpatch_without_reboot,
    -- every gate's failing code (NULL: the gate passes), in gate order 1..11
    gate_os, gate_build, gate_agent, gate_firmware, gate_vbs_enabled, gate_vbs_running, gate_hvci, gate_vbs_known,
    gate_enrollment, gate_update_source, gate_baseline
from (
    select g.*,
        case gate_code
            when 'OS_NOT_ELIGIBLE' then 'gate.OS_NOT_ELIGIBLE.' || case when machine_kind = 'arc' then 'arc' else 'azure' end
            when 'AGENT_NOT_CONNECTED' then 'gate.AGENT_NOT_CONNECTED.' || case when machine_kind = 'arc' then 'arc' else 'azure' end
            when 'VBS_NOT_ENABLED' then 'VBS_NOT_ENABLED' || case when hotpatch_status = 'Enabled' then '.enrolled' else '' end
            when 'VBS_NOT_RUNNING' then 'VBS_NOT_RUNNING' || case when hotpatch_status = 'Enabled' then '.enrolled' else '' end
            when 'ACTION_REQUIRED' then 'gate.ACTION_REQUIRED' || case when hotpatch_error_code is not null then '.error' else '' end
            when 'NOT_ON_BASELINE' then 'gate.NOT_ON_BASELINE' || case when off_track_since is not null then '.off_track' else '' end
            when 'HYPERV_GEN1' then gate_code when 'FIRMWARE_NOT_UEFI' then gate_code when 'SECURE_BOOT_OFF' then gate_code
            when 'VBS_NESTED_VIRTUALIZATION' then gate_code when 'HVCI_NOT_CONFIGURED' then gate_code when 'VBS_UNKNOWN' then gate_code
            else 'gate.' || gate_code
        end as reason_key,
        case
            when gate_code in ('OS_NOT_ELIGIBLE', 'BUILD_TOO_OLD', 'AGENT_NOT_CONNECTED', 'PATCH_MODE_NOT_PLATFORM', 'UPDATE_SOURCE_WSUS',
                'NOT_ON_BASELINE') then 'gate.' || gate_code || '.fix'
            when gate_code in ('HYPERV_GEN1', 'FIRMWARE_NOT_UEFI') then 'UEFI.fix'
            when gate_code in ('SECURE_BOOT_OFF', 'VBS_NOT_ENABLED', 'VBS_NOT_RUNNING', 'VBS_NESTED_VIRTUALIZATION', 'HVCI_NOT_CONFIGURED',
                'VBS_UNKNOWN') then gate_code || '.fix'
            when gate_code in ('NOT_ENROLLED', 'CANCELED', 'ENROLLMENT_FAILED', 'PENDING_TOO_LONG', 'ACTION_REQUIRED', 'STATUS_UNKNOWN')
                then 'gate.enroll.fix.' || case when machine_kind = 'arc' then 'arc' else 'azure' end
        end as remediation_key,
        -- the named values the gate templates quote (20_readiness.toml)
        {
            'machine': machine_name, 'build': coalesce(os_build, '?'), 'agent': coalesce(agent_status, 'not reporting'),
            'patch_mode': coalesce(patch_mode, 'none'), 'date': cast(pending_since as varchar),
            'error': hotpatch_error_code || ' ' || coalesce(hotpatch_error_message, ''), 'status': hotpatch_status,
            'server': wu_server, 'off_track_since': off_track_since, 'month': baseline_month
        }::map(varchar, varchar) as params
    from first_gate g
) first_gate;
comment on view audit.readiness_live is 'Computed live (every run): Readiness funnel: per run and Windows machine, the first failing gate (1 OS, 2 build, 3 agent, 4 firmware, 5-8 VBS/HVCI/guest facts, 9 enrollment, 10 WSUS, 11 baseline; 12 = all pass) with a reason code, a reason sentence, a fix and the evidence; every gate''s failing code (NULL: it passes) is in its own column: gate_os (1), gate_build (2), gate_agent (3), gate_firmware (4), gate_vbs_enabled (5), gate_vbs_running (6), gate_hvci (7), gate_vbs_known (8), gate_enrollment (9), gate_update_source (10), gate_baseline (11).';

create table if not exists audit.readiness as select * from audit.readiness_live limit 0;
comment on table audit.readiness is 'Materialized per run from audit.readiness_live when the run is audited. Readiness funnel: per run and Windows machine, the first failing gate (1 OS, 2 build, 3 agent, 4 firmware, 5-8 VBS/HVCI/guest facts, 9 enrollment, 10 WSUS, 11 baseline; 12 = all pass) with a reason code, a reason sentence, a fix and the evidence; every gate''s failing code (NULL: it passes) is in its own column: gate_os (1), gate_build (2), gate_agent (3), gate_firmware (4), gate_vbs_enabled (5), gate_vbs_running (6), gate_hvci (7), gate_vbs_known (8), gate_enrollment (9), gate_update_source (10), gate_baseline (11).';
