-- Computed live as audit.machine_months_live; audit.machine_months is the same rows materialized per run
-- (hotpatch_audit.analyze.materialize_run), so audits and reports read them once.
create or replace view audit.machine_months_live as
with
machines as (
    select * from core.machines where os_family = 'windows'
),
run_months as (
    select * from core.run_months
),
status_history as (
    select run_id, machine_id, hotpatch_status from core.machines
),
installations as (
    select * from core.installations
),
patches as (
    select * from core.installed_patches
),
assessments as (
    select run_id, machine_id, assessed_at, is_stale from core.assessments
),
available as (
    select run_id, machine_id, kb, track_role, hotpatch_kind, is_hotpatch_title, is_lcu_title, is_security, title_month from core.available_patches
),
build_history as (
    -- Arc osVersion 10.0.<build>.<ubr> in every run (read from raw: cheaper than core.machines for all runs)
    select run_id, lower(id) as machine_id,
        try_cast(split_part(os_version, '.', 3) as integer) as build_number,
        try_cast(nullif(split_part(os_version, '.', 4), '') as integer) as build_ubr
    from raw.arc_machines
),
grid as (
    -- every machine-month of the period (machines without a track use the ws2025 grid: not_applicable)
    select
        m.run_id, m.machine_id, m.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner,
        m.track, m.hotpatch_status, m.build_number, m.build_ubr,
        rm.month, rm.kind, rm.kb as month_kb, rm.build_number as month_build_number, rm.build_ubr as month_build_ubr,
        rm.release_date, rm.grace_end, rm.is_due, rm.days_past_grace, rm.rule_only, rm.verified,
        rm.baseline_month, rm.next_baseline_month, rm.status_run_id, rm.status_from_later_run,
        rm.installations_cover_month,
        nb.release_date as next_baseline_release_date, nb.build_number as next_baseline_build_number, nb.build_ubr as next_baseline_build_ubr
    from machines m
    join run_months rm on rm.run_id = m.run_id and rm.track = coalesce(m.track, 'ws2025')
    left join core.run_calendar_months nb on nb.run_id = rm.run_id and nb.track = rm.track and nb.month = rm.next_baseline_month
),
slots as (
    -- the machine-month keys and release facts the Arc build joins below need: narrow, so the wide grid is read
    -- once (by judged) and streams instead of being held in memory for every join that reads it. The title and
    -- off-track joins read machines and run_months directly instead: DuckDB holds a CTE that several joins read
    -- in memory whole (a `not materialized` hint does not survive storage, see duck.STORAGE_VERSION), and at
    -- 100,000 machines slots is 1,123,644 rows, spilled at the 1 GB limit. Read by two joins instead of five,
    -- machine_months was stored in 3.6 s instead of 4.8 s (medians of three).
    select
        m.run_id, m.machine_id, m.machine_kind, m.track,
        rm.month, rm.kind, rm.kb as month_kb, rm.build_number as month_build_number, rm.build_ubr as month_build_ubr,
        rm.release_date, rm.grace_end, rm.next_baseline_month,
        nb.release_date as next_baseline_release_date, nb.build_ubr as next_baseline_build_ubr
    from machines m
    join run_months rm on rm.run_id = m.run_id and rm.track = coalesce(m.track, 'ws2025')
    left join core.run_calendar_months nb on nb.run_id = rm.run_id and nb.track = rm.track and nb.month = rm.next_baseline_month
),
month_runs as (
    select run_id, machine_id, month,
        count(*) as installation_runs,
        count(*) filter (where is_reboot) as reboot_count,
        list_sort(list(distinct reboot_status)) as reboot_statuses,  -- sorted: the same list in every run
        list_sort(list(distinct source_run_id)) as source_runs
    from installations
    group by run_id, machine_id, month
),
month_patches as (
    select run_id, machine_id, month,
        bool_or(is_installed and is_quality) as installed_quality,
        bool_or(is_installed and (is_security or track_role in ('hotpatch', 'oob_hotpatch')) and not is_dotnet) as installed_security,
        bool_or(is_installed and track_role in ('baseline', 'unplanned_baseline', 'oob_lcu', 'other_lcu')) as installed_lcu,
        string_agg(distinct kb, ', ' order by kb) filter (
            where is_installed and is_quality and is_reboot and track_role not in ('hotpatch', 'oob_hotpatch', 'other_hotpatch')) as cause_kbs,
        string_agg(distinct kb, ', ' order by kb) filter (where is_installed and is_quality) as installed_kbs
    from patches
    group by run_id, machine_id, month
),
kb_installs as (
    -- per KB: first install, reboot still pending, or an installation that failed and never succeeded
    select run_id, machine_id, kb,
        bool_or(installation_state = 'Failed') and not bool_or(is_installed) as failed,
        min(start_time) filter (where is_installed) as first_installed_at,
        bool_or(is_installed and reboot_status = 'Required') and not bool_or(is_installed and reboot_status in ('Completed', 'NotNeeded')) as reboot_pending
    from patches
    where kb is not null
    group by run_id, machine_id, kb
),
kb_available as (
    select distinct run_id, machine_id, kb from available where kb is not null
),
lcu_offered as (
    select run_id, machine_id, true as lcu_offered
    from available where track_role in ('other_lcu', 'oob_lcu')
    group by run_id, machine_id
),
title_installs as (
    -- months the calendar lists without a KB: the month's release recognised by title and behaviour.
    -- hotpatch: a security update titled 'hotpatch' that needs no reboot; baseline: a 'Cumulative
    -- Update' (not .NET, not a hotpatch) installed with a reboot. Month: the YYYY-MM the title names,
    -- else the install month.
    select p.run_id, p.machine_id, p.title_month as month, g.kind,
        min(p.start_time) filter (where p.is_installed) as installed_at,
        arg_min(p.kb, p.start_time) filter (where p.is_installed) as kb,
        bool_or(p.is_installed and p.reboot_status = 'Required')
            and not bool_or(p.is_installed and p.reboot_status in ('Completed', 'NotNeeded')) as reboot_pending,
        bool_or(p.installation_state = 'Failed') and not bool_or(p.is_installed) as failed,
        arg_min(p.kb, p.start_time) filter (where p.installation_state = 'Failed') as failed_kb
    from patches p
    join machines m on m.run_id = p.run_id and m.machine_id = p.machine_id
    join run_months g on g.run_id = m.run_id and g.track = m.track and g.month = p.title_month
    where g.kb is null and p.hotpatch_kind is null and p.is_quality and not p.is_dotnet
        and case when g.kind = 'hotpatch' then p.is_hotpatch_title and p.is_security and coalesce(p.reboot_behavior = 'NeverReboots', not p.needs_reboot)
                 else p.is_lcu_title and (p.needs_reboot or not p.is_installed) end
    group by all
),
title_available as (
    select distinct a.run_id, a.machine_id, a.title_month as month, a.kb
    from available a
    join machines m on m.run_id = a.run_id and m.machine_id = a.machine_id
    join run_months g on g.run_id = m.run_id and g.track = m.track and g.month = a.title_month
    where g.kb is null and a.hotpatch_kind is null
        and case when g.kind = 'hotpatch' then a.is_hotpatch_title and coalesce(a.is_security, false)
                 else a.is_lcu_title end
),

build_proof as (
    -- Arc osVersion in the history of runs: the first run (after release, before the next baseline)
    -- whose build is the month's build or a later one of the same quarter, each compared only with a
    -- calendar row of a release kind (hotpatch builds are numbered below the same month's standard
    -- LCU: a build the calendar does not list as a hotpatch or baseline proves nothing). Today's build
    -- says nothing about when a past month's hotpatch was installed.
    select g.run_id, g.machine_id, g.month, min(o.evidence_as_of) as build_seen_at,
        arg_min(o.evidence_run_id, o.evidence_as_of) as build_run_id
    from slots g
    join core.run_evidence o on o.run_id = g.run_id and o.evidence_as_of >= g.release_date
        and (g.next_baseline_release_date is null or o.evidence_as_of < g.next_baseline_release_date)
    join build_history b on b.run_id = o.evidence_run_id and b.machine_id = g.machine_id
    join core.run_calendar_months k on k.run_id = g.run_id and k.track = g.track
        and k.build_number = b.build_number and k.build_ubr = b.build_ubr
        and k.month >= g.month and (g.next_baseline_month is null or k.month < g.next_baseline_month)
    where g.machine_kind = 'arc' and g.month_build_number is not null
        and b.build_number = g.month_build_number and b.build_ubr >= g.month_build_ubr
        and (g.next_baseline_build_ubr is null or b.build_ubr < g.next_baseline_build_ubr)
    group by g.run_id, g.machine_id, g.month
),
build_unchanged as (
    -- positive evidence of no install: the same Arc build in a run before the month's release and in a
    -- run after its grace end
    select g.run_id, g.machine_id, g.month, any_value(b1.build_number || '.' || b1.build_ubr) as unchanged_build
    from slots g
    join core.run_evidence o1 on o1.run_id = g.run_id and o1.evidence_as_of < g.release_date
    join build_history b1 on b1.run_id = o1.evidence_run_id and b1.machine_id = g.machine_id
    join core.run_evidence o2 on o2.run_id = g.run_id and o2.evidence_as_of > g.grace_end + interval 1 day
        and (g.next_baseline_release_date is null or o2.evidence_as_of < g.next_baseline_release_date)
    join build_history b2 on b2.run_id = o2.evidence_run_id and b2.machine_id = g.machine_id
    where g.machine_kind = 'arc' and b1.build_ubr is not null
        and b2.build_number = b1.build_number and b2.build_ubr = b1.build_ubr
    group by g.run_id, g.machine_id, g.month
),
enrolled_events as (
    select * from audit.off_track_events where enrolled_at_event
),
event_months as (
    -- each machine-month an off-track event covers (from the event month to the next baseline), joined on
    -- equal keys below: a range join against the whole grid would hold the grid in memory
    select e.run_id, e.machine_id, g.month, e.event_month, e.event_kbs, e.event_cause, e.next_baseline_month
    from enrolled_events e
    join run_months g on g.run_id = e.run_id and g.track = e.track
        and g.month >= e.event_month and (e.next_baseline_month is null or g.month < e.next_baseline_month)
),
judged as (
    select
        g.*,
        sh.hotpatch_status as status_at_start,
        coalesce(sh.hotpatch_status = 'Enabled', false) as enrolled_at_start,
        coalesce(mr.installation_runs, 0) as installation_runs,
        coalesce(mr.reboot_count, 0) as reboot_count,
        mr.reboot_statuses,
        coalesce(mp.installed_quality, false) as installed_quality,
        coalesce(mp.installed_security, false) as installed_security,
        coalesce(mp.installed_lcu, false) as installed_lcu,
        mp.cause_kbs as reboot_kbs,
        mp.installed_kbs,
        coalesce(ki.first_installed_at, ti.installed_at) as month_kb_installed_at,
        case when ki.first_installed_at is not null then 'kb' when ti.installed_at is not null then 'title' end as month_kb_matched_by,
        coalesce(g.month_kb, ti.kb, ti.failed_kb, ta.kb) as effective_kb,
        coalesce(ki.reboot_pending, ti.reboot_pending, false) as month_kb_reboot_pending,
        bp.build_seen_at is not null as month_kb_installed_by_build,
        bp.build_seen_at as month_kb_build_seen_at,
        bp.build_run_id as month_kb_build_run_id,
        coalesce(ki.failed, ti.failed, false) as month_kb_failed,
        bu.unchanged_build,
        ka.kb is not null or ta.kb is not null as month_kb_available,
        ta.kb is not null as month_kb_available_by_title,
        coalesce(lo.lcu_offered, false) as lcu_offered,
        a.assessed_at,
        coalesce(a.is_stale, true) as assessment_is_stale,
        e.event_month as off_track_event_month,
        e.event_kbs as off_track_kbs,
        e.event_cause as off_track_cause,
        e.next_baseline_month as off_track_until,
        e.event_month = g.month as is_off_track_event,
        e.event_month is not null and g.kind = 'hotpatch' as is_off_track
    from grid g
    left join status_history sh on sh.run_id = g.status_run_id and sh.machine_id = g.machine_id
    left join month_runs mr on mr.run_id = g.run_id and mr.machine_id = g.machine_id and mr.month = g.month
    left join month_patches mp on mp.run_id = g.run_id and mp.machine_id = g.machine_id and mp.month = g.month
    left join kb_installs ki on ki.run_id = g.run_id and ki.machine_id = g.machine_id and ki.kb = g.month_kb
    left join kb_available ka on ka.run_id = g.run_id and ka.machine_id = g.machine_id and ka.kb = g.month_kb
    left join title_installs ti on ti.run_id = g.run_id and ti.machine_id = g.machine_id and ti.month = g.month
    left join (select run_id, machine_id, month, min(kb) as kb from title_available group by all) ta
        on ta.run_id = g.run_id and ta.machine_id = g.machine_id and ta.month = g.month
    left join build_proof bp on bp.run_id = g.run_id and bp.machine_id = g.machine_id and bp.month = g.month
    left join build_unchanged bu on bu.run_id = g.run_id and bu.machine_id = g.machine_id and bu.month = g.month
    left join lcu_offered lo on lo.run_id = g.run_id and lo.machine_id = g.machine_id
    left join assessments a on a.run_id = g.run_id and a.machine_id = g.machine_id
    left join event_months e on e.run_id = g.run_id and e.machine_id = g.machine_id and e.month = g.month
),
proved as (
    -- "nothing installed" needs proof: installation data for the whole month (a month only partly collected
    -- may hold its install in the part no run kept), the month's update still offered by a fresh assessment,
    -- or the same Arc build before the release and after the grace end
    select *,
        installations_cover_month or (month_kb_available and not assessment_is_stale)
            or (unchanged_build is not null and month_kb_installed_at is null) as no_install_proved
    from judged
),
outcomes as (
    select
        j.*,
        case
            when j.track is null then 'not_applicable'
            when j.installation_runs = 0 and j.month_kb_available and not j.assessment_is_stale then 'no_install'
            when j.installation_runs = 0 and j.unchanged_build is not null and j.month_kb_installed_at is null then 'no_install'
            when j.installation_runs = 0 then 'unknown'
            when j.kind in ('baseline', 'unplanned_baseline') then
                case when j.reboot_count > 0 then 'expected_reboot'
                     when j.installed_lcu then 'expected_reboot'
                     when j.no_install_proved then 'no_install'
                     else 'unknown' end
            when j.enrolled_at_start then
                case when j.reboot_count > 0 then 'unexpected_reboot'
                     when j.installed_security or j.month_kb_installed_at is not null then 'avoided'
                     when j.no_install_proved then 'no_install'
                     else 'unknown' end
            when j.reboot_count > 0 and (j.installed_lcu or j.installed_security) then 'avoidable_reboot'
            when j.reboot_count > 0 then 'expected_reboot'
            when j.installed_lcu then 'avoidable_reboot'
            when j.no_install_proved then 'no_install'
            else 'unknown'
        end as outcome,
        case when j.rule_only then 'calendar rule, not verified' when j.month_kb is null then 'calendar row without KB, not verified'
             when j.verified then 'verified' else 'calendar row, not verified' end
            || case when j.month_kb is null and j.month_kb_matched_by = 'title' then '; recognised by title' else '' end as calendar_note
    from proved j
)
select
    run_id, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month, kind,
    outcome,
    reboot_count,
    case
        when outcome = 'unexpected_reboot' and is_off_track then concat_ws('; ', reboot_kbs,
            'off track since ' || off_track_event_month || ' (' || coalesce(off_track_cause, off_track_kbs) || ')')
        when outcome in ('unexpected_reboot', 'avoidable_reboot', 'expected_reboot') then reboot_kbs
    end as cause_kbs,
    calendar_note,
    hotpatch_status,
    status_at_start,
    status_run_id,
    status_from_later_run,
    installations_cover_month,
    enrolled_at_start,
    month_kb,
    effective_kb,
    month_kb_matched_by,
    release_date,
    grace_end,
    is_due,
    days_past_grace,
    rule_only,
    verified,
    baseline_month,
    next_baseline_month,
    installation_runs,
    reboot_statuses,
    installed_quality,
    installed_security,
    installed_lcu,
    installed_kbs,
    reboot_kbs,
    month_kb_installed_at,
    month_kb_installed_by_build,
    month_kb_build_seen_at,
    month_kb_build_run_id,
    month_kb_reboot_pending,
    month_kb_failed,
    unchanged_build,
    month_kb_available,
    month_kb_available_by_title,
    lcu_offered,
    assessed_at,
    assessment_is_stale,
    is_off_track,
    is_off_track_event,
    off_track_event_month,
    off_track_kbs,
    off_track_cause,
    off_track_until
from outcomes;
comment on view audit.machine_months_live is 'Computed live (every run): Reboot avoidance grain: every Windows machine-month of each run''s period with one outcome (avoided, expected_reboot, unexpected_reboot, avoidable_reboot, no_install, unknown, not_applicable), reboot count, the KBs that caused reboots, and the facts the missed-hotpatch and WSUS audits reuse (status at the start of the month, month KB installed / available, off-track events and months lost).';

create table if not exists audit.machine_months as select * from audit.machine_months_live limit 0;
comment on table audit.machine_months is 'Materialized per run from audit.machine_months_live when the run is audited. Reboot avoidance grain: every Windows machine-month of each run''s period with one outcome (avoided, expected_reboot, unexpected_reboot, avoidable_reboot, no_install, unknown, not_applicable), reboot count, the KBs that caused reboots, and the facts the missed-hotpatch and WSUS audits reuse (status at the start of the month, month KB installed / available, off-track events and months lost).';

-- The stored machine-months with the facts each outcome was judged from as one JSON object (the reboot-avoidance
-- findings' evidence and the machine_months export's). Built on read: every fact is a column of the table.
create or replace view audit.machine_months_detail as
select *,
    -- to_json of a struct: the same text as json_object, built in two thirds of the time
    to_json({
        'run_id': run_id,
        'status_at_start': status_at_start,
        'status_run_id': status_run_id,
        'status_from_later_run': status_from_later_run,
        'installation_runs': installation_runs,
        'installations_cover_month': installations_cover_month,
        'reboot_statuses': reboot_statuses,
        'installed_kbs': installed_kbs,
        'month_kb': coalesce(month_kb, effective_kb),
        'matched_by': month_kb_matched_by,
        'month_kb_installed_at': month_kb_installed_at,
        'month_kb_available': month_kb_available,
        'unchanged_build': unchanged_build,
        'assessed_at': assessed_at,
        'off_track_event_month': off_track_event_month,
        'off_track_kbs': off_track_kbs,
        'calendar': calendar_note
    }) as evidence
from audit.machine_months;
comment on view audit.machine_months_detail is 'audit.machine_months (materialized per run) with evidence, the JSON object of the facts each outcome was judged from: read by audit.reboot_avoidance (its findings'' evidence) and the machine_months export.';
