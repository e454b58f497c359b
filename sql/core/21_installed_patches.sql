-- Computed live as core.installed_patches_live; core.installed_patches is the same rows stored per run when the run is audited
-- (hotpatch_audit.analyze.materialize_run, before the audit tables, which read it): the audit and its reports
-- read the rows as judged, and the audit does not compute them again in every view.
create or replace view core.installed_patches_live as
with
installations as (
    select run_id, machine_id, installation_id, month, start_time, reboot_status, is_reboot, source_run_id
    from core.installations
),
machines as (
    select run_id, machine_id, track, machine_kind from core.machines
),
calendar as (
    select run_id, track, kb, month, kind, effect, months_lost, cause, applies_to
    from core.run_calendar
    where kb is not null and kind in ('baseline', 'hotpatch', 'unplanned_baseline', 'oob_lcu', 'oob_hotpatch')
    qualify row_number() over (partition by run_id, track, upper(kb) order by month) = 1
),
patches as (
    select
        i.run_id, i.machine_id, i.installation_id, i.month, i.start_time, i.reboot_status, i.is_reboot,
        p.patch_name,
        'KB' || nullif(regexp_extract(p.kb_id, '([0-9]+)', 1), '') as kb,
        coalesce(try_cast(from_json(p.classifications, '["varchar"]') as varchar[]), []::varchar[]) as classifications,
        p.installation_state,
        p.reboot_behavior,
        lower(p.reboot_required) = 'true' as reboot_required
    from installations i
    join raw.installed_patches p on p.run_id = i.source_run_id and lower(p.installation_id) = i.installation_id
    qualify row_number() over (partition by i.run_id, i.installation_id, lower(p.id) order by p.kb_id) = 1
),
classified as (
    select
        p.*,
        m.track,
        c.month as calendar_month,
        c.kind as calendar_kind,
        c.effect as calendar_effect,
        c.months_lost as calendar_months_lost,
        c.cause as calendar_cause,
        not (len(p.classifications) > 0 and list_bool_and(list_transform(p.classifications, lambda c: lower(c) like 'definition%')))
            and coalesce(p.patch_name not ilike '%security intelligence update%', true) as is_quality,
        list_bool_or(list_transform(p.classifications, lambda c: lower(c) in ('security', 'critical'))) as is_security,
        -- a standard LCU by title: 'Cumulative Update', not .NET and not a hotpatch
        p.patch_name ilike '%cumulative update%' and p.patch_name not ilike '%.net%' and p.patch_name not ilike '%hotpatch%' as is_cumulative_name,
        coalesce(p.patch_name ilike '%hotpatch%', false) as is_hotpatch_title,
        -- the release month a title names ('2026-11 Security Hotpatch for ...'), else the month it was installed
        coalesce(nullif(regexp_extract(p.patch_name, '^\s*(\d{4}-\d{2})\b', 1), ''), p.month) as title_month,
        p.patch_name ilike '%.net%' as is_dotnet
    from patches p
    left join machines m on m.run_id = p.run_id and m.machine_id = p.machine_id
    left join calendar c on c.run_id = p.run_id and c.track = m.track and upper(c.kb) = p.kb
)
select
    run_id,
    machine_id,
    installation_id,
    month,
    start_time,
    kb,
    patch_name,
    classifications,
    installation_state,
    reboot_behavior,
    reboot_required,
    reboot_status,
    is_reboot,
    is_quality,
    coalesce(is_security, false) as is_security,
    is_dotnet,
    is_hotpatch_title,
    is_cumulative_name as is_lcu_title,
    title_month,
    -- needs a reboot by its own metadata or by the run it was installed in
    coalesce(reboot_behavior in ('AlwaysRequiresReboot', 'CanRequestReboot') or reboot_required, false) or is_reboot as needs_reboot,
    case when calendar_kind in ('hotpatch', 'baseline', 'unplanned_baseline') then calendar_month end as hotpatch_month,
    calendar_kind as hotpatch_kind,
    calendar_effect,
    calendar_months_lost,
    calendar_cause,
    -- the patch's role on the hotpatch track: calendar first, then the title
    case
        when calendar_kind is not null then calendar_kind
        when is_cumulative_name and is_quality then 'other_lcu'
        when is_hotpatch_title and is_quality then 'other_hotpatch'
        when is_quality then 'other_quality'
        else 'definition'
    end as track_role,
    installation_state = 'Installed' as is_installed
from classified;
comment on view core.installed_patches_live is 'Computed live (every run): Per run: the per-update rows of every installation run in core.installations, with KB normalised to KB + digits, classifications as a list, is_quality (not Definition-only), and the calendar match by KB and the machine''s track (hotpatch_month, hotpatch_kind, track_role: hotpatch, baseline, unplanned_baseline, oob_lcu, oob_hotpatch, other_lcu, other_hotpatch, other_quality, definition); for KBs the calendar does not list, is_hotpatch_title, is_lcu_title (Cumulative Update, not .NET, not hotpatch), title_month (the YYYY-MM the title names, else the install month) and needs_reboot.';

create table if not exists core.installed_patches as select * from core.installed_patches_live limit 0;
comment on table core.installed_patches is 'Stored per run from core.installed_patches_live when the run is audited. Per run: the per-update rows of every installation run in core.installations, with KB normalised to KB + digits, classifications as a list, is_quality (not Definition-only), and the calendar match by KB and the machine''s track (hotpatch_month, hotpatch_kind, track_role: hotpatch, baseline, unplanned_baseline, oob_lcu, oob_hotpatch, other_lcu, other_hotpatch, other_quality, definition); for KBs the calendar does not list, is_hotpatch_title, is_lcu_title (Cumulative Update, not .NET, not hotpatch), title_month (the YYYY-MM the title names, else the install month) and needs_reboot.';
