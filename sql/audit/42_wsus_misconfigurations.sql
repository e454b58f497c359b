create or replace view audit.wsus_misconfigurations as
with
machines as (
    select * from core.machines where os_family = 'windows' and track is not null
),
guest as (
    select * from core.guest_facts where is_fresh
),
machine_months as (
    select * from audit.machine_months where track is not null
),
confirmed as (
    select m.*, g.wu_server, g.use_wu_server, g.quality_updates_source, g.no_wu_internet, g.collected_at, g.report_id,
        case when g.no_wu_internet = 1 then ', DoNotConnectToWindowsUpdateInternetLocations=1' else '' end as no_wu_text
    from machines m
    join guest g using (run_id, machine_id)
    where g.use_wu_server = 1 and g.wu_server is not null and coalesce(g.quality_updates_source, 1) <> 0
),
confirmed_findings as (
    select
        case when hotpatch_status = 'Enabled' or hotpatch_intended then 'wsus_confirmed' else 'wsus_unenrolled' end as code,
        run_id, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
        case when hotpatch_status = 'Enabled' or hotpatch_intended then 'fail' else 'warn' end as status,
        case when not (hotpatch_status = 'Enabled' or hotpatch_intended) then 'low'
             when no_wu_internet = 1 then 'critical' else 'high' end as severity,
        case when hotpatch_status = 'Enabled' or hotpatch_intended then 'wsus_confirmed' else 'wsus_unenrolled' end as reason_key,
        'wsus.fix' as remediation_key,
        {
            'machine': machine_name, 'server': wu_server, 'status': hotpatch_status,
            'policy': case when quality_updates_source is null then audit.wsus_misconfigurations_fragment('wsus.frag.no_policy', {'no_wu': no_wu_text}::map(varchar, varchar))
                    else 'SetPolicyDrivenUpdateSourceForQualityUpdates=' || quality_updates_source || no_wu_text end,
            'policy.key': case when quality_updates_source is null then 'wsus.frag.no_policy' end,
            'no_wu': no_wu_text,
            'also': case when no_wu_internet = 1 then audit.wsus_misconfigurations_fragment('wsus.frag.also_no_wu', map()) else '' end,
            'also.key': case when no_wu_internet = 1 then 'wsus.frag.also_no_wu' end
        }::map(varchar, varchar) as params,
        to_json({'run_id': run_id, 'source': 'guest facts', 'report_id': report_id, 'collected_at': collected_at,
            'UseWUServer': use_wu_server, 'WUServer': wu_server, 'SetPolicyDrivenUpdateSourceForQualityUpdates': quality_updates_source,
            'DoNotConnectToWindowsUpdateInternetLocations': no_wu_internet, 'hotpatch_status': hotpatch_status}) as evidence
    from confirmed
),
offered as (
    -- what the assessments offered, by the month each was assessed in, across the ledger's history of
    -- runs (core.run_evidence: any run whose assessment falls in the month, not only the latest)
    select t.run_id, a.machine_id, strftime(s.assessed_at, '%Y-%m') as month,
        bool_or(a.track_role in ('other_lcu', 'oob_lcu')) as lcu_offered,
        bool_or(a.track_role in ('hotpatch', 'oob_hotpatch', 'other_hotpatch')) as hotpatch_offered
    from core.run_evidence t
    join core.available_patches a on a.run_id = t.evidence_run_id
    join core.assessments s on s.run_id = t.evidence_run_id and s.machine_id = a.machine_id
    where s.assessed_at is not null
    group by all
),
wsus_months as (
    -- a hotpatch month counts when the standard cumulative update was offered or installed and the
    -- month's hotpatch never was (not installed, not offered)
    select mm.*,
        (mm.installed_lcu or coalesce(o.lcu_offered, false))
            and mm.month_kb_installed_at is null and not mm.month_kb_available and not coalesce(o.hotpatch_offered, false) as lcu_not_hotpatch
    from machine_months mm
    left join offered o on o.run_id = mm.run_id and o.machine_id = mm.machine_id and o.month = mm.month
    where mm.kind = 'hotpatch'
),
behaviour as (
    select run_id, machine_id,
        count(*) filter (where lcu_not_hotpatch) as lcu_months,
        count(*) filter (where month_kb_installed_at is not null) as hotpatch_months,
        string_agg(month, ', ' order by month) filter (where lcu_not_hotpatch) as months
    from wsus_months
    group by run_id, machine_id
),
suspected_findings as (
    select
        'wsus_suspected' as code,
        m.run_id, m.machine_id, m.machine_name, m.machine_kind, m.subscription_id, m.resource_group, m.owner, m.track,
        'warn' as status,
        'medium' as severity,
        'wsus_suspected' as reason_key,
        'wsus_suspected.fix' as remediation_key,
        {'machine': m.machine_name, 'count': cast(b.lcu_months as varchar), 'months': b.months}::map(varchar, varchar) as params,
        to_json({'run_id': m.run_id, 'source': 'installation and assessment behaviour', 'months': b.months,
            'hotpatch_months': b.hotpatch_months, 'hotpatch_status': m.hotpatch_status}) as evidence
    from machines m
    join behaviour b using (run_id, machine_id)
    left join guest g using (run_id, machine_id)
    where g.machine_id is null and m.hotpatch_status = 'Enabled' and b.lcu_months >= 2 and b.hotpatch_months = 0
),
all_rows as (
    select * from confirmed_findings
    union all by name
    select * from suspected_findings
)
select
    md5('wsus_misconfigurations|' || code || '|' || machine_id || '|') as finding_id,
    run_id,
    'wsus_misconfigurations' as audit,
    code, machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track,
    null::varchar as month,
    status, severity,
    audit.wsus_misconfigurations_message(reason_key, params) as reason,
    audit.wsus_misconfigurations_message(remediation_key, params) as remediation,
    reason_key, remediation_key, params,
    evidence
from all_rows;
comment on view audit.wsus_misconfigurations is 'Audit 3 findings: wsus_confirmed (fresh guest facts show UseWUServer=1 with a WUServer and no policy sending quality updates to Windows Update, on an enrolled or intended machine: fail, critical with DoNotConnectToWindowsUpdateInternetLocations=1), wsus_unenrolled (same on an eligible unenrolled machine: warn), wsus_suspected (no guest facts, enrolled, two or more hotpatch months in which the standard LCU was offered in any assessment of the month, across runs, or installed, and the hotpatch KB never was offered or installed: warn).';
