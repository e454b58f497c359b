-- Report view: readiness_funnel
-- Reads: meta.runs, audit.readiness
-- One row per run and readiness gate (1..11, audits.md order): machines reaching, stopped at and
-- passing the gate. first_failing_gate = 12 means every gate passes.
create or replace view report.readiness_funnel as
with gates (gate, label) as (
    values
        (1, 'Eligible OS and edition'),
        (2, 'Build 26100.1742 or later (Arc)'),
        (3, 'Arc agent connected'),
        (4, 'UEFI, Secure Boot, Generation 2'),
        (5, 'VBS enabled'),
        (6, 'VBS running'),
        (7, 'Memory integrity (HVCI) configured'),
        (8, 'VBS verified by guest facts'),
        (9, 'Hotpatch enrollment'),
        (10, 'Update source is Windows Update'),
        (11, 'On the current baseline')
),

readiness as (
    select run_id, first_failing_gate from audit.readiness
    where (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
),

counts as (
    select
        gates.gate,
        readiness.run_id,
        count(*) filter (where readiness.first_failing_gate >= gates.gate) as machines_reaching,
        count(*) filter (where readiness.first_failing_gate = gates.gate) as machines_stopped,
        count(*) filter (where readiness.first_failing_gate > gates.gate) as machines_passing,
        count(*) as machines_total
    from readiness
    cross join gates
    group by gates.gate, readiness.run_id
)

select
    runs.run_id,
    gates.gate,
    gates.label,
    coalesce(counts.machines_reaching, 0) as machines_reaching,
    coalesce(counts.machines_stopped, 0) as machines_stopped,
    coalesce(counts.machines_passing, 0) as machines_passing,
    coalesce(counts.machines_total, 0) as machines_total
from meta.runs as runs
cross join gates
left join counts on counts.run_id = runs.run_id and counts.gate = gates.gate;

comment on view report.readiness_funnel is 'Per run and readiness gate 1..11 (label as in audits.md): machines_reaching the gate (all earlier gates pass), machines_stopped at it (first failing gate), machines_passing it and every earlier gate, and machines_total judged.';
