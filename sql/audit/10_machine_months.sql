create or replace view audit.machine_months as
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
    select run_id, machine_id, kb, track_role from core.available_patches
),
licence_event as (
    select cause, split_part(months_lost, '..', 1) as first_month, split_part(months_lost, '..', 2) as last_month
    from ref.calendar where kind = 'licence_expiry' and applies_to = 'arc' and track = 'ws2025'
),
grid as (
    -- every machine-month of the period (machines without a track use the ws2025 grid: not_applicable)
    select
        m.run_id, m.machine_id, m.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner,
        m.track, m.hotpatch_status, m.build_number, m.build_ubr,
        rm.month, rm.kind, rm.kb as month_kb, rm.build_number as month_build_number, rm.build_ubr as month_build_ubr,
        rm.release_date, rm.grace_end, rm.is_due, rm.days_past_grace, rm.rule_only, rm.verified,
        rm.baseline_month, rm.next_baseline_month, rm.status_run_id, rm.status_from_later_run
    from machines m
    join run_months rm on rm.run_id = m.run_id and rm.track = coalesce(m.track, 'ws2025')
),
month_runs as (
    select run_id, machine_id, month,
        count(*) as installation_runs,
        count(*) filter (where is_reboot) as reboot_count,
        list(distinct reboot_status) as reboot_statuses,
        list(distinct source_run_id) as source_runs
    from installations
    group by run_id, machine_id, month
),
month_patches as (
    select run_id, machine_id, month,
        bool_or(is_installed and is_quality) as installed_quality,
        bool_or(is_installed and (is_security or track_role in ('hotpatch', 'oob_hotpatch')) and not is_dotnet) as installed_security,
        bool_or(is_installed and track_role in ('baseline', 'unplanned_baseline', 'oob_lcu', 'other_lcu')) as installed_lcu,
        string_agg(distinct kb, ', ' order by kb) filter (
            where is_installed and is_quality and is_reboot and track_role not in ('hotpatch', 'oob_hotpatch')) as cause_kbs,
        string_agg(distinct kb, ', ' order by kb) filter (where is_installed and is_quality) as installed_kbs
    from patches
    group by run_id, machine_id, month
),
kb_installs as (
    select run_id, machine_id, kb,
        min(start_time) as first_installed_at,
        bool_or(reboot_status = 'Required') and not bool_or(reboot_status in ('Completed', 'NotNeeded')) as reboot_pending
    from patches
    where is_installed and kb is not null
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
off_track_candidates as (
    -- a cumulative update other than the baseline or hotpatch: an out-of-band LCU in any month,
    -- or a standard LCU in a hotpatch month
    select p.run_id, p.machine_id, p.month, p.kb, p.start_time, p.calendar_cause, p.track_role,
        g.next_baseline_month, g.status_run_id, g.machine_kind, g.track
    from patches p
    join grid g on g.run_id = p.run_id and g.machine_id = p.machine_id and g.month = p.month
    where p.is_installed and g.track is not null
        and (p.track_role = 'oob_lcu' or (p.track_role = 'other_lcu' and g.kind = 'hotpatch'))
),
off_track_events as (
    select c.run_id, c.machine_id, c.next_baseline_month,
        min(c.month) as event_month,
        string_agg(distinct c.kb, ', ' order by c.kb) as event_kbs,
        coalesce(max(c.calendar_cause),
            max(case when c.machine_kind = 'arc' and c.month between l.first_month and l.last_month then l.cause end)) as event_cause,
        arg_min(c.status_run_id, c.month) as status_run_id
    from off_track_candidates c
    left join licence_event l on c.track = 'ws2025'
    group by c.run_id, c.machine_id, c.next_baseline_month
),
enrolled_events as (
    select e.*, sh.hotpatch_status as status_at_event
    from off_track_events e
    join status_history sh on sh.run_id = e.status_run_id and sh.machine_id = e.machine_id
    where sh.hotpatch_status = 'Enabled'
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
        ki.first_installed_at as month_kb_installed_at,
        coalesce(ki.reboot_pending, false) as month_kb_reboot_pending,
        g.machine_kind = 'arc' and g.build_number = g.month_build_number and g.build_ubr >= g.month_build_ubr as month_kb_installed_by_build,
        ka.kb is not null as month_kb_available,
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
    left join lcu_offered lo on lo.run_id = g.run_id and lo.machine_id = g.machine_id
    left join assessments a on a.run_id = g.run_id and a.machine_id = g.machine_id
    left join enrolled_events e
        on e.run_id = g.run_id and e.machine_id = g.machine_id
        and g.month >= e.event_month and (e.next_baseline_month is null or g.month < e.next_baseline_month)
),
outcomes as (
    select
        j.*,
        case
            when j.track is null then 'not_applicable'
            when j.installation_runs = 0 and j.month_kb_available and not j.assessment_is_stale then 'no_install'
            when j.installation_runs = 0 then 'unknown'
            when j.kind in ('baseline', 'unplanned_baseline') then
                case when j.reboot_count > 0 then 'expected_reboot'
                     when j.installed_lcu then 'expected_reboot'
                     else 'no_install' end
            when j.enrolled_at_start then
                case when j.reboot_count > 0 then 'unexpected_reboot'
                     when j.installed_security or j.month_kb_installed_at is not null then 'avoided'
                     else 'no_install' end
            when j.reboot_count > 0 and (j.installed_lcu or j.installed_security) then 'avoidable_reboot'
            when j.reboot_count > 0 then 'expected_reboot'
            when j.installed_lcu then 'avoidable_reboot'
            else 'no_install'
        end as outcome
    from judged j
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
    json_object(
        'run_id', run_id,
        'status_at_start', status_at_start,
        'status_run_id', status_run_id,
        'status_from_later_run', status_from_later_run,
        'installation_runs', installation_runs,
        'reboot_statuses', reboot_statuses,
        'installed_kbs', installed_kbs,
        'month_kb', month_kb,
        'month_kb_installed_at', month_kb_installed_at,
        'month_kb_available', month_kb_available,
        'assessed_at', assessed_at,
        'off_track_event_month', off_track_event_month,
        'off_track_kbs', off_track_kbs,
        'calendar', case when rule_only then 'calendar rule, not verified' when verified then 'verified' else 'calendar row, not verified' end
    ) as evidence,
    hotpatch_status,
    status_at_start,
    status_run_id,
    status_from_later_run,
    enrolled_at_start,
    month_kb,
    release_date,
    grace_end,
    is_due,
    days_past_grace,
    rule_only,
    verified,
    baseline_month,
    next_baseline_month,
    installation_runs,
    installed_quality,
    installed_security,
    installed_lcu,
    installed_kbs,
    reboot_kbs,
    month_kb_installed_at,
    month_kb_installed_by_build,
    month_kb_reboot_pending,
    month_kb_available,
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
comment on view audit.machine_months is 'Reboot avoidance grain: every Windows machine-month of each run''s period with one outcome (avoided, expected_reboot, unexpected_reboot, avoidable_reboot, no_install, unknown, not_applicable), reboot count, the KBs that caused reboots, and the facts the missed-hotpatch and WSUS audits reuse (status at the start of the month, month KB installed / available, off-track events and months lost).';
