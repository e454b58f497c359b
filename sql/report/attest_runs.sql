-- Report view: attest_runs
-- Reads: meta.runs, meta.query_stats, audit.coverage, core.machines, core.run_settings
-- The monthly runs behind the period: per reporting run, every run of the same scope whose as-of time
-- falls in the reporting period and not after the reporting run's, with its status and completeness
-- (queries complete, Windows machines with a data gap). Superseded runs were replaced by a later run of
-- the same scope and as-of time (superseded_by) and are listed so nothing is silently left out.
create or replace view report.attest_runs as
with queries as (
    select run_id, count(*) as queries_total,
        count(*) filter (where complete and error is null) as queries_complete
    from meta.query_stats group by run_id
),
gaps as (
    select run_id, count(distinct machine_id) as machines_with_gaps from audit.coverage group by run_id
),
machines as (
    select run_id, count(*) filter (where os_family = 'windows') as windows_machines from core.machines group by run_id
)
select
    rep.run_id, r.run_id as period_run_id, r.as_of, r.status, r.is_monthly, r.superseded_by, r.source,
    coalesce(q.queries_total, 0) as queries_total, coalesce(q.queries_complete, 0) as queries_complete,
    coalesce(m.windows_machines, 0) as windows_machines, coalesce(g.machines_with_gaps, 0) as machines_with_gaps
from meta.runs as rep
join core.run_settings as p on p.run_id = rep.run_id
join meta.runs as r on r.scope = rep.scope and r.as_of <= rep.as_of
    and strftime(r.as_of, '%Y-%m') between p.period_start_month and p.as_of_month
left join queries as q on q.run_id = r.run_id
left join gaps as g on g.run_id = r.run_id
left join machines as m on m.run_id = r.run_id;

comment on view report.attest_runs is 'Per reporting run: every run of its scope with an as-of time in its reporting period (not after its own): status, is_monthly, superseded_by, source, queries_complete of queries_total, windows_machines and machines_with_gaps (audit.coverage).';
