-- Report view: action_items
-- Reads: audit.findings
-- The findings a section lists: every finding that is not a pass, with the sort keys of the report
-- (action list: fail and warn first, then unknown; by severity, then month, then machine name).
-- Waived findings are listed apart (list_kind = 'waived'), never dropped.
create or replace view report.action_items as
with findings as (
    select * from audit.findings where status <> 'pass' and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
)

select
    finding_id, run_id, audit, code, machine_id, machine_name, machine_kind, subscription_id,
    resource_group, owner, track, month, status, severity, reason, remediation,
    case when status = 'waived' then 'waived' else 'action' end as list_kind,
    case status when 'fail' then 0 when 'warn' then 0 when 'unknown' then 1 else 2 end as status_rank,
    case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3
                  when 'info' then 4 else 5 end as severity_rank
from findings;

comment on view report.action_items is 'Findings that are not pass, with list_kind (action for fail, warn, unknown; waived), status_rank (fail/warn 0, unknown 1) and severity_rank (critical 0 ... info 4): the report lists them ordered by status_rank, severity_rank, month, machine_name, code, finding_id.';
