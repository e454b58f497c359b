-- The objects analysts query, cut to the run of record of each scope (main.latest_runs). Each view has exactly
-- the columns of the object it reads, in the same order (sql/columns/latest.toml: the same meanings), so a
-- query moves from `audit.findings where run_id = ...` to `latest_findings` unchanged. With several scopes,
-- join latest_runs using (run_id) for the scope and as-of; a machine in two scopes appears once per scope.

create or replace view main.latest_findings as
select * from audit.findings where run_id in (select run_id from main.latest_runs);
comment on view main.latest_findings is 'audit.findings of the latest run of each scope (main.latest_runs): every finding of every audit, pass included, with its lifecycle (state, closed_by, exposure_days) and waiver.';

create or replace view main.latest_open_actions as
select * from audit.open_actions where run_id in (select run_id from main.latest_runs);
comment on view main.latest_open_actions is 'audit.open_actions of the latest run of each scope (main.latest_runs): open now, the owner''s list, one action per machine and root cause with its months, fix and due_date.';

create or replace view main.latest_period_exceptions as
select * from audit.period_exceptions where run_id in (select run_id from main.latest_runs);
comment on view main.latest_period_exceptions is 'audit.period_exceptions of the latest run of each scope (main.latest_runs): the auditor''s register, every non-compliant machine-month of the period, open or closed, with its exposure.';

create or replace view main.latest_machine_months as
select * from audit.machine_months where run_id in (select run_id from main.latest_runs);
comment on view main.latest_machine_months is 'audit.machine_months of the latest run of each scope (main.latest_runs): every Windows machine-month of the period with its calendar kind, whether it is due, its reboot-avoidance outcome and reboots.';

create or replace view main.latest_hotpatch_rates as
select * from audit.hotpatch_rates where run_id in (select run_id from main.latest_runs);
comment on view main.latest_hotpatch_rates is 'audit.hotpatch_rates of the latest run of each scope (main.latest_runs): per track and hotpatch month, hotpatch efficacy and reboot-free coverage with their counts.';

create or replace view main.latest_readiness as
select * from audit.readiness where run_id in (select run_id from main.latest_runs);
comment on view main.latest_readiness is 'audit.readiness of the latest run of each scope (main.latest_runs): per Windows machine, the first failing readiness gate (1-11; 12 = ready) with its reason, fix and every gate''s code.';

create or replace view main.latest_coverage as
select * from audit.coverage where run_id in (select run_id from main.latest_runs);
comment on view main.latest_coverage is 'audit.coverage of the latest run of each scope (main.latest_runs): one row per Windows machine and data gap (missing or stale assessment, guest facts or installation data, hotpatch status unknown).';

create or replace view main.latest_coverage_exceptions as
select * from report.attest_coverage_exceptions where run_id in (select run_id from main.latest_runs);
comment on view main.latest_coverage_exceptions is 'report.attest_coverage_exceptions of the latest run of each scope (main.latest_runs): one row per Windows machine with a data gap, its gaps and the audits it left unjudged (the attestation''s list, coverage_exceptions.csv).';

create or replace view main.latest_machines as
select * from core.machines where run_id in (select run_id from main.latest_runs);
comment on view main.latest_machines is 'core.machines of the latest run of each scope (main.latest_runs): every Azure VM and Arc server in scope, Linux included, with its track, hotpatch status, owner and facts.';

create or replace view main.latest_waivers as
select * from report.waivers where run_id in (select run_id from main.latest_runs);
comment on view main.latest_waivers is 'report.waivers of the latest run of each scope (main.latest_runs): each waiver the run applied, its state (active or expired), days_left and the findings it waived.';

create or replace view main.latest_finding_changes as
select * from audit.finding_changes_between(null, null) where run_id in (select run_id from main.latest_runs);
comment on view main.latest_finding_changes is 'audit.finding_changes for the latest run of each scope (main.latest_runs) against the previous good monthly run of its scope (previous_run_id): each finding new, fixed, still_open, regressed, unknown or waived. Empty for a scope with one run. Unlike audit.finding_changes, also for a latest run that is on demand.';
