-- Computed live as audit.coverage_live; audit.coverage is the same rows materialized per run
-- (hotpatch_audit.analyze.materialize_run), so audits and reports read them once.
create or replace view audit.coverage_live as
with
machines as (
    select * from core.machines where os_family = 'windows'
),
assessments as (
    select * from core.assessments
),
guest as (
    select * from core.guest_facts
),
installs as (
    select run_id, machine_id, count(*) as installation_runs from core.installations group by run_id, machine_id
),
issues as (
    select m.run_id, m.machine_id, m.machine_name, 'no_assessment' as issue, 'No Update Manager assessment in this run.' as detail
    from machines m left join assessments a using (run_id, machine_id) where a.machine_id is null
    union all
    select m.run_id, m.machine_id, m.machine_name, 'stale_assessment',
        'Latest assessment ' || coalesce(cast(a.assessed_at as varchar), 'without a time') || ' (' || coalesce(a.age_days, -1) || ' days old).'
    from machines m join assessments a using (run_id, machine_id) where a.is_stale
    union all
    select m.run_id, m.machine_id, m.machine_name, 'no_guest_facts', 'No hotpatch-audit-guest report in this run.'
    from machines m left join guest g using (run_id, machine_id) where g.machine_id is null
    union all
    select m.run_id, m.machine_id, m.machine_name, 'stale_guest_facts', 'Guest facts collected ' || coalesce(cast(g.collected_at as varchar), 'at an unknown time') || ' count as missing.'
    from machines m join guest g using (run_id, machine_id) where not g.is_fresh
    union all
    select m.run_id, m.machine_id, m.machine_name, 'no_installation_data', 'No installation run in this or any earlier run of the scope.'
    from machines m left join installs i using (run_id, machine_id) where i.machine_id is null
    union all
    select m.run_id, m.machine_id, m.machine_name, 'hotpatch_status_unknown',
        'Hotpatch status Unknown (licence ' || coalesce(m.hotpatch_licence_status, 'none') || ', OS ' || coalesce(m.hotpatch_enablement_status, 'none') || ').'
    from machines m where m.hotpatch_status = 'Unknown'
)
select run_id, machine_id, machine_name, issue, detail from issues;
comment on view audit.coverage_live is 'Computed live (every run): Data gaps per run and Windows machine: no_assessment, stale_assessment, no_guest_facts, stale_guest_facts, no_installation_data, hotpatch_status_unknown. Such machines are judged unknown, never compliant; the report''s coverage box counts them.';

create table if not exists audit.coverage as select * from audit.coverage_live limit 0;
comment on table audit.coverage is 'Materialized per run from audit.coverage_live when the run is audited. Data gaps per run and Windows machine: no_assessment, stale_assessment, no_guest_facts, stale_guest_facts, no_installation_data, hotpatch_status_unknown. Such machines are judged unknown, never compliant; the report''s coverage box counts them.';
