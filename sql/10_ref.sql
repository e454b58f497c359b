-- Reference data: the hotpatch release calendar (loaded from data/release_calendar.csv by
-- hotpatch_audit.analyze, replaced on every apply), the hotpatch-capable Azure images, and the
-- month grid every audit judges against. Idempotent: tables are created if missing; ref tables hold
-- only project data, never ledger data.

create table if not exists ref.calendar (
    track        varchar not null,
    month        varchar not null,
    kind         varchar not null,
    kb           varchar,
    os_build     varchar,
    release_date date,
    applies_to   varchar,
    effect       varchar,
    months_lost  varchar,
    cause        varchar,
    source       varchar,
    source_url   varchar,
    verified     boolean not null,
    notes        varchar
);
comment on table ref.calendar is 'The hotpatch release calendar (data/release_calendar.csv): one row per (track, month) release (baseline, hotpatch, unplanned_baseline) and per event (oob_lcu, oob_hotpatch, licence_expiry), with KB, OS build, release date, who it applies to (all, arc, azure), its effect on the hotpatch track, months lost, the cause text findings quote, source and whether it was verified against Microsoft release notes.';

create table if not exists ref.hotpatch_images (
    publisher varchar not null,
    offer     varchar not null,
    sku       varchar not null,
    track     varchar not null
);
comment on table ref.hotpatch_images is 'Azure Marketplace images that support hotpatch (azure-data-contract.md 1.3), with the track they belong to. A VM on any other image (custom, gallery, other SKU) is Not Available for hotpatch.';

delete from ref.hotpatch_images;
insert into ref.hotpatch_images values
    ('microsoftwindowsserver', 'windowsserver', '2022-datacenter-azure-edition-core', 'ws2022-azure-edition'),
    ('microsoftwindowsserver', 'windowsserver', '2022-datacenter-azure-edition-core-smalldisk', 'ws2022-azure-edition'),
    ('microsoftwindowsserver', 'windowsserver', '2022-datacenter-azure-edition-hotpatch', 'ws2022-azure-edition'),
    ('microsoftwindowsserver', 'windowsserver', '2022-datacenter-azure-edition-hotpatch-smalldisk', 'ws2022-azure-edition'),
    ('microsoftwindowsserver', 'windowsserver', '2025-datacenter-azure-edition', 'ws2025'),
    ('microsoftwindowsserver', 'windowsserver', '2025-datacenter-azure-edition-core', 'ws2025'),
    ('microsoftwindowsserver', 'windowsserver', '2025-datacenter-azure-edition-core-smalldisk', 'ws2025'),
    ('microsoftwindowsserver', 'windowsserver', '2025-datacenter-azure-edition-smalldisk', 'ws2025'),
    ('microsoftwindowsserver', 'microsoftserveroperatingsystems-previews', 'windows-server-2025-azure-edition-hotpatch', 'ws2025');

create or replace view ref.calendar_months as
with
calendar as (
    select * from ref.calendar where kind in ('baseline', 'hotpatch', 'unplanned_baseline')
),
tracks as (
    select unnest(['ws2025', 'ws2022-azure-edition']) as track
),
months as (
    select cast(m as date) as month_start from range(date '2024-01-01', date '2028-01-01', interval 1 month) t(m)
),
grid as (
    select t.track, strftime(m.month_start, '%Y-%m') as month, m.month_start,
        -- second Tuesday: first Tuesday is day 1 + ((2 - isodow + 7) % 7), plus 7
        cast(m.month_start + to_days(cast((9 - isodow(m.month_start)) % 7 + 7 as integer)) as date) as second_tuesday
    from tracks t cross join months m
)
select
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
left join calendar c on c.track = g.track and c.month = g.month;
comment on view ref.calendar_months is 'Every (track, month) from 2024-01 to 2027-12 with its kind: the calendar row when there is one (rule_only false), else the default rule (Jan/Apr/Jul/Oct baseline, other months hotpatch; rule_only true, "calendar rule, not verified"). release_date falls back to the second Tuesday.';

create or replace view ref.calendar_baselines as
select
    c.track,
    c.month,
    max(case when b.month <= c.month then b.month end) as baseline_month,
    min(case when b.month > c.month then b.month end) as next_baseline_month
from ref.calendar_months as c
join ref.calendar_months as b on b.track = c.track and b.kind in ('baseline', 'unplanned_baseline')
group by c.track, c.month;
comment on view ref.calendar_baselines is 'Per track and month: the baseline (planned or unplanned) the month builds on and the next one; a machine must be on baseline_month to receive the month''s hotpatch, and an off-track machine returns at next_baseline_month.';
