create or replace view audit.all_findings as
with every_audit as (
    select * from audit.reboot_avoidance
    union all by name
    select * from audit.missed_hotpatches
    union all by name
    select * from audit.wsus_misconfigurations
    union all by name
    select * from audit.vbs_blockers
)
-- state: the finding's place in its lifecycle (see docs/findings.md). Audit 2 sets it itself (a month's
-- miss closes when a later cumulative update supersedes it); for the others: pass is compliant, unknown
-- is not judged, a past month's reboot-avoidance outcome is a fact of the period (past), avoidable_reboot
-- is an opportunity, everything else is still present at the as-of time (open).
select * replace (
    coalesce(state, case
        when status = 'pass' then 'compliant'
        when status = 'unknown' then 'not_judged'
        when audit = 'reboot_avoidance' and code = 'avoidable_reboot' then 'opportunity'
        when audit = 'reboot_avoidance' then 'past'
        else 'open' end) as state
)
from every_audit;
comment on view audit.all_findings is 'Every audit''s findings in one shape (finding_id, run_id, audit, code, machine, scope, track, month, status, severity, reason, remediation, evidence) and their lifecycle: state (open, closed, past, opportunity, compliant, not_judged), closed_reason, closed_by, closed_at, exposure_days.';
