-- The cumulative updates each machine installed on its track, by release month, and the update that is
-- current at each run's as-of time. The findings lifecycle (sql/audit/41_missed_hotpatches.sql) reads
-- both: a month's miss is closed by any later cumulative update of the track (it carries the missed
-- fixes), an open action names only the update that is current now.

-- Computed live as audit.track_updates_live; audit.track_updates is the same rows materialized per run
-- (hotpatch_audit.analyze.materialize_run, after audit.machine_months, which it reads), read by three parts of
-- missed_hotpatches.
create or replace view audit.track_updates_live as
with
installed as (
    -- install records: hotpatches, baselines and standard or out-of-band cumulative updates
    select p.run_id, p.machine_id, coalesce(p.hotpatch_month, p.title_month) as release_month, p.track_role,
        p.kb, p.start_time as installed_at, 'install' as proved_by
    from core.installed_patches p
    where p.is_installed
        and p.track_role in ('hotpatch', 'baseline', 'unplanned_baseline', 'oob_lcu', 'other_lcu', 'other_hotpatch')
),
by_build as (
    -- Arc osVersion at or above a month's build (audit.machine_months' build proof), when no install record says so
    select mm.run_id, mm.machine_id, mm.month as release_month,
        case when mm.kind = 'hotpatch' then 'hotpatch' else mm.kind end as track_role,
        coalesce(mm.month_kb, mm.effective_kb) as kb, mm.month_kb_build_seen_at as installed_at, 'build' as proved_by
    from audit.machine_months mm
    where mm.month_kb_installed_by_build and mm.month_kb_build_seen_at is not null
),
by_title as (
    -- months the calendar lists without a KB: the release recognised by title (audit.machine_months)
    select mm.run_id, mm.machine_id, mm.month as release_month, mm.kind as track_role,
        mm.effective_kb as kb, mm.month_kb_installed_at as installed_at, 'title' as proved_by
    from audit.machine_months mm
    where mm.month_kb_matched_by = 'title' and mm.month_kb_installed_at is not null
)
select * from installed
union all by name
select * from by_build
union all by name
select * from by_title;
comment on view audit.track_updates_live is 'Computed live (every run): Per run and Windows machine: every cumulative update of its track it installed (track_role hotpatch, baseline, unplanned_baseline, oob_lcu, other_lcu, other_hotpatch from core.installed_patches; release_month is the calendar month of the KB, else the month its title names) or that its Arc OS build proves (proved_by build: installed_at is the as-of of the first run that showed the build; proved_by title: a month the calendar lists without a KB, recognised by title). A later cumulative update carries every earlier month''s fixes: it closes earlier misses.';

create table if not exists audit.track_updates as select * from audit.track_updates_live limit 0;
comment on table audit.track_updates is 'Materialized per run from audit.track_updates_live when the run is audited. Per run and Windows machine: every cumulative update of its track it installed (track_role hotpatch, baseline, unplanned_baseline, oob_lcu, other_lcu, other_hotpatch from core.installed_patches; release_month is the calendar month of the KB, else the month its title names) or that its Arc OS build proves (proved_by build: installed_at is the as-of of the first run that showed the build; proved_by title: a month the calendar lists without a KB, recognised by title). A later cumulative update carries every earlier month''s fixes: it closes earlier misses.';

create or replace view audit.track_current as
with
runs as (
    select run_id, as_of from core.run_settings
),
released as (
    select c.run_id, c.track, c.month, c.kind, c.kb, c.release_date
    from core.run_calendar_months c
    join runs r on r.run_id = c.run_id and c.release_date <= cast(r.as_of as date)
)
select
    run_id,
    track,
    -- first(... order by): a month without a KB must give null, never an older month's KB
    max(month) as current_month,
    first(kind order by month desc) as current_kind,
    first(kb order by month desc) as current_kb,
    max(month) filter (where kind in ('baseline', 'unplanned_baseline')) as current_baseline_month,
    first(kb order by month desc) filter (where kind in ('baseline', 'unplanned_baseline')) as current_baseline_kb
from released
group by run_id, track;
comment on view audit.track_current is 'Per run and track: the update current at the run''s as-of time (the latest calendar month released by then: current_month, current_kind, current_kb; KB null where the calendar lists none) and the current baseline (current_baseline_month, current_baseline_kb). Open actions name these, never a superseded update.';
