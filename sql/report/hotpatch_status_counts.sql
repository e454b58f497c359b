-- Report view: hotpatch_status_counts
-- Reads: core.machines
-- One row per run and hotpatch status (the portal's words), Windows machines only; every status is
-- listed, zero included, in the order of audits.md.
create or replace view report.hotpatch_status_counts as
with statuses (hotpatch_status, status_order) as (
    values ('Enabled', 1), ('Pending', 2), ('Action Required', 3), ('Disabled', 4), ('Canceled', 5),
           ('Enrollment Failed', 6), ('Not Enrolled', 7), ('Not Available', 8), ('Unknown', 9)
),

counts as (
    select run_id, coalesce(hotpatch_status, 'Unknown') as hotpatch_status, count(*) as machines
    from core.machines
    where os_family = 'windows' and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
    group by all
)

select
    runs.run_id,
    statuses.hotpatch_status,
    statuses.status_order,
    coalesce(counts.machines, 0) as machines
from meta.runs as runs
cross join statuses
left join counts on counts.run_id = runs.run_id and counts.hotpatch_status = statuses.hotpatch_status;

comment on view report.hotpatch_status_counts is 'Per run and hotpatch status (Enabled ... Unknown, status_order as in audits.md): Windows machines with that status, zero included.';
