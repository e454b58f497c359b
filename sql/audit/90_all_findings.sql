create or replace view audit.all_findings as
select * from audit.reboot_avoidance
union all by name
select * from audit.missed_hotpatches
union all by name
select * from audit.wsus_misconfigurations
union all by name
select * from audit.vbs_blockers;
comment on view audit.all_findings is 'Every audit''s findings in one shape (finding_id, run_id, audit, code, machine, scope, track, month, status, severity, reason, remediation, evidence).';
