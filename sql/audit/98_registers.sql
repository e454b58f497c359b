-- The two registers over audit.findings (docs/findings.md) and the hotpatch rates.
--   audit.open_actions       "Open now", the owner's list: one row per run, machine and root cause
--                            (computed live as audit.open_actions_live, stored per run once its
--                            findings and waivers are in: the report and the exports read it often)
--   audit.period_exceptions  "The period's exceptions", the auditor's register: every non-compliant
--                            machine-month of the period, open or closed, with its exposure
--   audit.hotpatch_rates     hotpatch efficacy and reboot-free coverage per hotpatch month

create or replace view audit.open_findings as
with
open_rows as (
    -- Two branches whose filters DuckDB pushes into the scan, so it reads the other columns (reasons, params,
    -- evidence) of the open rows only. The one filter `coalesce(state, ...) = 'open'` read them for every
    -- fail, warn and unknown finding first: at 100,000 machines 0.29 s per read of this view instead of 0.02 s.
    select * from audit.findings
    where status in ('fail', 'warn', 'unknown') and state = 'open'
    union all
    -- runs audited before the lifecycle existed (state null): fail and warn count as open, as they did
    select * from audit.findings
    where status in ('fail', 'warn') and state is null
),
machine_causes as (
    -- causes that explain a machine's missed months: the update source (WSUS) first, then VBS not running
    select run_id, machine_id,
        bool_or(code in ('wsus_confirmed', 'wsus_suspected')) as on_wsus,
        bool_or(code in ('VBS_NOT_ENABLED', 'VBS_NOT_RUNNING', 'VBS_NESTED_VIRTUALIZATION') and status = 'fail') as vbs_down
    from open_rows
    group by run_id, machine_id
)
select
    f.*,
    case
        when f.code in ('wsus_confirmed', 'wsus_suspected', 'wsus_unenrolled') then 'update_source'
        when f.audit = 'vbs_blockers' then 'vbs'
        when f.code in ('missed', 'baseline_missed', 'off_track') and c.on_wsus then 'update_source'
        when f.code in ('missed', 'baseline_missed', 'off_track') and c.vbs_down then 'vbs'
        when f.code in ('missed', 'baseline_missed', 'off_track') then 'behind'
        when f.code = 'stale' then 'assessment'
        when f.code = 'enrollment_lost' then 'enrollment'
        else f.code
    end as root_cause,
    -- which finding's reason and fix speak for the action: the cause itself first, then the current
    -- baseline (a machine must be on it before a hotpatch applies), then off track, then the newest miss
    case
        when f.code in ('wsus_confirmed', 'wsus_suspected', 'wsus_unenrolled') or f.audit = 'vbs_blockers' then 0
        when f.code = 'baseline_missed' then 1
        when f.code = 'off_track' then 2
        else 3
    end as action_priority
from open_rows f
left join machine_causes c on c.run_id = f.run_id and c.machine_id = f.machine_id;
comment on view audit.open_findings is 'The open findings of audit.findings (state open: present at the as-of time and fixable; waived ones are not open) with root_cause, the cause they share on their machine: update_source (WSUS; a machine''s missed months on WSUS belong to it), vbs (readiness gates 4-8; missed months of an Enabled machine whose VBS does not run belong to it), behind (missed, baseline_missed, off_track: not on the current update of the track), assessment (stale), enrollment (enrollment_lost), else the code. action_priority: which finding speaks for the action (0 the cause, 1 baseline, 2 off track, 3 a miss).';

create or replace view audit.open_actions_live as
with
grouped as (
    select run_id, machine_id, root_cause,
        -- the lead: which finding speaks for the action (an ordered aggregate over the keys: a window over the
        -- whole rows, reasons and evidence included, took 0.28 of the 0.7 s this view took at 100,000 machines)
        first(finding_id order by action_priority,
            month desc nulls first,
            case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end,
            code, finding_id) as lead_finding_id,
        count(*) as findings,
        list(finding_id order by finding_id) as finding_ids,
        string_agg(distinct code, ', ' order by code) as codes,
        string_agg(distinct month, ', ' order by month) as months,
        min(month) as first_month,
        max(exposure_days) as days_overdue,
        bool_or(status = 'fail') as any_fail,
        bool_or(status = 'warn') as any_warn,
        min(case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end) as severity_rank
    from audit.open_findings
    group by run_id, machine_id, root_cause
),
first_open as (
    -- when each open finding of the run was first open (fail or warn) in a good run of its scope: the start
    -- of the remediation clock for causes that carry no due date of their own (VBS, WSUS, enrollment)
    select o.run_id, o.finding_id, min(r.as_of) as first_open_at
    from audit.open_findings o
    join meta.runs cur on cur.run_id = o.run_id
    join audit.findings f on f.finding_id = o.finding_id and f.status in ('fail', 'warn')
    join meta.runs r on r.run_id = f.run_id and r.scope = cur.scope and r.status = 'succeeded' and r.as_of <= cur.as_of
    group by o.run_id, o.finding_id
),
due as (
    select g.run_id, g.machine_id, g.root_cause,
        -- the longest exposure runs from a due date (grace end); else the earliest time one was seen open
        coalesce(cast(rs.as_of as date) - g.days_overdue,
                 cast(min(fo.first_open_at) as date), cast(rs.as_of as date)) as opened_on,
        [rs.remediation_days_critical, rs.remediation_days_high, rs.remediation_days_medium,
         rs.remediation_days_low, rs.remediation_days_info][g.severity_rank + 1] as remediation_days
    from grouped g
    join core.run_settings rs on rs.run_id = g.run_id
    left join audit.open_findings o on o.run_id = g.run_id and o.machine_id = g.machine_id and o.root_cause = g.root_cause
    left join first_open fo on fo.run_id = o.run_id and fo.finding_id = o.finding_id
    group by g.run_id, g.machine_id, g.root_cause, g.days_overdue, g.severity_rank, rs.as_of,
        rs.remediation_days_critical, rs.remediation_days_high, rs.remediation_days_medium,
        rs.remediation_days_low, rs.remediation_days_info
)
select
    md5('action|' || r.root_cause || '|' || r.machine_id) as action_id,
    r.run_id, r.audit, r.code, r.root_cause, r.machine_id, r.machine_name, r.machine_kind, r.subscription_id,
    r.resource_group, r.owner, r.track,
    g.months, g.first_month,
    case when g.any_fail then 'fail' when g.any_warn then 'warn' else 'unknown' end as status,
    ['critical', 'high', 'medium', 'low', 'info'][g.severity_rank + 1] as severity,
    g.severity_rank,
    g.days_overdue,
    r.reason, r.remediation, r.reason_key, r.remediation_key, r.params,
    g.codes, g.findings, g.finding_ids,
    r.finding_id as lead_finding_id,
    d.opened_on, d.remediation_days, d.opened_on + d.remediation_days as due_date
from grouped g
join audit.open_findings r on r.run_id = g.run_id and r.machine_id = g.machine_id and r.root_cause = g.root_cause
    and r.finding_id = g.lead_finding_id
join due d on d.run_id = g.run_id and d.machine_id = g.machine_id and d.root_cause = g.root_cause;
comment on view audit.open_actions_live is 'Computed live from audit.findings: Open now, the owner''s list: one action per run, machine and root cause (audit.open_findings), stable action_id = md5(action|root_cause|machine_id). The lead finding (audit, code, reason, remediation, lead_finding_id) speaks for it: the cause itself, else the newest baseline, else off track, else the newest miss, so the fix names only an update current at the as-of time. months: every month the action explains; codes, findings and finding_ids: the open findings it groups; status fail if any is fail; severity the highest; days_overdue the longest exposure. opened_on: when the remediation clock started (the due date of the longest exposure, else the first good run of the scope in which one of its findings was open, else the as-of date); remediation_days: the window of its severity (settings remediation_days_*); due_date = opened_on + remediation_days (before it is past the as-of date, the action is within its window).';
create table if not exists audit.open_actions as select * from audit.open_actions_live limit 0;
comment on table audit.open_actions is 'Materialized per run from audit.open_actions_live once the run''s findings and waivers are stored. Open now, the owner''s list: one action per run, machine and root cause (audit.open_findings), stable action_id = md5(action|root_cause|machine_id). The lead finding (audit, code, reason, remediation, lead_finding_id) speaks for it: the cause itself, else the newest baseline, else off track, else the newest miss, so the fix names only an update current at the as-of time. months: every month the action explains; codes, findings and finding_ids: the open findings it groups; status fail if any is fail; severity the highest; days_overdue the longest exposure. opened_on: when the remediation clock started (the due date of the longest exposure, else the first good run of the scope in which one of its findings was open, else the as-of date); remediation_days: the window of its severity (settings remediation_days_*); due_date = opened_on + remediation_days (before it is past the as-of date, the action is within its window).';

create or replace view audit.period_exceptions as
select
    f.run_id, f.finding_id, f.audit, f.code, f.machine_id, f.machine_name, f.machine_kind, f.subscription_id,
    f.resource_group, f.owner, f.track, f.month, f.status, f.severity,
    case when f.status = 'waived' then 'waived' else f.state end as state,
    f.closed_reason, f.closed_by, f.closed_at, f.exposure_days, f.reason, f.waiver_id
from audit.findings f
where f.month is not null
    and f.status in ('fail', 'warn', 'waived')
    and coalesce(f.state, 'open') in ('open', 'closed', 'past');
comment on view audit.period_exceptions is 'The period''s exceptions, the auditor''s register: every machine-month of the run''s period that was not compliant (status fail, warn or waived), open or closed, with its exposure in days (grace end to the closing update, or to the as-of time while open), what closed it (closed_reason, closed_by, closed_at) and whether a waiver covers it (state waived). Opportunities (avoidable_reboot) and months without a judgement (unknown) are not exceptions.';

create or replace view audit.hotpatch_rates as
select
    run_id, track, month,
    count(*) filter (where enrolled_at_start and outcome <> 'unknown') as enrolled_months,
    count(*) filter (where enrolled_at_start and outcome = 'avoided') as enrolled_avoided,
    count(*) filter (where enrolled_at_start and outcome = 'unknown') as enrolled_unknown,
    count(*) filter (where outcome <> 'unknown') as eligible_months,
    count(*) filter (where outcome = 'avoided') as avoided,
    count(*) filter (where outcome = 'unknown') as eligible_unknown,
    count(*) filter (where outcome = 'avoidable_reboot') as avoidable_reboots,
    round(100.0 * count(*) filter (where enrolled_at_start and outcome = 'avoided')
        / nullif(count(*) filter (where enrolled_at_start and outcome <> 'unknown'), 0), 1) as efficacy_pct,
    round(100.0 * count(*) filter (where outcome = 'avoided') / nullif(count(*) filter (where outcome <> 'unknown'), 0), 1) as coverage_pct
from audit.machine_months
where kind = 'hotpatch' and outcome <> 'not_applicable'
group by run_id, track, month;
comment on view audit.hotpatch_rates is 'Per run, track and hotpatch month: hotpatch efficacy = enrolled_avoided / enrolled_months (machines Enabled at the start of the month, known outcome: "does hotpatch work where we turned it on") and reboot-free coverage = avoided / eligible_months (every eligible machine, enrolled or not, known outcome: "how much of the fleet benefits"), in percent; months with an unknown outcome are left out of both and counted (enrolled_unknown, eligible_unknown); avoidable_reboots is the opportunity. Sum the counts over tracks or months before dividing.';
