-- Report view: attest_coverage_summary
-- Reads: report.attest_coverage_exceptions, ref.audits
-- Per run and audit: how many machines the audit could not judge for missing or stale data, and which
-- issues they have; plus a row 'none' for machines whose gap affected no audit.
create or replace view report.attest_coverage_summary as
with per_audit as (
    select e.run_id, trim(a.audit) as audit, e.machine_id, e.issues
    from report.attest_coverage_exceptions as e, unnest(string_split(e.audits_affected, ',')) as a(audit)
    where e.audits_affected <> ''
    union all
    select run_id, 'none', machine_id, issues from report.attest_coverage_exceptions where audits_affected = ''
)
select
    p.run_id, p.audit, coalesce(ra.audit_order, 99) as audit_order,
    count(distinct p.machine_id) as machines,
    string_agg(distinct i.issue, ', ' order by i.issue) as issues
from per_audit as p
cross join unnest(string_split(p.issues, ', ')) as i(issue)
left join ref.audits as ra on ra.audit = p.audit
group by p.run_id, p.audit, ra.audit_order;

comment on view report.attest_coverage_summary is 'Per run and audit: machines the audit judged unknown for missing or stale data (report.attest_coverage_exceptions) and their issues; audit none: machines with a gap that affected no audit. Follows the report_owner variable.';
