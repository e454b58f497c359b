create or replace view audit.vbs_blockers as
with
readiness as (
    select * from audit.readiness where machine_kind = 'arc'
),
blocked as (
    select r.*,
        case
            when r.gate_code = 'VBS_UNKNOWN' and r.hotpatch_status = 'Enabled' then 'warn'
            when r.gate_code = 'VBS_UNKNOWN' then 'unknown'
            when r.gate_code = 'HVCI_NOT_CONFIGURED' and r.hotpatch_status = 'Enabled' then 'warn'
            when r.hotpatch_status = 'Enabled' or r.hotpatch_intended then 'fail'
            else 'warn'
        end as status
    from readiness r
    where r.first_failing_gate between 4 and 8
),
proven as (
    -- Enabled, no guest facts, but the month's hotpatch installed without a reboot: VBS runs
    select r.*, 'pass' as status
    from readiness r
    where r.hotpatch_status = 'Enabled' and r.gate_vbs_known is null and (not r.has_guest_facts or r.evidence->>'vbs_status' is null) and r.hotpatch_without_reboot
        and r.first_failing_gate > 3
),
all_rows as (
    select run_id, gate_code as code, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
        status,
        case status when 'fail' then case when hotpatch_status = 'Enabled' then 'high' else 'medium' end
                    when 'warn' then 'low' else 'info' end as severity,
        reason, remediation, reason_key, remediation_key, params, evidence
    from blocked
    union all
    select run_id, 'VBS_UNKNOWN', machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
        status, 'info',
        audit.vbs_blockers_message('VBS_UNKNOWN.proven', {'machine': machine_name}::map(varchar, varchar)),
        audit.vbs_blockers_message('VBS_UNKNOWN.proven.fix', map()),
        'VBS_UNKNOWN.proven', 'VBS_UNKNOWN.proven.fix', {'machine': machine_name}::map(varchar, varchar),
        to_json({'run_id': run_id, 'source': 'installation without reboot (audit.machine_months)', 'hotpatch_status': hotpatch_status})
    from proven
)
select
    md5('vbs_blockers|' || code || '|' || machine_id || '|') as finding_id,
    run_id,
    'vbs_blockers' as audit,
    code, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
    null::varchar as month,
    status, severity, reason, remediation, reason_key, remediation_key, params, evidence
from all_rows;
comment on view audit.vbs_blockers is 'Audit 4 findings: Arc machines stopped at readiness gates 4-8 (firmware, VBS not enabled / not running / nested virtualization, HVCI, VBS unknown). fail on machines that are Enabled or intend hotpatch, warn for HVCI or VBS unknown on Enabled machines and for machines that do not intend hotpatch, unknown for VBS unknown on others; VBS_UNKNOWN passes when a hotpatch installed without a reboot.';
