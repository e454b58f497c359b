-- Computed live as audit.off_track_events_live; audit.off_track_events is the same rows materialized per run
-- (hotpatch_audit.analyze.materialize_run), so machine_months and missed_hotpatches' parts read them once.
create or replace view audit.off_track_events_live as
with
runs as (
    select run_id, scope, as_of, as_of_month, period_start_month from core.run_settings
),
calendar as (
    select run_id, track, month, month_start, kind from core.run_calendar_months
),
quarter_baseline as (
    select run_id, track, month, baseline_month, next_baseline_month from core.run_calendar_baselines
),
lookback as (
    -- look back to the baseline of the period's first month: an event before the period can still
    -- cost months inside it, and it is found in the ledger's history of earlier runs
    select r.run_id, r.scope, r.as_of, r.as_of_month, q.track, coalesce(q.baseline_month, r.period_start_month) as lookback_month
    from runs r
    join quarter_baseline q on q.run_id = r.run_id and q.month = r.period_start_month
),
machines as (
    select run_id, machine_id, machine_kind, track, hotpatch_status from core.machines where os_family = 'windows' and track is not null
),
status_history as (
    select run_id, machine_id, hotpatch_status from core.machines
),
licence_event as (
    select run_id, cause, split_part(months_lost, '..', 1) as first_month, split_part(months_lost, '..', 2) as last_month
    from core.run_calendar where kind = 'licence_expiry' and applies_to = 'arc' and track = 'ws2025'
),
candidates as (
    -- a cumulative update other than the baseline or hotpatch: an out-of-band LCU in any month,
    -- or a standard LCU in a hotpatch month (judged by KB and title, never by build)
    select p.run_id, l.scope, l.as_of, p.machine_id, m.machine_kind, m.track, p.month, p.kb, p.start_time,
        p.calendar_cause, q.next_baseline_month
    from core.installed_patches p
    join machines m on m.run_id = p.run_id and m.machine_id = p.machine_id
    join lookback l on l.run_id = p.run_id and l.track = m.track
    join calendar c on c.run_id = p.run_id and c.track = m.track and c.month = p.month
    join quarter_baseline q on q.run_id = p.run_id and q.track = m.track and q.month = p.month
    where p.is_installed and p.month >= l.lookback_month and p.month <= l.as_of_month
        and (p.track_role = 'oob_lcu' or (p.track_role = 'other_lcu' and c.kind = 'hotpatch'))
),
grouped as (
    select c.*, min(c.month) over (partition by c.run_id, c.machine_id, c.next_baseline_month) as event_month
    from candidates c
),
events as (
    -- one event per stretch off the track (up to the next baseline): the first month that left it
    select run_id, scope, as_of, machine_id, machine_kind, track, next_baseline_month, event_month,
        min(start_time) as event_at,
        string_agg(distinct kb, ', ' order by kb) filter (where month = event_month) as event_kbs,
        max(calendar_cause) filter (where month = event_month) as kb_cause,
        string_agg(distinct kb, ', ' order by kb) as all_kbs
    from grouped
    group by all
),
month_info as (
    -- per run, track and month of the look-back window (no machine data): which run tells the status
    -- at the start of the month (the latest run of the scope before it, else the closest after) and
    -- the hotpatch months lost if a machine leaves the track that month (up to the next baseline, not
    -- after the as-of month)
    select l.run_id, l.track, c.month,
        (select arg_max(o.evidence_run_id, o.evidence_as_of) from core.run_evidence o where o.run_id = l.run_id and o.evidence_as_of < c.month_start) as run_before,
        (select arg_min(o.evidence_run_id, o.evidence_as_of) from core.run_evidence o where o.run_id = l.run_id and o.evidence_as_of >= c.month_start) as run_after,
        (select string_agg(h.month, ', ' order by h.month) from calendar h
            where h.run_id = l.run_id and h.track = l.track and h.kind = 'hotpatch' and h.month >= c.month
                and (q.next_baseline_month is null or h.month < q.next_baseline_month)
                and h.month <= greatest(l.as_of_month, c.month)) as months_lost
    from lookback l
    join calendar c on c.run_id = l.run_id and c.track = l.track and c.month >= l.lookback_month and c.month <= l.as_of_month
    join quarter_baseline q on q.run_id = l.run_id and q.track = c.track and q.month = c.month
)
select
    e.run_id,
    e.machine_id,
    e.track,
    e.event_month,
    e.event_at,
    e.event_kbs,
    e.all_kbs,
    e.next_baseline_month,
    coalesce(e.kb_cause, le.cause) as event_cause,
    mi.months_lost,
    sh.hotpatch_status as status_at_event,
    coalesce(mi.run_before, mi.run_after) as status_run_id,
    mi.run_before is null as status_from_later_run,
    coalesce(sh.hotpatch_status = 'Enabled', false) as enrolled_at_event
from events e
join month_info mi on mi.run_id = e.run_id and mi.track = e.track and mi.month = e.event_month
left join status_history sh on sh.run_id = coalesce(mi.run_before, mi.run_after) and sh.machine_id = e.machine_id
left join (select run_id, max(cause) as cause, first_month, last_month from licence_event group by all) le
    on le.run_id = e.run_id and e.machine_kind = 'arc' and e.track = 'ws2025' and e.event_month between le.first_month and le.last_month;
comment on view audit.off_track_events_live is 'Computed live (every run): Per run and machine on a hotpatch track: each stretch off the track (an out-of-band LCU in any month, or a standard cumulative update in a hotpatch month, judged by KB and title), looked for from the baseline of the period''s first month (so an event before the period is found in the history of earlier runs): event month and the KB(s) that left the track in it, all off-track KBs up to the next baseline, the calendar event that explains it (KB cause or the Arc licence expiry), the hotpatch months lost (up to the next baseline, not after the as-of month) and whether the machine was Enabled at the start of the event month.';

create table if not exists audit.off_track_events as select * from audit.off_track_events_live limit 0;
comment on table audit.off_track_events is 'Materialized per run from audit.off_track_events_live when the run is audited. Per run and machine on a hotpatch track: each stretch off the track (an out-of-band LCU in any month, or a standard cumulative update in a hotpatch month, judged by KB and title), looked for from the baseline of the period''s first month (so an event before the period is found in the history of earlier runs): event month and the KB(s) that left the track in it, all off-track KBs up to the next baseline, the calendar event that explains it (KB cause or the Arc licence expiry), the hotpatch months lost (up to the next baseline, not after the as-of month) and whether the machine was Enabled at the start of the event month.';
