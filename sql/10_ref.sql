-- Reference data: the hotpatch release calendar (loaded from data/release_calendar.csv by
-- hotpatch_audit.analyze, replaced on every apply) and the hotpatch-capable Azure images. The month
-- grid every audit judges against is per run (sql/core/02_run_calendar.sql: each run keeps the calendar
-- it was judged with). Idempotent: tables are created if missing; ref tables hold
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

-- Each run's copy of the calendar (hotpatch_audit.ledger.register_run): the same columns, plus run_id.
create table if not exists meta.run_calendar as
select cast(null as varchar) as run_id, * from ref.calendar limit 0;
comment on table meta.run_calendar is 'The release calendar rows (ref.calendar: shipped file merged with the local override) as they were when each run was registered, so a run is judged, re-judged and re-rendered with the calendar of its calendar_version, whatever the checkout ships later. Runs registered before this table existed have no rows here and read the current calendar.';

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
