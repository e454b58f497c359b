-- Report view: attest_months
-- Reads: audit.machine_months, audit.findings, core.run_settings
-- The auditor's per-month compliance statement: per run and month of the reporting period, the machines
-- enrolled in hotpatch at the start of the month whose month's update was due by the as-of time, and
-- how many of them had it within grace. A machine-month is an exception when audit 2 (missed hotpatches)
-- has a fail, warn or waived finding on it (missed, late install, baseline_missed, off_track) or the
-- machine was off track that month (months lost to an off-track event carry no finding of their own);
-- unknown when its data could not tell (stale or missing assessment); compliant otherwise.
-- compliance_rate = compliant / (enrolled - unknown): unknown months are never counted compliant.
create or replace view report.attest_months as
with mm as (
    select mm.run_id, mm.machine_id, mm.month, mm.kind, mm.is_off_track
    from audit.machine_months as mm
    join core.run_settings as p on p.run_id = mm.run_id
    where mm.enrolled_at_start and mm.is_due and mm.month between p.period_start_month and p.as_of_month
        and (getvariable('report_owner') is null or coalesce(mm.owner, '(no owner tag)') = getvariable('report_owner'))
),
verdicts as (
    select run_id, machine_id, month,
        bool_or(status in ('fail', 'warn', 'waived')) as excepted,
        bool_or(status = 'waived') as waived,
        bool_or(status = 'unknown') as unknown
    from audit.findings
    where audit = 'missed_hotpatches' and month is not null
        and code in ('missed', 'baseline_missed', 'off_track', 'stale')
    group by run_id, machine_id, month
),
judged as (
    select mm.run_id, mm.month, mm.kind,
        case
            when coalesce(v.excepted, false) or mm.is_off_track then 'exception'
            when coalesce(v.unknown, false) then 'unknown'
            else 'compliant'
        end as verdict,
        coalesce(v.waived, false) as waived
    from mm
    left join verdicts as v on v.run_id = mm.run_id and v.machine_id = mm.machine_id and v.month = mm.month
)
select
    run_id, month,
    string_agg(distinct kind, ', ' order by kind) as kinds,
    count(*) as enrolled,
    count(*) filter (where verdict = 'compliant') as compliant,
    count(*) filter (where verdict = 'exception') as exceptions,
    count(*) filter (where verdict = 'exception' and waived) as waived,
    count(*) filter (where verdict = 'unknown') as unknown,
    count(*) filter (where verdict = 'compliant') / nullif(count(*) filter (where verdict <> 'unknown'), 0)
        as compliance_rate
from judged
group by run_id, month;

comment on view report.attest_months is 'Per run and month of the reporting period: machines enrolled at the start of the month whose update was due (enrolled), compliant (the month''s update within grace), exceptions (a fail, warn or waived missed-hotpatch finding on the month, or off track that month; waived among them), unknown (data could not tell), compliance_rate = compliant / (enrolled - unknown). Follows the report_owner variable.';
