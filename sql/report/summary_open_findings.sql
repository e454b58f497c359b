-- Report view: summary_open_findings
-- Reads: audit.finding_run_pairs, report.findings_overview
-- The executive summary's open findings (fail + warn) by audit and severity, and unknown and waived
-- findings, with the change since the previous good monthly run of the same scope
-- (audit.finding_run_pairs). One row per run and audit (all four) plus a total row (audit 'all',
-- audit_order 99). The *_delta columns are null without a previous run.
create or replace view report.summary_open_findings as
with overview as (
    select run_id, audit, audit_order, open, critical, high, medium, low, info, unknown, waived
    from report.findings_overview
    union all
    select
        run_id, 'all', 99, cast(sum(open) as bigint), cast(sum(critical) as bigint), cast(sum(high) as bigint),
        cast(sum(medium) as bigint), cast(sum(low) as bigint), cast(sum(info) as bigint),
        cast(sum(unknown) as bigint), cast(sum(waived) as bigint)
    from report.findings_overview
    group by run_id
)

select
    pairs.run_id,
    pairs.previous_run_id,
    cur.audit,
    cur.audit_order,
    cur.open,
    cur.critical,
    cur.high,
    cur.medium,
    cur.low,
    cur.info,
    cur.unknown,
    cur.waived,
    cur.open - prev.open as open_delta,
    cur.critical - prev.critical as critical_delta,
    cur.high - prev.high as high_delta,
    cur.medium - prev.medium as medium_delta,
    cur.low - prev.low as low_delta,
    cur.info - prev.info as info_delta,
    cur.unknown - prev.unknown as unknown_delta,
    cur.waived - prev.waived as waived_delta
from audit.finding_run_pairs as pairs
join overview as cur on cur.run_id = pairs.run_id
left join overview as prev on prev.run_id = pairs.previous_run_id and prev.audit = cur.audit;

comment on view report.summary_open_findings is 'Executive summary: per run and audit (all four, plus audit ''all'' with audit_order 99 for the total), open findings (fail + warn) and open findings by severity (critical ... info), unknown and waived findings, with open_delta, critical_delta ... info_delta, unknown_delta and waived_delta: the change since previous_run_id, the previous good monthly run of the same scope (null: no previous run). Follows the report_owner variable.';
