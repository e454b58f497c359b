create or replace view core.run_months as
with
runs as (
    select * from core.run_settings
),
calendar as (
    select * from core.run_calendar_months
),
period as (
    select r.scope, r.as_of, r.grace_days, c.*
    from runs r
    join calendar c
        on c.run_id = r.run_id
        and c.month_start >= r.period_start
        and c.month_start <= cast(r.as_of as date)
),
quarter_baseline as (
    select run_id, track, month, baseline_month, next_baseline_month from core.run_calendar_baselines
),
status_run_before as (
    -- "Enabled at the start of the month": the latest evidence run (core.run_evidence) before the month
    select p.run_id, p.track, p.month, arg_max(o.evidence_run_id, o.evidence_as_of) as status_run_id
    from period p
    join core.run_evidence o on o.run_id = p.run_id and o.evidence_as_of < p.month_start
    group by p.run_id, p.track, p.month
),
install_islands as (
    -- Azure keeps installation runs 30 days: each evidence run holds the runs started in [as_of - 30 days,
    -- as_of]. Overlapping windows merge into islands of continuous installation data; runs further apart than
    -- 30 days leave a gap no run collected.
    select run_id, min(w_start) as island_start, max(w_end) as island_end
    from (
        select *, sum(new_island) over (partition by run_id order by w_start, w_end rows unbounded preceding) as island
        from (
            select *,
                case when w_start <= max(w_end) over (partition by run_id order by w_start, w_end
                                                      rows between unbounded preceding and 1 preceding)
                     then 0 else 1 end as new_island
            from (select run_id, evidence_as_of - interval 30 day as w_start, evidence_as_of as w_end
                  from core.run_evidence)
        )
    )
    group by run_id, island
),
covered as (
    -- months whose whole span up to the as-of time lies in one island: no installation run of the month can
    -- have gone uncollected
    select distinct p.run_id, p.track, p.month
    from period p
    join install_islands i on i.run_id = p.run_id and i.island_start <= p.month_start
        and i.island_end >= least(p.month_start + interval 1 month, p.as_of)
),
status_run_after as (
    -- with no run before the month, the run closest after it (the reason says so)
    select p.run_id, p.track, p.month, arg_min(o.evidence_run_id, o.evidence_as_of) as status_run_id
    from period p
    join core.run_evidence o on o.run_id = p.run_id and o.evidence_as_of >= p.month_start
    group by p.run_id, p.track, p.month
)
select
    p.run_id,
    p.track,
    p.month,
    p.month_start,
    p.kind,
    p.kb,
    p.os_build,
    p.build_number,
    p.build_ubr,
    p.release_date,
    p.verified,
    p.rule_only,
    p.source_url,
    cast(p.release_date + to_days(p.grace_days) as date) as grace_end,
    cast(p.release_date + to_days(p.grace_days) as date) < cast(p.as_of as date) as is_due,
    date_diff('day', cast(p.release_date + to_days(p.grace_days) as date), cast(p.as_of as date)) as days_past_grace,
    q.baseline_month,
    q.next_baseline_month,
    coalesce(b.status_run_id, a.status_run_id) as status_run_id,
    b.status_run_id is null as status_from_later_run,
    cv.month is not null as installations_cover_month
from period p
left join quarter_baseline q on q.run_id = p.run_id and q.track = p.track and q.month = p.month
left join status_run_before b on b.run_id = p.run_id and b.track = p.track and b.month = p.month
left join status_run_after a on a.run_id = p.run_id and a.track = p.track and a.month = p.month
left join covered cv on cv.run_id = p.run_id and cv.track = p.track and cv.month = p.month;
comment on view core.run_months is 'Per run, track and month of the reporting period: the calendar kind, KB, build, release date and grace end, the baseline the month builds on and the next baseline, which run tells the hotpatch status at the start of the month (the latest run before the month, else the closest after it), and whether the installation data collected by the run and its evidence runs covers the whole month (Azure keeps installation runs 30 days).';
