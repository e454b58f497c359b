-- Report view: readiness_blockers
-- Reads: audit.readiness
-- One row per run and blocker: the reason code of each machine's first failing readiness gate (audit 4's
-- funnel), machines stopped by it, ordered by gate then machines. Machines passing every gate (READY)
-- are not blockers and not listed.
create or replace view report.readiness_blockers as
with readiness as (
    select run_id, first_failing_gate, gate_code from audit.readiness
    where first_failing_gate <= 11
        and (getvariable('report_owner') is null or coalesce(owner, '(no owner tag)') = getvariable('report_owner'))
),

codes as (
    select run_id, first_failing_gate as gate, gate_code, count(*) as machines
    from readiness
    group by all
)

select
    run_id,
    gate,
    gate_code,
    machines,
    cast(sum(machines) over (partition by run_id) as bigint) as machines_blocked,
    row_number() over (partition by run_id order by gate, machines desc, gate_code) as blocker_order
from codes;

comment on view report.readiness_blockers is 'Per run and reason code of the first failing readiness gate (gate 1..11, gate_code e.g. VBS_NOT_RUNNING, NOT_ENROLLED): machines stopped by it, machines_blocked (all machines stopped at some gate) and blocker_order (by gate, then machines). Machines passing every gate are not listed. Follows the report_owner variable.';
