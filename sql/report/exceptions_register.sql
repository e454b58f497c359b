-- Report view: exceptions_register
-- Reads: audit.period_exceptions
-- The period's register as the PDF appendix prints it: one row per run, audit, machine and code, with
-- the months it covers and their state (open, closed, past, waived), the exposure in days summed, and
-- what closed the latest closed one. register_rank orders audit by audit, then machine name. Every
-- machine-month, with its finding id, is in exceptions.csv. Months before the reporting period are left out.
create or replace view report.exceptions_register as
select
    run_id, audit, machine_id, any_value(machine_name) as machine_name, any_value(owner) as owner, code,
    count(*) as months_count,
    string_agg(month || case state when 'open' then '' when 'closed' then ' ✓' when 'waived' then ' W'
        when 'past' then ' ·' else '' end, ', ' order by month) as months,
    string_agg(month, ', ' order by month) as month_list,
    count(*) filter (where state = 'open') as open,
    count(*) filter (where state = 'closed') as closed,
    coalesce(sum(exposure_days), 0) as exposure_days,
    arg_max(closed_by, closed_at) as last_closed_by,
    row_number() over (partition by run_id order by any_value(audit_order), any_value(machine_name), machine_id, code) as register_rank
from (
    select e.*, coalesce(a.audit_order, 99) as audit_order
    from audit.period_exceptions as e
    join core.run_settings as p on p.run_id = e.run_id and e.month between p.period_start_month and p.as_of_month
    left join ref.audits as a on a.audit = e.audit
    where getvariable('report_owner') is null or coalesce(e.owner, '(no owner tag)') = getvariable('report_owner')
)
group by run_id, audit, machine_id, code;

comment on view report.exceptions_register is 'The period''s exceptions (audit.period_exceptions) one row per run, audit, machine and code: months_count, months (each month with its state: no mark open, ✓ closed, W waived, · past outcome), month_list (the months alone), open, closed, exposure_days (summed), last_closed_by (the update that closed the latest closed one) and register_rank (audit order, then machine name). Follows the report_owner variable.';
