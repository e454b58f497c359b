-- Computed live as core.machines_live; core.machines is the same rows stored per run when the run is audited
-- (hotpatch_audit.analyze.materialize_run, before the audit tables, which read it): the audit and its reports
-- read the rows as judged, and the audit does not compute them again in every view.
create or replace view core.machines_live as
with
runs as (
    select run_id, billing_cores, lower(owner_tag) as owner_tag_key from core.run_settings
),
images as (
    select * from ref.hotpatch_images
),
containers as (
    select
        run_id,
        lower(type) as type,
        lower(subscription_id) as subscription_id,
        lower(coalesce(resource_group, case when lower(type) like '%/resourcegroups' then name end)) as resource_group,
        name,
        list_filter(map_entries(try_cast(json_transform(tags, '"MAP(VARCHAR, VARCHAR)"') as map(varchar, varchar))),
            lambda e: lower(e.key) = owner_tag_key)[1].value as owner_tag_raw,
        nullif(trim(owner_tag_raw), '') as owner_tag
    from raw.resource_containers
    join runs using (run_id)
),
subscriptions as (
    select run_id, subscription_id, any_value(name) as subscription_name, any_value(owner_tag) as owner_tag
    from containers where type = 'microsoft.resources/subscriptions'
    group by run_id, subscription_id
),
resource_groups as (
    select run_id, subscription_id, resource_group, any_value(owner_tag) as owner_tag
    from containers where type = 'microsoft.resources/subscriptions/resourcegroups'
    group by run_id, subscription_id, resource_group
),
azure_vms as (
    select
        v.run_id,
        lower(v.id) as machine_id,
        v.name as machine_name,
        'azure_vm' as machine_kind,
        v.subscription_id, v.resource_group, v.location, v.tags,
        case when lower(v.os_type) = 'windows' then 'windows' when lower(v.os_type) = 'linux' then 'linux' end as os_family,
        i.track as image_track,
        i.track is not null as image_eligible,
        v.os_version,
        v.os_name,
        null::varchar as os_edition,
        null::varchar as agent_status,
        v.patch_mode,
        lower(v.provision_vm_agent) = 'true' as vm_agent,
        lower(v.enable_hotpatching) = 'true' as enable_hotpatching,
        null::json as hotpatch_feature,
        null::varchar as hotpatch_enablement_status,
        null::json as hotpatch_status_error,
        null::varchar as firmware_type,
        v.secure_boot_enabled,
        v.hyperv_generation,
        v.security_type,
        null::varchar as manufacturer,
        null::varchar as model,
        null::integer as physical_cores,
        null::integer as logical_cores,
        v.power_state,
        v.image_sku
    from raw.azure_vms v
    left join images i
        on i.publisher = lower(v.image_publisher) and i.offer = lower(v.image_offer) and i.sku = lower(v.image_sku)
),
arc_machines as (
    select
        a.run_id,
        lower(a.id) as machine_id,
        a.name as machine_name,
        'arc' as machine_kind,
        a.subscription_id, a.resource_group, a.location, a.tags,
        case when lower(coalesce(a.os_type, a.os_name)) like 'windows%' then 'windows'
             when lower(coalesce(a.os_type, a.os_name)) like 'linux%' then 'linux' end as os_family,
        null::varchar as image_track,
        null::boolean as image_eligible,
        a.os_version,
        a.os_name,
        lower(concat_ws(' ', a.os_edition, a.os_sku)) as os_edition,
        a.status as agent_status,
        a.patch_mode,
        null::boolean as vm_agent,
        lower(a.enable_hotpatching) = 'true' as enable_hotpatching,
        list_filter(try_cast(from_json(a.product_features, '["json"]') as json[]),
            lambda f: lower(f->>'name') = 'hotpatch')[1] as hotpatch_feature,
        a.hotpatch_enablement_status,
        a.hotpatch_status_error,
        a.firmware_type,
        null::varchar as secure_boot_enabled,
        null::varchar as hyperv_generation,
        null::varchar as security_type,
        a.manufacturer,
        a.model,
        try_cast(a.core_count as integer) as physical_cores,
        try_cast(a.logical_core_count as integer) as logical_cores,
        null::varchar as power_state,
        null::varchar as image_sku
    from raw.arc_machines a
),
unified as (
    select * from azure_vms
    union all by name
    select * from arc_machines
),
parsed as (
    select
        u.*,
        -- os_version is 10.0.<build>.<ubr>
        try_cast(split_part(u.os_version, '.', 3) as integer) as build_number,
        try_cast(nullif(split_part(u.os_version, '.', 4), '') as integer) as build_ubr,
        u.hotpatch_feature->>'subscriptionStatus' as hotpatch_licence_status,
        try_cast(u.hotpatch_feature->>'enrollmentDate' as timestamp) as hotpatch_enrollment_date
    from unified u
),
eligibility as (
    select
        p.*,
        case
            when p.machine_kind = 'azure_vm' then p.image_track
            when p.os_family = 'windows' and p.build_number = 26100
                and (p.os_edition like '%standard%' or p.os_edition like '%datacenter%') then 'ws2025'
        end as track
    from parsed p
),
status_rule as (
    select
        e.*,
        case
            when e.machine_kind = 'azure_vm' then
                case when not e.image_eligible then 'Not Available'
                     when e.enable_hotpatching then 'Enabled'
                     else 'Disabled' end
            when e.hotpatch_feature is null then
                case when e.track is not null then 'Not Enrolled' else 'Not Available' end
            when e.hotpatch_licence_status = 'Enabled' then
                case coalesce(nullif(e.hotpatch_enablement_status, ''), 'Disabled')
                    when 'Enabled' then 'Enabled'
                    when 'Disabled' then 'Disabled'
                    when 'PendingEvaluation' then 'Pending'
                    when 'ActionRequired' then 'Action Required'
                    else 'Unknown' end
            when e.hotpatch_licence_status = 'Disabled' then 'Canceled'
            when e.hotpatch_licence_status in ('Enabling', 'Disabling') then 'Pending'
            when e.hotpatch_licence_status = 'Failed' then 'Enrollment Failed'
            else 'Unknown'
        end as hotpatch_status
    from eligibility e
)
select
    s.run_id,
    s.machine_id,
    s.machine_name,
    s.machine_kind,
    lower(s.subscription_id) as subscription_id,
    sub.subscription_name,
    s.resource_group,
    s.location,
    -- An empty tag value is no owner; the subscription id is the last resort, so every finding has one.
    coalesce(
        nullif(trim(list_filter(
            map_entries(try_cast(json_transform(s.tags, '"MAP(VARCHAR, VARCHAR)"') as map(varchar, varchar))),
            lambda e: lower(e.key) = r.owner_tag_key)[1].value), ''),
        rg.owner_tag, sub.owner_tag, nullif(trim(sub.subscription_name), ''), s.subscription_id) as owner,
    s.os_family,
    s.os_name,
    s.track,
    case when s.build_number is not null and s.build_ubr is not null
         then s.build_number || '.' || s.build_ubr end as os_build,
    s.build_number,
    s.build_ubr,
    s.hotpatch_status,
    s.hotpatch_status_error->>'code' as hotpatch_error_code,
    s.hotpatch_status_error->>'message' as hotpatch_error_message,
    coalesce(s.enable_hotpatching, false) or s.hotpatch_feature is not null as hotpatch_intended,
    s.hotpatch_licence_status,
    s.hotpatch_enablement_status,
    s.hotpatch_enrollment_date,
    s.agent_status,
    s.patch_mode,
    s.vm_agent,
    coalesce(s.image_eligible, s.track is not null) as image_eligible,
    s.image_sku,
    s.firmware_type,
    s.secure_boot_enabled,
    s.hyperv_generation,
    s.security_type,
    s.manufacturer,
    s.model,
    s.power_state,
    s.physical_cores,
    s.logical_cores,
    case when r.billing_cores = 'logical' then coalesce(s.logical_cores, s.physical_cores)
         else coalesce(s.physical_cores, s.logical_cores) end as cores,
    s.tags
from status_rule s
join runs r on r.run_id = s.run_id
left join subscriptions sub on sub.run_id = s.run_id and sub.subscription_id = lower(s.subscription_id)
left join resource_groups rg
    on rg.run_id = s.run_id and rg.subscription_id = lower(s.subscription_id) and rg.resource_group = lower(s.resource_group)
qualify row_number() over (partition by s.run_id, s.machine_id order by s.machine_kind) = 1;
comment on view core.machines_live is 'Computed live (every run): One row per run and machine (Azure VM or Arc server; machine_id is the lower-cased ARM id): owner (the run''s owner_tag setting, default owner, matched case-insensitively: the tag on the machine, then on its resource group, then on its subscription, then the subscription name, then the subscription id; empty values are skipped), OS family, hotpatch track, OS build, the portal hotpatch status (audits.md mapping), hotpatch intent, agent, patch mode, image eligibility and billed cores.';

create table if not exists core.machines as select * from core.machines_live limit 0;
comment on table core.machines is 'Stored per run from core.machines_live when the run is audited. One row per run and machine (Azure VM or Arc server; machine_id is the lower-cased ARM id): owner (the run''s owner_tag setting, default owner, matched case-insensitively: the tag on the machine, then on its resource group, then on its subscription, then the subscription name, then the subscription id; empty values are skipped), OS family, hotpatch track, OS build, the portal hotpatch status (audits.md mapping), hotpatch intent, agent, patch mode, image eligibility and billed cores.';
