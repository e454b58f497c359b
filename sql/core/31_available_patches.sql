create or replace view core.available_patches as
with
machines as (
    select run_id, machine_id, track from core.machines
),
assessments as (
    select run_id, machine_id, assessed_at, is_stale from core.assessments
),
calendar as (
    select run_id, track, kb, month, kind
    from core.run_calendar
    where kb is not null and kind in ('baseline', 'hotpatch', 'unplanned_baseline', 'oob_lcu', 'oob_hotpatch')
    qualify row_number() over (partition by run_id, track, upper(kb) order by month) = 1
),
patches as (
    select
        p.run_id,
        lower(p.machine_id) as machine_id,
        p.patch_name,
        'KB' || nullif(regexp_extract(p.kb_id, '([0-9]+)', 1), '') as kb,
        coalesce(try_cast(from_json(p.classifications, '["varchar"]') as varchar[]), []::varchar[]) as classifications,
        p.reboot_behavior,
        p.msrc_severity,
        try_cast(p.published_date_time as timestamp) as published_at
    from raw.available_patches p
)
select
    p.*,
    m.track,
    c.month as hotpatch_month,
    c.kind as hotpatch_kind,
    case
        when c.kind is not null then c.kind
        when p.patch_name ilike '%cumulative update%' and p.patch_name not ilike '%.net%' and p.patch_name not ilike '%hotpatch%' then 'other_lcu'
        when p.patch_name ilike '%hotpatch%' then 'other_hotpatch'
        else 'other'
    end as track_role,
    coalesce(p.patch_name ilike '%hotpatch%', false) as is_hotpatch_title,
    coalesce(p.patch_name ilike '%cumulative update%' and p.patch_name not ilike '%.net%' and p.patch_name not ilike '%hotpatch%', false) as is_lcu_title,
    list_bool_or(list_transform(p.classifications, lambda c: lower(c) in ('security', 'critical'))) as is_security,
    -- the release month: the YYYY-MM the title names, else the publication month
    coalesce(nullif(regexp_extract(p.patch_name, '^\s*(\d{4}-\d{2})\b', 1), ''), strftime(p.published_at, '%Y-%m')) as title_month,
    a.assessed_at,
    a.is_stale
from patches p
left join machines m on m.run_id = p.run_id and m.machine_id = p.machine_id
left join assessments a on a.run_id = p.run_id and a.machine_id = p.machine_id
left join calendar c on c.run_id = p.run_id and c.track = m.track and upper(c.kb) = p.kb;
comment on view core.available_patches is 'Per run: updates the latest assessment lists as available (missing), KB normalised, matched to the calendar by KB and track, with the assessment time and staleness; for KBs the calendar does not list, is_hotpatch_title, is_lcu_title, is_security and title_month (title YYYY-MM, else publication month).';
