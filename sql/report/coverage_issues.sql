-- Report view: coverage_issues
-- Reads: meta.runs, audit.coverage
-- One row per run and coverage issue (all six, zero included): machines with missing or stale data.
create or replace view report.coverage_issues as
with issues (issue, issue_order, label) as (
    values
        ('no_assessment', 1, 'No patch assessment'),
        ('stale_assessment', 2, 'Patch assessment older than the stale limit'),
        ('no_guest_facts', 3, 'No guest facts (VBS, update source)'),
        ('stale_guest_facts', 4, 'Guest facts older than the limit'),
        ('no_installation_data', 5, 'No installation data'),
        ('hotpatch_status_unknown', 6, 'Hotpatch status unknown')
),

counts as (
    select run_id, issue, count(distinct machine_id) as machines
    from audit.coverage as c
    where (getvariable('report_owner') is null or exists (select 1 from audit.readiness as r where r.run_id = c.run_id
        and r.machine_id = c.machine_id and coalesce(r.owner, '(no owner tag)') = getvariable('report_owner')))
    group by run_id, issue
)

select
    runs.run_id,
    issues.issue,
    issues.issue_order,
    issues.label,
    coalesce(counts.machines, 0) as machines
from meta.runs as runs
cross join issues
left join counts on counts.run_id = runs.run_id and counts.issue = issues.issue;

comment on view report.coverage_issues is 'Per run and coverage issue (no_assessment, stale_assessment, no_guest_facts, stale_guest_facts, no_installation_data, hotpatch_status_unknown; zero included): label and distinct machines with that issue.';
