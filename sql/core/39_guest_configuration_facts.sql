-- Parse a run's Machine Configuration reports into typed guest facts (docs/guest-facts.md).
-- Not read by the audits: the ledger inserts this view's rows for the run being loaded into raw.guest_facts
-- (hotpatch_audit.ledger.load_snapshot), in the same transaction as the run's raw rows, so both routes of
-- guest facts live in one raw table. One row per run and machine: its latest hotpatch-audit-guest report.
create or replace view core.guest_configuration_facts as
with
reports as (
    select
        run_id,
        lower(machine_id) as machine_id,
        lower(id) as report_id,
        configuration_name,
        compliance_status,
        try_cast(last_checked as timestamp) as collected_at,
        -- all reason phrases of the report as one space-separated text, ' k=v k=v '
        ' ' || replace(array_to_string(json_extract_string(report_resources, '$[*].reasons[*].phrase'), ' '), ';', ' ') || ' ' as phrases
    from raw.guest_configuration_reports
    where coalesce(configuration_name, name) = 'hotpatch-audit-guest' or name = 'hotpatch-audit-guest'
    qualify row_number() over (partition by run_id, lower(machine_id) order by try_cast(last_checked as timestamp) desc nulls last) = 1
),
facts as (
    select
        run_id, machine_id, report_id, compliance_status, collected_at, phrases,
        nullif(regexp_extract(phrases, '\sVirtualizationBasedSecurityStatus=(\S*)', 1), '') as vbs_status_text,
        nullif(regexp_extract(phrases, '\sSecurityServicesConfigured=(\S*)', 1), '') as services_configured_text,
        nullif(regexp_extract(phrases, '\sSecurityServicesRunning=(\S*)', 1), '') as services_running_text,
        regexp_matches(phrases, '\sSecurityServicesConfigured=') as has_services_configured,
        nullif(regexp_extract(phrases, '\sUseWUServer=(\S*)', 1), '') as use_wu_server_text,
        nullif(regexp_extract(phrases, '\sWUServer=(\S*)', 1), '') as wu_server,
        nullif(regexp_extract(phrases, '\sSetPolicyDrivenUpdateSourceForQualityUpdates=(\S*)', 1), '') as quality_source_text,
        nullif(regexp_extract(phrases, '\sDoNotConnectToWindowsUpdateInternetLocations=(\S*)', 1), '') as no_wu_internet_text,
        nullif(regexp_extract(phrases, '\sIsVirtualMachine=(\S*)', 1), '') as is_vm_text,
        nullif(regexp_extract(phrases, '\sHyperVGeneration=(\S*)', 1), '') as hyperv_generation_text,
        nullif(regexp_extract(phrases, '\sHyperVRole=(\S*)', 1), '') as hyperv_role_text,
        nullif(regexp_extract(phrases, '\sWsl2=(\S*)', 1), '') as wsl2_text,
        nullif(regexp_extract(phrases, '\sFirmwareType=(\S*)', 1), '') as firmware_type,
        nullif(regexp_extract(phrases, '\sSecureBoot=(\S*)', 1), '') as secure_boot_text
    from reports
)
select
    f.run_id,
    'machine_configuration' as source,
    f.report_id,
    cast(null as varchar) as import_id,
    cast(null as varchar) as source_file,
    cast(null as integer) as line,
    f.machine_id,
    f.compliance_status,
    f.collected_at,
    try_cast(f.vbs_status_text as integer) as vbs_status,
    case when f.has_services_configured then coalesce(f.services_configured_text, '') end as security_services_configured,
    case when regexp_matches(f.phrases, '\sSecurityServicesRunning=') then coalesce(f.services_running_text, '') end
        as security_services_running,
    try_cast(f.use_wu_server_text as integer) as use_wu_server,
    f.wu_server,
    try_cast(f.quality_source_text as integer) as quality_updates_source,
    try_cast(f.no_wu_internet_text as integer) as no_wu_internet,
    try_cast(f.is_vm_text as integer) as is_virtual_machine,
    try_cast(f.hyperv_generation_text as integer) as hyperv_generation,
    try_cast(f.hyperv_role_text as integer) as hyperv_role,
    try_cast(f.wsl2_text as integer) as wsl2,
    f.firmware_type,
    try_cast(f.secure_boot_text as integer) as secure_boot,
    trim(f.phrases) as phrases
from facts f;
comment on view core.guest_configuration_facts is 'Per run and machine, the latest hotpatch-audit-guest Machine Configuration report of raw.guest_configuration_reports with its key=value reason phrases parsed into typed facts, in the column shape of raw.guest_facts (without loaded_at). The ledger copies a run''s rows into raw.guest_facts when it loads the run; the audits read raw.guest_facts through core.guest_facts.';
