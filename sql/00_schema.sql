-- hotpatch-audit ledger: schemas, run bookkeeping and raw tables.
-- Applied on every connection that writes (idempotent). Raw tables hold exactly what each KQL file in
-- queries/ returned, plus run_id; the column lists must match the KQL projections (a test checks).
-- Times in the ledger are UTC.

create schema if not exists meta;
create schema if not exists raw;
create schema if not exists ref;
create schema if not exists core;
create schema if not exists audit;
create schema if not exists report;

create table if not exists meta.runs (
    run_id          varchar primary key,
    scope           varchar not null,
    as_of           timestamp not null,
    source          varchar not null,
    tool_version    varchar not null,
    calendar_version varchar,
    started_at      timestamp not null,
    finished_at     timestamp,
    status          varchar not null,
    error           varchar,
    is_monthly      boolean not null default true,
    settings        json,
    host            varchar,
    pid             integer
);
comment on table meta.runs is 'One row per pipeline run: scope, as-of time (UTC), data source, tool and calendar version, and status (running, loaded, succeeded, incomplete, failed, superseded). A failed run keeps its row and its first error; its raw rows are never kept. A superseded run keeps its rows; superseded_by names the run of record for its scope and as-of.';

alter table meta.runs add column if not exists superseded_by varchar;
alter table meta.runs add column if not exists note varchar;
comment on column meta.runs.status is 'running, loaded (raw rows in, not yet judged), succeeded, incomplete (a query failed or came back short), failed (error says why; the first error is kept), or superseded (a run of the same scope and as-of that is at least as complete is the run of record instead; superseded_by names it; its rows are kept as evidence but it is never the latest run nor evidence for another run).';
comment on column meta.runs.superseded_by is 'For a superseded run: the run of the same scope and as-of that is the run of record instead.';
comment on column meta.runs.note is 'What happened to the run beside its status: that it was kept beside a more complete run of the same scope and as-of, which runs it superseded, or the signal that stopped it.';

create table if not exists meta.run_prices (
    run_id                   varchar not null,
    product                  varchar not null,
    track                    varchar not null,
    price_per_core_month_usd decimal(12, 4) not null,
    valid_from               date not null,
    valid_to                 date,
    verified                 boolean not null,
    source                   varchar,
    source_url               varchar,
    notes                    varchar
);
comment on table meta.run_prices is 'The price table rows (ref.prices, data/prices.csv) as they were when each run was registered; a re-render prices the run with these. Runs registered before this table existed have no rows here and read the current prices.';

create table if not exists meta.query_stats (
    run_id          varchar not null,
    query_name      varchar not null,
    query_file      varchar not null,
    query_sha256    varchar not null,
    pages           integer,
    rows_received   bigint,
    total_records   bigint,
    complete        boolean not null,
    error           varchar,
    started_at      timestamp,
    finished_at     timestamp,
    primary key (run_id, query_name)
);
comment on table meta.query_stats is 'Per run and KQL file: the file, its SHA-256, pages and rows received, totalRecords reported by the source, and whether the result was complete. An incomplete or failed query makes the run incomplete.';

create table if not exists meta.settings (
    run_id  varchar not null,
    key     varchar not null,
    value   varchar,
    primary key (run_id, key)
);
comment on table meta.settings is 'The audit settings a run was judged with (grace days, stale limits, downtime minutes per reboot...), one row per key, so views and reports read them from the ledger rather than from code.';

create table if not exists raw.azure_vms (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, tenant_id varchar, os_type varchar,
    image_publisher varchar, image_offer varchar, image_sku varchar, image_id varchar, vm_size varchar,
    patch_mode varchar, assessment_mode varchar, enable_hotpatching varchar, reboot_setting varchar,
    bypass_platform_safety_checks varchar, provision_vm_agent varchar, security_type varchar,
    secure_boot_enabled varchar, hyperv_generation varchar, power_state varchar, os_name varchar,
    os_version varchar, tags json
);
comment on table raw.azure_vms is 'Rows of queries/azure_vms.kql per run: one per Azure VM.';

create table if not exists raw.arc_machines (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, tenant_id varchar, status varchar,
    last_status_change varchar, agent_version varchar, os_name varchar, os_type varchar,
    os_version varchar, os_sku varchar, os_edition varchar, manufacturer varchar, model varchar,
    core_count varchar, logical_core_count varchar, cloud_provider varchar, firmware_type varchar,
    patch_mode varchar, assessment_mode varchar, enable_hotpatching varchar,
    hotpatch_enablement_status varchar, hotpatch_status_error json, license_status varchar,
    product_features json, tags json
);
comment on table raw.arc_machines is 'Rows of queries/arc_machines.kql per run: one per Azure Arc server.';

create table if not exists raw.patch_assessments (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, machine_id varchar, status varchar, reboot_pending varchar,
    patch_service_used varchar, os_type varchar, started_by varchar, start_date_time varchar,
    last_modified_date_time varchar, available_patch_counts json, error_details json
);
comment on table raw.patch_assessments is 'Rows of queries/patch_assessments.kql per run: the latest assessment summary per machine.';

create table if not exists raw.available_patches (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, machine_id varchar, patch_name varchar, kb_id varchar,
    classifications json, reboot_behavior varchar, msrc_severity varchar,
    published_date_time varchar, last_modified_date_time varchar
);
comment on table raw.available_patches is 'Rows of queries/available_patches.kql per run: updates the latest assessment lists as missing.';

create table if not exists raw.patch_installations (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, machine_id varchar, status varchar, reboot_status varchar,
    maintenance_window_exceeded varchar, installed_patch_count varchar, failed_patch_count varchar,
    pending_patch_count varchar, excluded_patch_count varchar, not_selected_patch_count varchar,
    patch_service_used varchar, os_type varchar, started_by varchar, start_date_time varchar,
    last_modified_date_time varchar, maintenance_run_id varchar, error_details json
);
comment on table raw.patch_installations is 'Rows of queries/patch_installations.kql per run: installation runs of the last 30 days.';

create table if not exists raw.installed_patches (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, machine_id varchar, installation_id varchar, patch_name varchar,
    kb_id varchar, classifications json, installation_state varchar, reboot_behavior varchar,
    reboot_required varchar, published_date_time varchar, last_modified_date_time varchar
);
comment on table raw.installed_patches is 'Rows of queries/installed_patches.kql per run: per-update rows of installation runs.';

create table if not exists raw.maintenance_configurations (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, maintenance_scope varchar, start_date_time varchar,
    duration varchar, time_zone varchar, recur_every varchar, reboot_setting varchar,
    classifications_to_include json, exclude_kbs_requiring_reboot varchar, tags json
);
comment on table raw.maintenance_configurations is 'Rows of the maintenance_configurations query of earlier runs (Update Manager schedules): no audit read them, so the query is no longer extracted; the table stays for the older runs.';

create table if not exists raw.maintenance_assignments (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, machine_id varchar,
    maintenance_configuration_id varchar, scope_filter json
);
comment on table raw.maintenance_assignments is 'Rows of the maintenance_assignments query of earlier runs (schedule assignments): no audit read them, so the query is no longer extracted; the table stays for the older runs.';

create table if not exists raw.guest_configuration_reports (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, machine_id varchar, compliance_status varchar,
    last_checked varchar, latest_report_id varchar, configuration_name varchar,
    configuration_version varchar, report_resources json
);
comment on table raw.guest_configuration_reports is 'Rows of queries/guest_configuration_reports.kql per run: Machine Configuration reports whose reasons carry key=value guest facts.';

create table if not exists raw.resource_containers (
    run_id varchar not null, id varchar, name varchar, type varchar, subscription_id varchar,
    resource_group varchar, location varchar, tenant_id varchar, tags json
);
comment on table raw.resource_containers is 'Rows of queries/resource_containers.kql per run: subscriptions and resource groups with tags.';

-- Guest facts from both routes in one table (docs/guest-facts.md), typed at load:
--   machine_configuration: each run's hotpatch-audit-guest Machine Configuration reports, their key=value
--     phrases parsed when the run is loaded (run_id = that run; removed with the run);
--   import: rows of a collector file loaded by hotpatch-audit import-facts (run_id NULL: they belong to no run,
--     so the ledger's per-run clean-up leaves them alone; core.guest_facts uses them for every run whose
--     as_of is at or after collected_at).
create table if not exists raw.guest_facts (
    run_id varchar,
    source varchar not null,
    report_id varchar not null,
    import_id varchar,
    source_file varchar,
    line integer,
    machine_id varchar not null,
    compliance_status varchar,
    collected_at timestamp,
    vbs_status integer,
    security_services_configured varchar,
    security_services_running varchar,
    use_wu_server integer,
    wu_server varchar,
    quality_updates_source integer,
    no_wu_internet integer,
    is_virtual_machine integer,
    hyperv_generation integer,
    hyperv_role integer,
    wsl2 integer,
    firmware_type varchar,
    secure_boot integer,
    phrases varchar,
    loaded_at timestamp not null
);
comment on table raw.guest_facts is 'Guest facts from both routes, one row per report or file line, typed at load (docs/guest-facts.md): source machine_configuration = a run''s hotpatch-audit-guest Machine Configuration report with its key=value phrases parsed when the run is loaded (run_id set); source import = a row of a collector file loaded by hotpatch-audit import-facts (run_id NULL, validated before loading, one transaction per file, a file''s content is imported once). core.guest_facts picks, per run and machine, the freshest row collected at or before the run''s as_of.';
comment on column raw.guest_facts.run_id is 'The run whose extract carried the Machine Configuration report; NULL for imported rows, which belong to no run.';
comment on column raw.guest_facts.source is 'machine_configuration (Azure Machine Configuration report) or import (hotpatch-audit import-facts).';
comment on column raw.guest_facts.report_id is 'Machine Configuration report resource id (lower-cased), or import:<file>:<line>.';
comment on column raw.guest_facts.import_id is 'SHA-256 of the imported file''s content (re-importing the same content is a no-op); NULL for Machine Configuration rows.';
comment on column raw.guest_facts.source_file is 'Path of the imported file as given to import-facts; NULL for Machine Configuration rows.';
comment on column raw.guest_facts.line is 'Line of the row in the imported file (CSV record start, JSON object start, NDJSON line).';
comment on column raw.guest_facts.machine_id is 'ARM resource id of the Azure VM or Arc machine, lower-cased.';
comment on column raw.guest_facts.compliance_status is 'Machine Configuration compliance status of the report; NULL for imported rows.';
comment on column raw.guest_facts.collected_at is 'When the facts were read on the machine (UTC): the report''s lastComplianceStatusChecked, or the collector''s collected_at.';
comment on column raw.guest_facts.vbs_status is 'VirtualizationBasedSecurityStatus: 0 not enabled, 1 enabled not running, 2 running.';
comment on column raw.guest_facts.security_services_configured is 'SecurityServicesConfigured as a comma list (1 Credential Guard, 2 HVCI); empty text: none, NULL: not reported.';
comment on column raw.guest_facts.security_services_running is 'SecurityServicesRunning as a comma list; empty text: none, NULL: not reported.';
comment on column raw.guest_facts.use_wu_server is 'UseWUServer policy (0/1; NULL not set).';
comment on column raw.guest_facts.wu_server is 'WUServer policy URL (NULL not set).';
comment on column raw.guest_facts.quality_updates_source is 'SetPolicyDrivenUpdateSourceForQualityUpdates (0 Windows Update, 1 WSUS; NULL not set).';
comment on column raw.guest_facts.no_wu_internet is 'DoNotConnectToWindowsUpdateInternetLocations (0/1; NULL not set).';
comment on column raw.guest_facts.is_virtual_machine is 'IsVirtualMachine (0/1).';
comment on column raw.guest_facts.hyperv_generation is 'HyperVGeneration (1/2) when the machine is a Hyper-V VM.';
comment on column raw.guest_facts.hyperv_role is 'HyperVRole installed (0/1).';
comment on column raw.guest_facts.wsl2 is 'Wsl2 enabled (0/1).';
comment on column raw.guest_facts.firmware_type is 'FirmwareType: UEFI or BIOS.';
comment on column raw.guest_facts.secure_boot is 'SecureBoot on (0/1).';
comment on column raw.guest_facts.phrases is 'The facts in the key=value phrase format: the report''s phrases as sent, or an imported row written in that format (evidence).';
comment on column raw.guest_facts.loaded_at is 'When the row entered the ledger (UTC): the run''s load or the import.';

-- Waivers a run applied (hotpatch_audit.waivers, docs/waivers.md).
create table if not exists meta.waivers (
    run_id        varchar not null,
    waiver_id     varchar not null,
    audit         varchar not null,
    code          varchar not null,
    scope_kind    varchar not null check (scope_kind in ('machine_id', 'resource_group', 'subscription_id', 'tag')),
    scope_key     varchar,
    scope_value   varchar not null,
    months        varchar[],
    justification varchar not null,
    approver      varchar not null,
    expires       date not null,
    machines_matched integer,
    file_path     varchar not null,
    file_sha256   varchar not null
);
comment on table meta.waivers is 'The waivers each run applied, one row per run and waiver, as read from the waiver file (file_path, file_sha256) at audit time: audit and code (matched literally), scope (scope_kind machine_id | resource_group (subscription_id/resource_group) | subscription_id | tag (scope_key = scope_value)), months (null: every month and month-less findings), justification, approver, expires (active while expires >= the run''s as-of date), machines_matched (machines of the run its scope matched when applied; 0 is a warning).';
