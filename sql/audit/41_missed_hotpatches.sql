-- audit.in_part(part): true unless the session variable hotpatch_audit_part names another part. The audit stage
-- (hotpatch_audit.analyze.PARTS) stores this audit one part at a time: DuckDB folds the variable when it plans the
-- query and drops the other parts, so each part's joins hold memory alone (all four at once peaked at 2.5 GB
-- at 100,000 machines; one part at most 1 GB). Unset, as for every other reader, the view has every part.
create or replace macro audit.in_part(part) as coalesce(getvariable('hotpatch_audit_part') = part, true);

create or replace view audit.missed_hotpatches as
-- audit.machine_months is read where needed (a stored table: each reader scans only its columns), never through
-- a shared CTE, which DuckDB would hold in memory whole for its four readers. No CTE here carries a `not
-- materialized` hint (stored views lose them, see duck.STORAGE_VERSION); with and without them, on DuckDB 2.0.1 at
-- 100,000 machines, the four parts took the same time (4.2 to 4.3 s together, stored one part at a time).
with
machines as (
    select * from core.machines where os_family = 'windows'
),
assessments as (
    select run_id, machine_id, assessed_at, age_days, is_stale from core.assessments
),
first_install as (
    -- installation history reaches back to here; before it, absence of an install proves nothing
    select run_id, machine_id, min(start_time) as first_install_at from core.installations group by run_id, machine_id
),
track_current as (
    select * from audit.track_current
),
closure as (
    -- the first later cumulative update of the track: it carries the month's fixes, so it closes the
    -- month's miss (superseded), naming the KB and the date
    -- (is_baseline: each part reads only its own kind of month, and DuckDB computes only those)
    select mm.run_id, mm.machine_id, mm.month, mm.kind <> 'hotpatch' as is_baseline,
        min(u.installed_at) as closed_at,
        first(u.kb order by u.installed_at, u.release_month) as closed_by,
        first(u.release_month order by u.installed_at, u.release_month) as closed_month
    from audit.machine_months mm
    join audit.track_updates u on u.run_id = mm.run_id and u.machine_id = mm.machine_id and u.release_month > mm.month
    where mm.track is not null and mm.kind in ('hotpatch', 'baseline', 'unplanned_baseline')
    group by all
),
hotpatch_months as (
    select mm.*,
        month_kb_installed_at is not null as is_installed,
        coalesce(month_kb_build_seen_at <= grace_end + interval 1 day, false) as build_in_time,
        coalesce(fi.first_install_at <= mm.grace_end, false) as history_covers,
        coalesce(effective_kb, month_kb) as kb_label
    from audit.machine_months mm
    left join first_install fi using (run_id, machine_id)
    where mm.track is not null and kind = 'hotpatch' and enrolled_at_start and not is_off_track
),
missed as (
    select
        h.*,
        case
            when h.is_due and h.month_kb_available and not (h.month_kb is null and h.assessment_is_stale) then 'fail'
            when h.is_installed and h.month_kb_installed_at > h.grace_end + interval 1 day then 'warn'
            when h.is_installed and not h.assessment_is_stale then 'pass'
            when h.is_installed then 'unknown'
            when h.build_in_time and not h.assessment_is_stale then 'pass'
            when h.build_in_time then 'unknown'
            -- positive evidence of a miss: the install of the month's hotpatch failed and never succeeded
            when h.is_due and h.month_kb_failed and not h.assessment_is_stale then 'fail'
            -- calendar lists the KB and the ledger's installation history covers the month: not installed
            when h.is_due and h.month_kb is not null and not h.assessment_is_stale and h.history_covers then 'fail'
            -- the OS build shows it only in a run after the grace end: installed, not proved in time
            when h.month_kb_installed_by_build and not h.assessment_is_stale then 'warn'
            when h.is_due then 'unknown'
            when not h.assessment_is_stale then 'pass'
            else 'unknown'
        end as status,
        date_diff('day', h.grace_end, cast(coalesce(h.month_kb_installed_at, h.month_kb_build_seen_at) as date)) as days_late
    from hotpatch_months h
),
missed_life as (
    select m.*, tc.current_month, tc.current_kb,
        case when m.status = 'warn' then coalesce(m.month_kb_installed_at, m.month_kb_build_seen_at) else c.closed_at end as closed_at,
        case when m.status = 'warn' then m.kb_label else c.closed_by end as closed_by,
        case when m.status = 'warn' then m.month else c.closed_month end as closed_month,
        case when m.status = 'fail' and c.closed_at is not null then 'superseded'
             when m.status = 'warn' then 'installed_late' end as closed_reason,
        case when m.status = 'fail' and c.closed_at is not null
                 then greatest(date_diff('day', m.grace_end, cast(c.closed_at as date)), 0)
             when m.status = 'warn' then greatest(m.days_late, 0)
             when m.status = 'fail' then greatest(m.days_past_grace, 0) end as exposure_days
    from missed m
    left join closure c on c.run_id = m.run_id and c.machine_id = m.machine_id and c.month = m.month and not c.is_baseline
    left join track_current tc on tc.run_id = m.run_id and tc.track = m.track
),
missed_findings as (
    select
        case when status = 'unknown' and assessment_is_stale then 'stale' else 'missed' end as code,
        run_id, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month,
        status,
        case
            when closed_reason is not null then 'closed' when status = 'fail' then 'open' when status = 'pass' then 'compliant'
            when assessment_is_stale then 'open' else 'not_judged' end as state,
        case
            when status = 'fail' and exposure_days > 45 then 'critical'
            when status = 'fail' and exposure_days > 14 then 'high'
            when status = 'fail' then 'medium'
            when status = 'warn' then 'low'
            when status = 'unknown' then 'medium'
            else 'info'
        end as severity,
        case
            when status = 'fail' and closed_reason = 'superseded' then 'missed.superseded'
            when status = 'fail' then case when month_kb_available then 'missed.open_available'
                when month_kb_failed then 'missed.open_failed' else 'missed.open_history' end
            when status = 'warn' then case when month_kb_installed_at is not null then 'missed.late' else 'missed.late_build' end
            when status = 'pass' then case when is_installed then 'missed.in_time' when build_in_time then 'missed.in_time_build'
                else 'missed.within_grace' end
            when assessment_is_stale and assessed_at is null then 'stale.none'
            when assessment_is_stale then 'stale.old'
            when month_kb is null then 'missed.no_evidence'
            else 'missed.no_data'
        end as reason_key,
        case
            when status = 'fail' and closed_reason is not null then null
            when status = 'fail' and current_kb is not null then 'missed.fix.latest_kb'
            when status = 'fail' then 'missed.fix.latest'
            when status = 'warn' then 'missed.fix.late'
            when status = 'unknown' and assessment_is_stale then 'stale.fix'
            when status = 'unknown' then 'missed.fix.no_evidence'
        end as remediation_key,
        -- the named values the templates quote (41_missed_hotpatches.toml); `kb` is a fragment when the
        -- calendar has no KB for the month
        {
            'machine': machine_name, 'month': month, 'grace_end': cast(grace_end as varchar),
            'kb': case when month_kb is null and kb_label is null then audit.missed_hotpatches_fragment('frag.kb_unknown', {'note': calendar_note}::map(varchar, varchar))
                       when month_kb is null then audit.missed_hotpatches_fragment('frag.kb_note', {'kb_id': kb_label, 'note': calendar_note}::map(varchar, varchar))
                       else ' ' || kb_label end,
            'kb.key': case when month_kb is null and kb_label is null then 'frag.kb_unknown' when month_kb is null then 'frag.kb_note' end,
            'kb_id': kb_label, 'note': calendar_note,
            'days': cast(case when status = 'fail' and closed_reason = 'superseded' then exposure_days
                              when status = 'fail' then days_past_grace else days_late end as varchar),
            'date': case when status = 'fail' then cast(cast(closed_at as date) as varchar)
                         when status = 'warn' then cast(cast(coalesce(month_kb_installed_at, month_kb_build_seen_at) as date) as varchar)
                         else cast(assessed_at as varchar) end,
            'closed_by': coalesce(closed_by, audit.missed_hotpatches_fragment('frag.month_update', {'update_month': closed_month}::map(varchar, varchar))),
            'closed_by.key': case when closed_by is null and closed_month is not null then 'frag.month_update' end,
            'update_month': closed_month, 'closed_month': closed_month,
            'run': month_kb_build_run_id, 'current_kb': current_kb, 'current_month': current_month
        }::map(varchar, varchar) as params,
        -- only a fail or warn month can be closed: a compliant or unjudged month carries no closure (the
        -- later update stays in the evidence), as in the baselines part
        closed_reason,
        case when status in ('fail', 'warn') then closed_by end as closed_by,
        case when status in ('fail', 'warn') then closed_at end as closed_at,
        exposure_days,
        to_json({'run_id': run_id, 'month_kb': kb_label, 'matched_by': month_kb_matched_by, 'release_date': release_date, 'grace_end': grace_end,
            'installed_at': month_kb_installed_at, 'installed_by_build': month_kb_installed_by_build,
            'build_seen_at': month_kb_build_seen_at, 'build_run_id': month_kb_build_run_id,
            'install_failed': month_kb_failed,
            'available_in_assessment': month_kb_available, 'assessed_at': assessed_at,
            'status_at_start': status_at_start, 'status_run_id': status_run_id, 'status_from_later_run': status_from_later_run,
            'calendar': calendar_note, 'closed_reason': closed_reason, 'closed_by': closed_by, 'closed_month': closed_month,
            'closed_at': closed_at, 'exposure_days': exposure_days, 'current_update': current_kb, 'current_month': current_month}) as evidence
    from missed_life
),
returned as (
    -- back on the track: the next baseline (or a later baseline or hotpatch, which needs it) installed
    select e.run_id, e.machine_id, e.event_month,
        min(u.installed_at) as closed_at,
        first(u.kb order by u.installed_at, u.release_month) as closed_by,
        first(u.release_month order by u.installed_at, u.release_month) as closed_month
    from audit.off_track_events e
    join audit.track_updates u on u.run_id = e.run_id and u.machine_id = e.machine_id
        and e.next_baseline_month is not null and u.release_month >= e.next_baseline_month
        and u.track_role in ('baseline', 'unplanned_baseline', 'hotpatch', 'other_hotpatch')
    group by all
),
off_track_life as (
    select e.*, r.closed_at, r.closed_by, r.closed_month,
        case when r.closed_at is not null then 'returned' end as closed_reason,
        greatest(date_diff('day', cast(e.event_at as date), cast(coalesce(r.closed_at, rs.as_of) as date)), 0) as exposure_days,
        -- the baseline that returns the machine now: the next one, or the current one once later baselines shipped
        case when tc.current_baseline_month > e.next_baseline_month then tc.current_baseline_month else e.next_baseline_month end as return_baseline
    from audit.off_track_events e
    join core.run_settings rs on rs.run_id = e.run_id
    left join returned r on r.run_id = e.run_id and r.machine_id = e.machine_id and r.event_month = e.event_month
    left join track_current tc on tc.run_id = e.run_id and tc.track = e.track
),
off_track_findings as (
    -- one finding per event, on the month of the event (which may precede the period)
    select
        'off_track' as code,
        m.run_id, m.machine_id, m.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner, e.track,
        e.event_month as month,
        'fail' as status,
        case when e.closed_at is not null then 'closed' else 'open' end as state,
        case when e.event_cause is not null then 'medium' else 'high' end as severity,
        case when e.closed_at is not null then 'off_track.returned' when e.next_baseline_month is null then 'off_track.open_next'
             else 'off_track.open' end as reason_key,
        case when e.closed_at is not null then null
            when e.event_cause like '%licence%' then case when e.return_baseline is null then 'off_track.fix.licence_next' else 'off_track.fix.licence' end
            when e.event_cause is not null then case when e.return_baseline is null then 'off_track.fix.microsoft_next' else 'off_track.fix.microsoft' end
            else case when e.return_baseline is null then 'off_track.fix.own_next' else 'off_track.fix.own' end
        end as remediation_key,
        {
            'machine': m.machine_name, 'month': e.event_month, 'kbs': e.event_kbs, 'baseline': e.next_baseline_month,
            'lost': coalesce(e.months_lost, 'none'),
            'more': case when e.event_cause is not null and e.all_kbs <> e.event_kbs
                             then audit.missed_hotpatches_fragment('frag.cause_more_kbs', {'cause': e.event_cause, 'all_kbs': e.all_kbs}::map(varchar, varchar))
                         when e.event_cause is not null then audit.missed_hotpatches_fragment('frag.cause', {'cause': e.event_cause}::map(varchar, varchar))
                         when e.all_kbs <> e.event_kbs then audit.missed_hotpatches_fragment('frag.more_kbs', {'all_kbs': e.all_kbs}::map(varchar, varchar)) end,
            'more.key': case when e.event_cause is not null and e.all_kbs <> e.event_kbs then 'frag.cause_more_kbs'
                             when e.event_cause is not null then 'frag.cause' when e.all_kbs <> e.event_kbs then 'frag.more_kbs' end,
            'cause': e.event_cause, 'all_kbs': e.all_kbs,
            'closed_by': coalesce(e.closed_by, audit.missed_hotpatches_fragment('frag.month_update', {'update_month': e.closed_month}::map(varchar, varchar))),
            'closed_by.key': case when e.closed_by is null and e.closed_month is not null then 'frag.month_update' end,
            'update_month': e.closed_month, 'closed_month': e.closed_month,
            'date': cast(cast(e.closed_at as date) as varchar), 'days': cast(e.exposure_days as varchar),
            'return_baseline': e.return_baseline
        }::map(varchar, varchar) as params,
        e.closed_reason, e.closed_by, e.closed_at, e.exposure_days,
        to_json({'run_id': e.run_id, 'kbs': e.event_kbs, 'all_kbs': e.all_kbs, 'event_month': e.event_month, 'event_at': e.event_at,
            'months_lost': e.months_lost, 'next_baseline': e.next_baseline_month, 'cause': e.event_cause,
            'status_at_start': e.status_at_event, 'status_run_id': e.status_run_id, 'status_from_later_run': e.status_from_later_run,
            'closed_reason': e.closed_reason, 'closed_by': e.closed_by, 'closed_month': e.closed_month, 'closed_at': e.closed_at,
            'exposure_days': e.exposure_days}) as evidence
    from off_track_life e
    join machines m on m.run_id = e.run_id and m.machine_id = e.machine_id
    where e.enrolled_at_event
),
quarter_hotpatch as (
    -- a hotpatch of the quarter installed proves its baseline (hotpatches install only on it)
    select mm.run_id, mm.machine_id, mm.month,
        min(u.installed_at) as proved_at,
        first(u.kb order by u.installed_at, u.release_month) as proved_by
    from audit.machine_months mm
    join audit.track_updates u on u.run_id = mm.run_id and u.machine_id = mm.machine_id
        and u.release_month > mm.month and (mm.next_baseline_month is null or u.release_month < mm.next_baseline_month)
        and u.track_role in ('hotpatch', 'other_hotpatch')
    where mm.track is not null and mm.kind in ('baseline', 'unplanned_baseline')
    group by all
),
quarter_months as (
    -- the quarter's hotpatch months that cannot apply without the baseline (up to the as-of month)
    select c.run_id, c.track, q.baseline_month as month, string_agg(c.month, ', ' order by c.month) as months_lost
    from core.run_calendar_months c
    join core.run_calendar_baselines q on q.run_id = c.run_id and q.track = c.track and q.month = c.month
    join core.run_settings r on r.run_id = c.run_id
    where c.kind = 'hotpatch' and c.month <= r.as_of_month
    group by all
),
baselines as (
    select mm.*,
        qh.proved_at as hotpatch_proved_at, qh.proved_by as hotpatch_proved_by, qm.months_lost,
        coalesce(month_kb_installed_at is not null or month_kb_installed_by_build or qh.proved_at is not null, false) as is_installed,
        coalesce(fi.first_install_at <= mm.grace_end, false) as history_covers,
        coalesce(effective_kb, month_kb, 'the cumulative update') as kb_label
    from audit.machine_months mm
    left join first_install fi using (run_id, machine_id)
    left join quarter_hotpatch qh using (run_id, machine_id, month)
    left join quarter_months qm using (run_id, track, month)
    where mm.track is not null and kind in ('baseline', 'unplanned_baseline') and (enrolled_at_start or hotpatch_status = 'Enabled')
        and is_due
),
baseline_findings as (
    select
        case when status = 'unknown' and assessment_is_stale then 'stale' else 'baseline_missed' end as code,
        run_id, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month,
        status,
        case when status in ('fail', 'warn') and closed_at is not null then 'closed' when status in ('fail', 'warn') then 'open'
             when status = 'pass' then 'compliant' when assessment_is_stale then 'open' else 'not_judged' end as state,
        case when status = 'fail' and coalesce(exposure_days, days_past_grace) > 45 then 'critical' when status = 'fail' then 'high'
             when status = 'warn' then 'medium' when status = 'unknown' then 'medium' else 'info' end as severity,
        case
            when status in ('fail', 'warn') and closed_at is not null then 'baseline_missed.superseded'
            when status = 'fail' then 'baseline_missed.open'
            when status = 'warn' then 'baseline_missed.pending'
            when status = 'pass' then case when month_kb_installed_at is null and month_kb_installed_by_build then 'baseline_missed.installed_build'
                when month_kb_installed_at is null then 'baseline_missed.installed_hotpatch' else 'baseline_missed.installed' end
            when assessment_is_stale and assessed_at is null then 'stale.baseline_none'
            when assessment_is_stale then 'stale.baseline_old'
            when month_kb is null then 'baseline_missed.no_evidence'
            else 'baseline_missed.no_data'
        end as reason_key,
        case
            when status in ('fail', 'warn') and closed_at is not null then null
            when status = 'fail' and current_baseline_month > month then 'baseline_missed.fix.current'
            when status = 'fail' then 'baseline_missed.fix.install'
            when status = 'warn' then 'baseline_missed.fix.reboot'
            when status = 'unknown' then 'stale.fix.baseline'
        end as remediation_key,
        {
            'machine': machine_name, 'month': month, 'grace_end': cast(grace_end as varchar),
            'kb': case when month_kb is null then audit.missed_hotpatches_fragment('frag.baseline_kb_note', {'kb_id': kb_label, 'note': calendar_note}::map(varchar, varchar))
                       else kb_label end,
            'kb.key': case when month_kb is null then 'frag.baseline_kb_note' end,
            'kb_id': kb_label, 'note': calendar_note,
            'kb_note': case when month_kb is null then audit.missed_hotpatches_fragment('frag.note', {'note': calendar_note}::map(varchar, varchar)) end,
            'kb_note.key': case when month_kb is null then 'frag.note' end,
            'why': case when month_kb_available then audit.missed_hotpatches_fragment('frag.why_available', map())
                        when month_kb_failed then audit.missed_hotpatches_fragment('frag.why_failed', map()) end,
            'why.key': case when month_kb_available then 'frag.why_available' when month_kb_failed then 'frag.why_failed' end,
            'lost': coalesce(months_lost, 'none yet'),
            'days': cast(case when status in ('fail', 'warn') and closed_at is not null then exposure_days else days_past_grace end as varchar),
            'date': case when status in ('fail', 'warn') and closed_at is not null then cast(cast(closed_at as date) as varchar)
                         when status = 'pass' then cast(cast(hotpatch_proved_at as date) as varchar)
                         else cast(assessed_at as varchar) end,
            'closed_by': coalesce(closed_by, audit.missed_hotpatches_fragment('frag.month_update', {'update_month': closed_month}::map(varchar, varchar))),
            'closed_by.key': case when closed_by is null and closed_month is not null then 'frag.month_update' end,
            'update_month': closed_month, 'closed_month': closed_month,
            'run': month_kb_build_run_id, 'proof': coalesce(hotpatch_proved_by, 'a hotpatch'),
            'current_kb': coalesce(current_baseline_kb, 'the cumulative update'), 'current_month': current_baseline_month
        }::map(varchar, varchar) as params,
        case when status in ('fail', 'warn') and closed_at is not null then 'superseded' end as closed_reason,
        case when status in ('fail', 'warn') then closed_by end as closed_by,
        case when status in ('fail', 'warn') then closed_at end as closed_at,
        exposure_days,
        to_json({'run_id': run_id, 'month_kb': kb_label, 'matched_by': month_kb_matched_by, 'grace_end': grace_end, 'installed_at': month_kb_installed_at,
            'installed_by_build': month_kb_installed_by_build, 'build_run_id': month_kb_build_run_id, 'install_failed': month_kb_failed,
            'available_in_assessment': month_kb_available, 'reboot_pending': month_kb_reboot_pending, 'assessed_at': assessed_at,
            'proved_by_hotpatch': hotpatch_proved_by, 'unchanged_build': unchanged_build, 'months_lost': months_lost,
            'calendar': calendar_note, 'closed_by': closed_by, 'closed_month': closed_month, 'closed_at': closed_at,
            'exposure_days': exposure_days, 'current_baseline': current_baseline_kb, 'current_baseline_month': current_baseline_month}) as evidence
    from (
        select *,
            case when status in ('fail', 'warn') and closed_at is not null then greatest(date_diff('day', grace_end, cast(closed_at as date)), 0)
                 when status in ('fail', 'warn') then greatest(days_past_grace, 0) end as exposure_days
        from (
        select b.*, c.closed_at, c.closed_by, c.closed_month, tc.current_baseline_month, tc.current_baseline_kb,
            case
                when b.is_installed and b.month_kb_reboot_pending then 'warn'
                when b.is_installed and not b.assessment_is_stale then 'pass'
                when b.month_kb_available and not b.assessment_is_stale then 'fail'
                when b.month_kb_failed and not b.assessment_is_stale then 'fail'
                -- with the KB in the calendar, installation history covering the month is evidence;
                -- without it, absence of a title match is not
                when b.month_kb is not null and not b.assessment_is_stale and b.history_covers then 'fail'
                else 'unknown'
            end as status
        from baselines b
        left join closure c on c.run_id = b.run_id and c.machine_id = b.machine_id and c.month = b.month and c.is_baseline
        left join track_current tc on tc.run_id = b.run_id and tc.track = b.track
        )
    )
),
earlier_enabled as (
    -- enrollment lost: Enabled in an earlier run of the same scope, not now
    select t.run_id, m.machine_id, arg_max(t.evidence_run_id, t.evidence_as_of) as enabled_run_id,
        max(t.evidence_as_of) as enabled_as_of
    from core.run_evidence t
    join core.machines m on m.run_id = t.evidence_run_id and m.hotpatch_status = 'Enabled'
    where t.evidence_run_id <> t.run_id
    group by t.run_id, m.machine_id
),
first_lost as (
    -- the first run after the last Enabled one that saw the machine not Enabled (the run itself, at the latest)
    select e.run_id, e.machine_id, arg_min(t.evidence_run_id, t.evidence_as_of) as lost_run_id,
        min(t.evidence_as_of) as lost_as_of
    from earlier_enabled e
    join core.run_evidence t on t.run_id = e.run_id and t.evidence_as_of > e.enabled_as_of
    join core.machines m on m.run_id = t.evidence_run_id and m.machine_id = e.machine_id and m.hotpatch_status <> 'Enabled'
    group by e.run_id, e.machine_id
),
enrollment_lost_findings as (
    select
        'enrollment_lost' as code,
        m.run_id, m.machine_id, m.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner, m.track,
        null::varchar as month,
        'fail' as status,
        'open' as state,
        'high' as severity,
        case when m.hotpatch_error_code is null or m.hotpatch_error_message is null then 'enrollment_lost' else 'enrollment_lost.error' end as reason_key,
        case when m.machine_kind = 'arc' then 'enrollment_lost.fix.arc' else 'enrollment_lost.fix.azure' end as remediation_key,
        {
            'machine': m.machine_name, 'run': e.enabled_run_id, 'date': cast(e.enabled_as_of as varchar), 'status': m.hotpatch_status,
            'error': m.hotpatch_error_code || ': ' || m.hotpatch_error_message,
            'lost_run': coalesce(l.lost_run_id, m.run_id), 'lost_date': cast(coalesce(l.lost_as_of, rs.as_of) as varchar)
        }::map(varchar, varchar) as params,
        to_json({'run_id': m.run_id, 'enabled_run_id': e.enabled_run_id, 'enabled_as_of': e.enabled_as_of,
            'lost_run_id': coalesce(l.lost_run_id, m.run_id), 'lost_as_of': coalesce(l.lost_as_of, rs.as_of),
            'hotpatch_status': m.hotpatch_status, 'licence_status': m.hotpatch_licence_status,
            'enablement_status': m.hotpatch_enablement_status}) as evidence
    from machines m
    join earlier_enabled e on e.run_id = m.run_id and e.machine_id = m.machine_id
    join core.run_settings rs on rs.run_id = m.run_id
    left join first_lost l on l.run_id = m.run_id and l.machine_id = m.machine_id
    where m.hotpatch_status <> 'Enabled'
),
all_rows as (
    -- audit.in_part: every part, unless the audit stage stores one part at a time (see the macro)
    select * from missed_findings where audit.in_part('months')
    union all by name select * from off_track_findings where audit.in_part('off_track')
    union all by name select * from baseline_findings where audit.in_part('baselines')
    union all by name select * from enrollment_lost_findings where audit.in_part('enrollment')
)
select
    md5('missed_hotpatches|' || code || '|' || machine_id || '|' || coalesce(month, '')) as finding_id,
    run_id,
    'missed_hotpatches' as audit,
    code, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month,
    status, severity,
    audit.missed_hotpatches_message(reason_key, params) as reason,
    audit.missed_hotpatches_message(remediation_key, params) as remediation,
    reason_key, remediation_key, params,
    evidence,
    state, closed_reason, closed_by, closed_at, exposure_days
from all_rows;
comment on view audit.missed_hotpatches is 'Audit 2 findings for machines Enabled at the start of each month: missed (fail after grace, warn when installed late, pass in time or within grace), off_track (one finding on the month a non-hotpatch cumulative update was installed, with the months lost and the calendar event that explains it), baseline_missed, enrollment_lost (Enabled in an earlier run, not now) and stale (no fresh assessment: the month is not judged).';
