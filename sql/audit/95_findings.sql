-- audit.findings: audit.all_findings materialized per run by hotpatch_audit.analyze.materialize_findings.
create table if not exists audit.findings (
    finding_id      varchar not null,
    run_id          varchar not null,
    audit           varchar not null,
    code            varchar not null,
    machine_id      varchar not null,
    machine_name    varchar,
    machine_kind    varchar,
    subscription_id varchar,
    resource_group  varchar,
    owner           varchar,
    track           varchar,
    month           varchar,
    status          varchar not null check (status in ('fail', 'warn', 'pass', 'unknown', 'waived')),
    severity        varchar not null check (severity in ('critical', 'high', 'medium', 'low', 'info')),
    reason          varchar,
    remediation     varchar,
    evidence        json,
    waiver_id       varchar
);
-- Ledgers created before waivers existed gain the column.
alter table audit.findings add column if not exists waiver_id varchar;
comment on table audit.findings is 'Findings of every audit, materialized per run from audit.all_findings (delete + insert for the run). finding_id = md5(audit|code|machine_id|month) is stable across runs, so diffs between runs are a join. waiver_id: the waiver that waived the finding (status waived), or the expired waiver a waiver_expired finding reports.';
