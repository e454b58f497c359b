-- Guest facts per run and machine, from either route (docs/guest-facts.md), both in raw.guest_facts:
--   machine_configuration: the run's own hotpatch-audit-guest Machine Configuration report (parsed at load);
--   import: rows loaded by hotpatch-audit import-facts, not tied to a run, collected_at <= the run's as_of.
-- The freshest facts win (a tie goes to the run's own Machine Configuration report); facts older than
-- guest_facts_max_age_days are kept but is_fresh is false, and the audits treat them as missing.
create or replace view core.guest_facts as
with
runs as (
    select run_id, as_of, guest_facts_max_age_days from core.run_settings
),
candidates as (
    select run_id, g.* exclude (run_id)
    from raw.guest_facts g
    where g.source = 'machine_configuration'
    union all by name
    -- per run and machine, the freshest imported row collected at or before the run's as_of
    select r.run_id, g.* exclude (run_id)
    from runs r
    join raw.guest_facts g on g.source = 'import' and g.collected_at <= r.as_of
    qualify row_number() over (
        partition by r.run_id, g.machine_id order by g.collected_at desc, g.loaded_at desc, g.import_id, g.line
    ) = 1
),
typed as (
    select
        run_id,
        machine_id,
        report_id,
        compliance_status,
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
        phrases,
        source,
        case when source = 'import' then loaded_at end as imported_at
    from candidates
),
freshest as (
    select *
    from typed
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
comment on view core.guest_facts is 'One row per run and machine: the freshest guest facts from either route (source): the run''s hotpatch-audit-guest Machine Configuration report with its key=value phrases parsed (machine_configuration), or an imported inventory row collected at or before the run''s as_of (import); both routes are rows of raw.guest_facts. Typed facts as in docs/guest-facts.md (VBS status and security services, Windows Update policy, virtualization, firmware), collected_at and is_fresh (not older than guest_facts_max_age_days; stale facts count as missing).';
