-- audit.findings: audit.all_findings materialized per run by hotpatch_audit.analyze.materialize_findings (each audit
-- from its own view through audit.settled_findings: the same rows).
-- finding_id, machine_id, reason and evidence are stored with zstd: text nearly every row has its own (a hash, an
-- ARM id, a sentence naming the machine, a JSON object), where DuckDB's default string compression spends the most
-- CPU for the least gain. At 100,000 machines (1,551,125 findings) the ledger after one run was 312 MB instead of
-- 512 MB and the audit stage 3 to 4 s faster (4 runs each, alternating, on one loaded ledger); scans and lookups of
-- these columns were as fast or faster. machine_id joined them later: writing the findings took 6.06 s instead of
-- 6.48 s (medians of three). zstd needs storage v1.2.0; the ledger is v1.3.0 (duck.STORAGE_VERSION), and DuckDB 1.5
-- reads it. A ledger whose findings table predates this keeps its compression: `create table if not exists` leaves
-- it alone. The other stored tables get the same (analyze.ZSTD_COLUMNS).
create table if not exists audit.findings (
    finding_id      varchar using compression zstd not null,
    run_id          varchar not null,
    audit           varchar not null,
    code            varchar not null,
    machine_id      varchar using compression zstd not null,
    machine_name    varchar,
    machine_kind    varchar,
    subscription_id varchar,
    resource_group  varchar,
    owner           varchar,
    track           varchar,
    month           varchar,
    status          varchar not null check (status in ('fail', 'warn', 'pass', 'unknown', 'waived')),
    severity        varchar not null check (severity in ('critical', 'high', 'medium', 'low', 'info')),
    reason          varchar using compression zstd,
    remediation     varchar,
    evidence        json using compression zstd,
    waiver_id       varchar,
    state           varchar,
    closed_reason   varchar,
    closed_by       varchar,
    closed_at       timestamp,
    exposure_days   integer,
    reason_key      varchar,
    remediation_key varchar,
    params          map(varchar, varchar)
);
-- Ledgers created before waivers (and the findings lifecycle) existed gain the columns.
alter table audit.findings add column if not exists waiver_id varchar;
alter table audit.findings add column if not exists state varchar;
alter table audit.findings add column if not exists closed_reason varchar;
alter table audit.findings add column if not exists closed_by varchar;
alter table audit.findings add column if not exists closed_at timestamp;
alter table audit.findings add column if not exists exposure_days integer;
alter table audit.findings add column if not exists reason_key varchar;
alter table audit.findings add column if not exists remediation_key varchar;
alter table audit.findings add column if not exists params map(varchar, varchar);
comment on table audit.findings is 'Findings of every audit, materialized per run from audit.all_findings (delete + insert for the run, audit by audit through audit.settled_findings). finding_id = md5(audit|code|machine_id|month) is stable across runs, so diffs between runs are a join. waiver_id: the waiver that waived the finding (status waived), or the expired waiver a waiver_expired finding reports. state: open (present at the as-of time and fixable: the owner''s list), closed (non-compliant in its month, since resolved: closed_reason superseded by a later cumulative update, installed_late, or returned to the track by the next baseline; closed_by the KB, closed_at when), past (a past month''s reboot-avoidance outcome: a fact of the period), opportunity (avoidable_reboot), compliant (pass), not_judged (unknown data); exposure_days: days from the grace end (or the off-track event) to closed_at, or to the as-of time while open. Findings of runs audited before the lifecycle existed have state null. reason_key and remediation_key: the message templates (ref.messages, from sql/audit/*.toml) the reason and remediation were rendered from, with params the named values they quote (a param p whose value is itself a message names its key in p.key); reason and remediation hold the English text, rendered once by audit.message(key, params). Null keys on findings judged before messages had keys.';
