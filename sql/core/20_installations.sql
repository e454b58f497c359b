-- Computed live as core.installations_live; core.installations is the same rows stored per run when the run is audited
-- (hotpatch_audit.analyze.materialize_run, before the audit tables, which read it): the audit and its reports
-- read the rows as judged, and the audit does not compute them again in every view.
create or replace view core.installations_live as
with
evidence as (
    select run_id, evidence_run_id, evidence_as_of from core.run_evidence
),
history as (
    -- every installation run seen in this run or an earlier evidence run of the same scope
    -- (core.run_evidence: never a failed, incomplete or superseded run); one row per installation id,
    -- as the latest of those runs saw it
    select t.run_id, s.run_id as source_run_id, t.evidence_as_of as source_as_of, s.* exclude (run_id)
    from evidence t
    join raw.patch_installations s on s.run_id = t.evidence_run_id
    qualify row_number() over (partition by t.run_id, lower(s.id) order by t.evidence_as_of desc, s.run_id desc) = 1
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
comment on view core.installations_live is 'Computed live (every run): Per run: every Update Manager installation run seen in this run or an earlier evidence run of the same scope (core.run_evidence: succeeded runs only), deduplicated by lower-cased id, with start time, month, status and reboot status (is_reboot: Required, Started, Completed or Failed).';

create table if not exists core.installations as select * from core.installations_live limit 0;
comment on table core.installations is 'Stored per run from core.installations_live when the run is audited. Per run: every Update Manager installation run seen in this run or an earlier evidence run of the same scope (core.run_evidence: succeeded runs only), deduplicated by lower-cased id, with start time, month, status and reboot status (is_reboot: Required, Started, Completed or Failed).';
