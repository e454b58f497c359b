-- Guest facts per run and machine, from either route (docs/guest-facts.md):
--   machine_configuration: the run's hotpatch-audit-guest Machine Configuration report, its key=value phrases parsed;
--   import: raw.imported_guest_facts (hotpatch-audit import-facts), not tied to a run, collected_at <= the run's as_of.
-- The freshest facts win (a tie goes to the run's own Machine Configuration report); facts older than
-- guest_facts_max_age_days are kept but is_fresh is false, and the audits treat them as missing.
create or replace view core.guest_facts as
with
runs as (
    select run_id, as_of, guest_facts_max_age_days from core.run_settings
),
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
),
machine_configuration as (
    select
        f.run_id,
        f.machine_id,
        f.report_id,
        f.compliance_status,
        f.collected_at,
        try_cast(f.vbs_status_text as integer) as vbs_status,
        string_split(f.services_configured_text, ',') as services_configured,
        string_split(f.services_running_text, ',') as services_running,
        case when f.has_services_configured then coalesce(list_contains(string_split(f.services_configured_text, ','), '2'), false) end as hvci_configured,
        coalesce(list_contains(string_split(f.services_running_text, ','), '2'), false) as hvci_running,
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
        trim(f.phrases) as phrases,
        'machine_configuration' as source,
        cast(null as timestamp) as imported_at
    from facts f
),
imported_latest as (
    -- per run and machine, the freshest imported row collected at or before the run's as_of
    select r.run_id, i.*
    exclude (run_id)
    from runs r
    join raw.imported_guest_facts i on i.collected_at <= r.as_of
    qualify row_number() over (
        partition by r.run_id, i.machine_id order by i.collected_at desc, i.imported_at desc, i.import_id, i.line
    ) = 1
),
imported as (
    select
        run_id,
        machine_id,
        'import:' || source_file || ':' || line as report_id,
        cast(null as varchar) as compliance_status,
        collected_at,
        vbs_status,
        string_split(nullif(security_services_configured, ''), ',') as services_configured,
        string_split(nullif(security_services_running, ''), ',') as services_running,
        case when security_services_configured is not null
            then coalesce(list_contains(string_split(security_services_configured, ','), '2'), false) end as hvci_configured,
        coalesce(list_contains(string_split(security_services_running, ','), '2'), false) as hvci_running,
        use_wu_server,
        wu_server,
        quality_updates_source,
        no_wu_internet,
        is_virtual_machine,
        hyperv_generation,
        hyperv_role,
        wsl2,
        firmware_type,
        secure_boot,
        -- the same facts written as the phrase format, for evidence
        concat_ws(' ',
            'VirtualizationBasedSecurityStatus=' || vbs_status,
            'SecurityServicesConfigured=' || security_services_configured,
            'SecurityServicesRunning=' || security_services_running,
            'UseWUServer=' || use_wu_server,
            'WUServer=' || wu_server,
            'SetPolicyDrivenUpdateSourceForQualityUpdates=' || quality_updates_source,
            'DoNotConnectToWindowsUpdateInternetLocations=' || no_wu_internet,
            'IsVirtualMachine=' || is_virtual_machine,
            'HyperVGeneration=' || hyperv_generation,
            'HyperVRole=' || hyperv_role,
            'Wsl2=' || wsl2,
            'FirmwareType=' || firmware_type,
            'SecureBoot=' || secure_boot) as phrases,
        'import' as source,
        imported_at
    from imported_latest
),
both_routes as (
    select * from machine_configuration
    union all by name
    select * from imported
),
freshest as (
    select *
    from both_routes
    qualify row_number() over (
        partition by run_id, machine_id
        order by collected_at desc nulls last, (source = 'machine_configuration') desc, imported_at desc nulls last
    ) = 1
)
select
    g.run_id,
    g.machine_id,
    g.report_id,
    g.compliance_status,
    g.collected_at,
    g.collected_at is not null and g.collected_at >= r.as_of - to_days(r.guest_facts_max_age_days) as is_fresh,
    g.vbs_status,
    g.services_configured,
    g.services_running,
    g.hvci_configured,
    g.hvci_running,
    g.use_wu_server,
    g.wu_server,
    g.quality_updates_source,
    g.no_wu_internet,
    g.is_virtual_machine,
    g.hyperv_generation,
    g.hyperv_role,
    g.wsl2,
    g.firmware_type,
    g.secure_boot,
    g.phrases,
    g.source
from freshest g
join runs r using (run_id);
comment on view core.guest_facts is 'One row per run and machine: the freshest guest facts from either route (source): the run''s hotpatch-audit-guest Machine Configuration report with its key=value phrases parsed (machine_configuration), or an imported inventory row collected at or before the run''s as_of (import; raw.imported_guest_facts). Typed facts as in docs/guest-facts.md (VBS status and security services, Windows Update policy, virtualization, firmware), collected_at and is_fresh (not older than guest_facts_max_age_days; stale facts count as missing).';
