create or replace view audit.reboot_avoidance as
with
machine_months as (
    select * from audit.machine_months_detail where outcome <> 'not_applicable'
),
judged as (
    select
        mm.*,
        case outcome
            when 'avoided' then 'pass'
            when 'expected_reboot' then 'pass'
            when 'unexpected_reboot' then 'warn'
            when 'avoidable_reboot' then 'warn'
            when 'no_install' then 'warn'
            else 'unknown'
        end as status,
        case outcome
            when 'unexpected_reboot' then 'medium'
            when 'avoidable_reboot' then 'info'
            when 'no_install' then 'low'
            else 'info'
        end as severity,
        case outcome
            when 'avoided' then 'avoided'
            when 'expected_reboot' then case when installed_kbs is null then 'expected_reboot' else 'expected_reboot.kbs' end
            when 'unexpected_reboot' then 'unexpected_reboot'
            when 'avoidable_reboot' then 'avoidable_reboot'
            when 'no_install' then case when month_kb_available then 'no_install.available'
                when installation_runs = 0 and unchanged_build is not null then 'no_install.unchanged_build'
                else 'no_install.none_found' end
            -- runs were collected for part of the month only, and they installed no quality update
            else case when installation_runs > 0 then 'unknown.partial' else 'unknown' end
        end as reason_key,
        case when outcome in ('unexpected_reboot', 'avoidable_reboot', 'no_install', 'unknown') then outcome || '.fix' end as remediation_key,
        -- the named values the reason and remediation templates quote (sql/audit/40_reboot_avoidance.toml); a
        -- struct cast to a map, which DuckDB builds four times faster than a map literal (the same in every audit)
        {
            'machine': machine_name, 'month': month, 'kind': replace(kind, '_', ' '),
            'kbs': case outcome when 'avoided' then coalesce(installed_kbs, month_kb, 'hotpatch')
                when 'avoidable_reboot' then coalesce(cause_kbs, installed_kbs, 'the monthly update') else installed_kbs end,
            'count': cast(reboot_count as varchar),
            'cause': coalesce(cause_kbs, case outcome when 'unexpected_reboot' then 'no non-hotpatch KB recorded' end),
            'status': coalesce(status_at_start, hotpatch_status), 'kb': month_kb, 'build': unchanged_build
        }::map(varchar, varchar) as params
    from machine_months mm
)
select
    md5('reboot_avoidance|' || outcome || '|' || machine_id || '|' || coalesce(month, '')) as finding_id,
    run_id,
    'reboot_avoidance' as audit,
    outcome as code,
    machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month,
    status, severity,
    audit.reboot_avoidance_message(reason_key, params) as reason,
    audit.reboot_avoidance_message(remediation_key, params) as remediation,
    reason_key, remediation_key, params,
    evidence
from judged;
comment on view audit.reboot_avoidance is 'Audit 1 findings: one per Windows machine-month of the period (not_applicable months left out) with the reboot-avoidance outcome as code: avoided and expected_reboot pass, unexpected_reboot and no_install warn (past outcomes: facts of the period, not open actions), avoidable_reboot warn at severity info (an opportunity, not a defect), unknown when no installation data covers the month, or data covers only part of it and shows no update installed (the rest was never collected: never judged no_install).';
