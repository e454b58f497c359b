-- Report view: action_items
-- Reads: audit.open_actions, audit.findings
-- What a section lists: the open actions (audit.open_actions: one row per machine and root cause, filed
-- under the audit of its lead finding, the months it explains in month) and, apart, the waived findings
-- (list_kind 'waived', never dropped). Closed findings, past months' outcomes and opportunities are the
-- period's register (audit.period_exceptions, exceptions.csv), not actions; unknown months are counted
-- in the coverage box. Each action carries its due date (opened_on + the remediation window of its
-- severity) and fix_rank, its row in the audit's roll-up (report.action_fixes). Sort keys: due date,
-- then severity, then days overdue, then machine name.
create or replace view report.action_items as
with actions as (
    select
        action_id as finding_id, run_id, audit, code, machine_id, machine_name, machine_kind, subscription_id,
        resource_group, owner, track, months as month, status, severity, reason, remediation, reason_key, remediation_key, params, days_overdue,
        root_cause, codes, findings, opened_on, remediation_days, due_date,
        'action' as list_kind
    from audit.open_actions
    where getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner')
),
waived as (
    select
        finding_id, run_id, audit, code, machine_id, machine_name, machine_kind, subscription_id,
        resource_group, owner, track, month, status, severity, reason, remediation, reason_key, remediation_key, params, exposure_days as days_overdue,
        null::varchar as root_cause, code as codes, 1 as findings, null::date as opened_on,
        null::integer as remediation_days, null::date as due_date,
        'waived' as list_kind
    from audit.findings
    where status = 'waived'
        and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
)
select
    u.*,
    r.fix_rank,
    case u.status when 'fail' then 0 when 'warn' then 0 when 'unknown' then 1 else 2 end as status_rank,
    case u.severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3
                  when 'info' then 4 else 5 end as severity_rank
from (select * from actions union all by name select * from waived) as u
left join report.action_fixes as r
    on u.list_kind = 'action' and r.run_id = u.run_id and r.audit = u.audit and r.root_cause = u.root_cause
    and r.remediation is not distinct from u.remediation;

comment on view report.action_items is 'What a report section lists: the open actions of audit.open_actions (list_kind action; finding_id is the action_id, month the months it explains, codes and findings the open findings it groups) and the waived findings (list_kind waived), with opened_on, remediation_days, due_date, fix_rank (the action''s row F<n> in report.action_fixes), status_rank (fail/warn 0, unknown 1) and severity_rank (critical 0 ... info 4). Follows the report_owner variable.';
