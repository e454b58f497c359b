-- The release calendar and price table per run: each run is judged with the calendar and prices it was
-- registered with (meta.run_calendar, meta.run_prices, copied from ref.* by hotpatch_audit.ledger.register_run),
-- so re-judging after a definition change and re-rendering a past run never use a newer calendar. Runs from
-- before those tables existed fall back to the current ref.* rows. run_id '' is the current calendar itself
-- (ref.calendar_months and ref.calendar_baselines read it for `hotpatch-audit calendar`).
create or replace view core.run_calendar as
select '' as run_id, c.* from ref.calendar as c
union all
select s.* from meta.run_calendar as s
union all
select r.run_id, c.*
from meta.runs as r
cross join ref.calendar as c
where not exists (select 1 from meta.run_calendar as s where s.run_id = r.run_id);
comment on view core.run_calendar is 'Per run: the release calendar rows it is judged with (meta.run_calendar; for runs registered before calendars were kept per run, the current ref.calendar), plus run_id '''' for the current calendar.';

create or replace view core.run_calendar_months as
with
calendar as (
    select * from core.run_calendar where kind in ('baseline', 'hotpatch', 'unplanned_baseline')
),
calendar_runs as (
    select '' as run_id, current_date as as_of union all select run_id, cast(as_of as date) from meta.runs
),
tracks as (
    select unnest(['ws2025', 'ws2022-azure-edition']) as track
),
months as (
    -- from 2024-01 (the first hotpatch calendar) to a year past the run's as-of month, at least to 2027-12
    select r.run_id, cast(unnest(range(date '2024-01-01',
        greatest(date '2028-01-01', cast(date_trunc('month', r.as_of) + interval 13 month as date)),
        interval 1 month)) as date) as month_start
    from calendar_runs r
),
grid as (
    select m.run_id, t.track, strftime(m.month_start, '%Y-%m') as month, m.month_start,
        -- second Tuesday: first Tuesday is day 1 + ((2 - isodow + 7) % 7), plus 7
        cast(m.month_start + to_days(cast((9 - isodow(m.month_start)) % 7 + 7 as integer)) as date) as second_tuesday
    from months m cross join tracks t
)
select
    g.run_id,
    g.track,
    g.month,
    g.month_start,
    coalesce(c.kind, case when month(g.month_start) in (1, 4, 7, 10) then 'baseline' else 'hotpatch' end) as kind,
    c.kb,
    c.os_build,
    try_cast(split_part(c.os_build, '.', 1) as integer) as build_number,
    try_cast(split_part(c.os_build, '.', 2) as integer) as build_ubr,
    coalesce(c.release_date, g.second_tuesday) as release_date,
    c.release_date is null as release_date_by_rule,
    coalesce(c.verified, false) as verified,
    c.kind is null as rule_only,
    c.source,
    c.source_url
from grid g
left join calendar c on c.run_id = g.run_id and c.track = g.track and c.month = g.month;
comment on view core.run_calendar_months is 'Per run (run_id '''' = the current calendar): every (track, month) from 2024-01 to 12 months past the run''s as-of month (at least to 2027-12) with its kind from the run''s calendar (core.run_calendar): the calendar row when there is one (rule_only false), else the default rule (Jan/Apr/Jul/Oct baseline, other months hotpatch; rule_only true, "calendar rule, not verified"). release_date falls back to the second Tuesday.';

create or replace view core.run_calendar_baselines as
select
    c.run_id,
    c.track,
    c.month,
    max(case when b.month <= c.month then b.month end) as baseline_month,
    min(case when b.month > c.month then b.month end) as next_baseline_month
from core.run_calendar_months as c
join core.run_calendar_months as b
    on b.run_id = c.run_id and b.track = c.track and b.kind in ('baseline', 'unplanned_baseline')
group by c.run_id, c.track, c.month;
comment on view core.run_calendar_baselines is 'Per run, track and month: the baseline (planned or unplanned) the month builds on and the next one, from the run''s calendar; a machine must be on baseline_month to receive the month''s hotpatch, and an off-track machine returns at next_baseline_month.';

create or replace view ref.calendar_months as
select * exclude (run_id) from core.run_calendar_months where run_id = '';
comment on view ref.calendar_months is 'The current calendar''s month grid (core.run_calendar_months of run_id ''''): every (track, month) from 2024-01 to 12 months past today (at least to 2027-12) with its kind, the calendar row when there is one (rule_only false), else the default rule (rule_only true). Audits read their run''s own grid, never this one.';

create or replace view ref.calendar_baselines as
select * exclude (run_id) from core.run_calendar_baselines where run_id = '';
comment on view ref.calendar_baselines is 'The current calendar''s baselines per track and month (core.run_calendar_baselines of run_id '''').';

create or replace view core.run_prices as
select s.* from meta.run_prices as s
union all
select r.run_id, p.*
from meta.runs as r
cross join ref.prices as p
where not exists (select 1 from meta.run_prices as s where s.run_id = r.run_id);
comment on view core.run_prices is 'Per run: the price table rows it is priced with (meta.run_prices; for runs registered before prices were kept per run, the current ref.prices).';
