create or replace view audit.reboot_avoidance as
with
machine_months as (
    select * from audit.machine_months where outcome <> 'not_applicable'
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
            when 'avoided' then machine_name || ' installed the ' || month || ' update without a reboot (' || coalesce(installed_kbs, month_kb, 'hotpatch') || ').'
            when 'expected_reboot' then machine_name || ' rebooted in ' || month || ', a ' || replace(kind, '_', ' ') || ' month, as planned'
                || coalesce(' (' || installed_kbs || ')', '') || '.'
            when 'unexpected_reboot' then machine_name || ' rebooted ' || reboot_count || ' time(s) in hotpatch month ' || month
                || ' while enrolled; cause: ' || coalesce(cause_kbs, 'no non-hotpatch KB recorded') || '.'
            when 'avoidable_reboot' then machine_name || ' is eligible for hotpatch but not enrolled (' || coalesce(status_at_start, hotpatch_status)
                || ') and rebooted in hotpatch month ' || month || ' for ' || coalesce(cause_kbs, installed_kbs, 'the monthly update') || '; hotpatch would have avoided it.'
            when 'no_install' then machine_name || ' installed no monthly quality update in ' || month
                || case when month_kb_available then ' (' || month_kb || ' still listed as available).'
                        when installation_runs = 0 and unchanged_build is not null then ' (the OS build stayed ' || unchanged_build || ' in runs before and after the month).'
                        else ' (installation runs found none).' end
            else machine_name || ' has no installation data covering ' || month || '; the month is not judged.'
        end as reason,
        case outcome
            when 'unexpected_reboot' then 'Review the updates that rebooted the machine (' || coalesce(cause_kbs, 'see evidence')
                || '); schedule .NET and non-security updates with the quarterly baseline, or return the machine to the hotpatch track at the next baseline.'
            when 'avoidable_reboot' then 'Enable hotpatch for this machine (Arc: license Hotpatch; Azure: enableHotpatching with patchMode AutomaticByPlatform).'
            when 'no_install' then 'Check the machine''s maintenance schedule and update source; install the month''s update.'
            when 'unknown' then 'Make sure Update Manager installation results are collected every month (run the pipeline at least every 30 days).'
            else ''
        end as remediation
    from machine_months mm
)
select
    md5('reboot_avoidance|' || outcome || '|' || machine_id || '|' || coalesce(month, '')) as finding_id,
    run_id,
    'reboot_avoidance' as audit,
    outcome as code,
    machine_id, machine_name, machine_kind, subscription_id, resource_group, owner, track, month,
    status, severity, reason, remediation,
    evidence
from judged;
comment on view audit.reboot_avoidance is 'Audit 1 findings: one per Windows machine-month of the period (not_applicable months left out) with the reboot-avoidance outcome as code: avoided and expected_reboot pass, unexpected_reboot and no_install warn (past outcomes: facts of the period, not open actions), avoidable_reboot warn at severity info (an opportunity, not a defect), unknown when no installation data covers the month.';
