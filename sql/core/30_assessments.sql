create or replace view core.assessments as
with
runs as (
    select run_id, as_of, assessment_stale_days from core.run_settings
),
assessments as (
    select
        run_id,
        lower(machine_id) as machine_id,
        lower(id) as assessment_id,
        status,
        lower(reboot_pending) = 'true' as reboot_pending,
        patch_service_used,
        os_type,
        try_cast(start_date_time as timestamp) as started_at,
        coalesce(try_cast(last_modified_date_time as timestamp), try_cast(start_date_time as timestamp)) as assessed_at,
        available_patch_counts,
        error_details
    from raw.patch_assessments
    qualify row_number() over (
        partition by run_id, lower(machine_id)
        order by coalesce(try_cast(last_modified_date_time as timestamp), try_cast(start_date_time as timestamp)) desc nulls last
    ) = 1
)
select
    a.*,
    date_diff('day', a.assessed_at, r.as_of) as age_days,
    a.assessed_at is null or a.assessed_at < r.as_of - to_days(r.assessment_stale_days) as is_stale
from assessments a
join runs r using (run_id);
comment on view core.assessments is 'The latest Update Manager assessment per run and machine, with its age at the run''s as-of time and is_stale (older than assessment_stale_days, or no time).';
