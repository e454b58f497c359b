-- Report view: attest_coverage_exceptions
-- Reads: audit.coverage, audit.findings, core.machines
-- The coverage exceptions an auditor signs off: one row per run and Windows machine with a data gap
-- (audit.coverage), its issues, and the audits the gap affects, taken from the evidence itself: the
-- audits in which the machine has a finding judged `unknown` in the run. A gap that left no audit
-- unknown (for example no guest facts on a machine no audit needs them for) affects nothing and says
-- so (audits_affected empty). Exported as coverage_exceptions.csv / .parquet. Follows report_owner.
create or replace view report.attest_coverage_exceptions as
with gaps as (
    select run_id, machine_id, any_value(machine_name) as machine_name,
        string_agg(issue, ', ' order by issue) as issues,
        string_agg(detail, ' ' order by issue) as detail
    from audit.coverage
    group by run_id, machine_id
),
affected as (
    select f.run_id, f.machine_id, string_agg(distinct f.audit, ', ' order by f.audit) as audits_affected,
        count(*) as unknown_findings
    from audit.findings as f
    where f.status = 'unknown'
    group by f.run_id, f.machine_id
)
select
    g.run_id, g.machine_id, g.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner,
    g.issues, coalesce(a.audits_affected, '') as audits_affected, coalesce(a.unknown_findings, 0) as unknown_findings,
    g.detail
from gaps as g
join core.machines as m on m.run_id = g.run_id and m.machine_id = g.machine_id
left join affected as a on a.run_id = g.run_id and a.machine_id = g.machine_id
where getvariable('report_owner') is null or coalesce(m.owner, '(no owner tag)') = getvariable('report_owner');

comment on view report.attest_coverage_exceptions is 'Coverage exceptions: per run and Windows machine with a data gap (audit.coverage), its issues (comma-separated), audits_affected (the audits in which the machine has a finding judged unknown in the run; empty: the gap changed no verdict), unknown_findings and the gaps'' detail. Follows the report_owner variable.';
