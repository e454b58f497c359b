-- audit.settled_findings(view): one audit view's findings (or audit.every_audit's: the union of the audit views
-- named by the metadata files, sql/audit/*.toml, created by hotpatch_audit.audit_meta right before this file is
-- applied) with their lifecycle state settled. The audit stage stores each audit through it
-- (hotpatch_audit.analyze.materialize_findings): binding only that audit's view, not all four.
-- state: the finding's place in its lifecycle (see docs/findings.md). Audit 2 sets it itself (a month's
-- miss closes when a later cumulative update supersedes it); for the others: pass is compliant, unknown
-- is not judged, and a non-compliant finding takes its code's state from the metadata (ref.audit_codes:
-- open by default; past for a past month's reboot-avoidance outcome; opportunity for avoidable_reboot).
create or replace macro audit.settled_findings(audit_view) as table
select f.* replace (
    coalesce(f.state, case
        when f.status = 'pass' then 'compliant'
        when f.status = 'unknown' then 'not_judged'
        else coalesce(c.state, 'open') end) as state
)
from (
    -- the audit views that settle no state have no state column: union by name gives it to them, null
    select * from query_table(audit_view) union all by name select null::varchar as state where false
) f
left join ref.audit_codes c on c.audit = f.audit and c.code = f.code;

create or replace view audit.all_findings as
select * from audit.settled_findings('audit.every_audit');
comment on view audit.all_findings is 'Every audit''s findings in one shape (finding_id, run_id, audit, code, machine, scope, track, month, status, severity, reason, remediation, evidence) and their lifecycle: state (open, closed, past, opportunity, compliant, not_judged), closed_reason, closed_by, closed_at, exposure_days.';
