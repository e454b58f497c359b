create or replace view core.installations as
with
runs as (
    select run_id, scope, as_of from meta.runs
),
source_rows as (
    select i.*, r.scope, r.as_of as source_as_of
    from raw.patch_installations i
    join runs r using (run_id)
),
history as (
    -- every installation run seen in any run of the same scope up to this run's as-of;
    -- one row per installation id, as the latest of those runs saw it
    select t.run_id, s.run_id as source_run_id, s.* exclude (run_id, scope)
    from runs t
    join source_rows s on s.scope = t.scope and s.source_as_of <= t.as_of
    qualify row_number() over (partition by t.run_id, lower(s.id) order by s.source_as_of desc, s.run_id desc) = 1
)
select
    run_id,
    lower(machine_id) as machine_id,
    lower(id) as installation_id,
    try_cast(start_date_time as timestamp) as start_time,
    strftime(try_cast(start_date_time as timestamp), '%Y-%m') as month,
    status,
    reboot_status,
    coalesce(reboot_status in ('Required', 'Started', 'Completed', 'Failed'), false) as is_reboot,
    reboot_status = 'Required' as reboot_pending,
    try_cast(installed_patch_count as integer) as installed_patch_count,
    try_cast(failed_patch_count as integer) as failed_patch_count,
    try_cast(pending_patch_count as integer) as pending_patch_count,
    lower(maintenance_window_exceeded) = 'true' as maintenance_window_exceeded,
    patch_service_used,
    started_by,
    try_cast(last_modified_date_time as timestamp) as last_modified_time,
    maintenance_run_id,
    source_run_id,
    source_as_of
from history;
comment on view core.installations is 'Per run: every Update Manager installation run seen in this or an earlier run of the same scope (as_of not after this run), deduplicated by lower-cased id, with start time, month, status and reboot status (is_reboot: Required, Started, Completed or Failed).';
