-- Report view: exceptions_by_month
-- Reads: audit.period_exceptions
-- The period's exceptions counted (the register itself is exceptions.csv and the appendix): per run,
-- audit and month, the non-compliant machine-months by state (open now, closed since, past outcome,
-- waived) and their exposure in days; months before the reporting period are left out.
create or replace view report.exceptions_by_month as
select
    e.run_id, e.audit, e.month,
    count(*) as exceptions,
    count(*) filter (where state = 'open') as open,
    count(*) filter (where state = 'closed') as closed,
    count(*) filter (where state = 'past') as past,
    count(*) filter (where state = 'waived') as waived,
    count(distinct e.machine_id) as machines,
    coalesce(sum(exposure_days), 0) as exposure_days
from audit.period_exceptions as e
join core.run_settings as p on p.run_id = e.run_id and e.month between p.period_start_month and p.as_of_month
where getvariable('report_owner') is null or coalesce(e.owner, '(no owner tag)') = getvariable('report_owner')
group by e.run_id, e.audit, e.month;

comment on view report.exceptions_by_month is 'Per run, audit and month: the period''s exceptions (audit.period_exceptions) counted: exceptions, open, closed, past, waived, machines, exposure_days (summed). Follows the report_owner variable.';
