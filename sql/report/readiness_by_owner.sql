-- Report view: readiness_by_owner
-- Reads: audit.readiness, core.machines
-- One row per run and owner tag: machines passing each readiness gate (and all before it), ranked
-- by machines. The owner comes from core.machines.
create or replace view report.readiness_by_owner as
with readiness as (
    select r.run_id, r.machine_id, r.first_failing_gate, coalesce(m.owner, '(no owner tag)') as owner
    from audit.readiness as r
    left join core.machines as m on m.run_id = r.run_id and m.machine_id = r.machine_id
    where (getvariable('report_owner') is null or coalesce(m.owner, '(no owner tag)') = getvariable('report_owner'))
),

owners as (
    select
        run_id,
        owner,
        count(*) as machines,
        count(*) filter (where first_failing_gate > 3) as passing_gate_3,
        count(*) filter (where first_failing_gate > 8) as passing_gate_8,
        count(*) filter (where first_failing_gate between 4 and 8) as vbs_blocked,
        count(*) filter (where first_failing_gate >= 12) as ready
    from readiness
    group by run_id, owner
)

select
    *,
    row_number() over (partition by run_id order by machines desc, owner) as owner_rank,
    count(*) over (partition by run_id) as owners_total
from owners;

comment on view report.readiness_by_owner is 'Per run and owner tag (''(no owner tag)'' when missing): machines judged, passing_gate_3 (OS, build, agent), passing_gate_8 (through the VBS gates), vbs_blocked (stopped at gates 4-8), ready (all gates pass); owner_rank orders owners by machines.';
