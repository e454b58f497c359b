-- Report view: waivers
-- Reads: meta.waivers, meta.runs, audit.findings
create or replace view report.waivers as
with findings as (
    select run_id, waiver_id,
        count(*) filter (where status = 'waived') as findings_waived,
        count(*) filter (where code = 'waiver_expired') as expired_findings
    from audit.findings where waiver_id is not null group by all
)
select
    w.run_id, w.waiver_id, w.audit, w.code, w.scope_kind, w.scope_key, w.scope_value,
    case when w.scope_kind = 'tag' then 'tag ' || w.scope_key || '=' || w.scope_value
         else w.scope_kind || ' ' || w.scope_value end as scope,
    w.months, w.justification, w.approver, w.expires,
    case when w.expires < cast(r.as_of as date) then 'expired' else 'active' end as state,
    date_diff('day', cast(r.as_of as date), w.expires) as days_left,
    coalesce(w.machines_matched, 0) as machines_matched,
    coalesce(f.findings_waived, 0) as findings_waived,
    coalesce(f.expired_findings, 0) as expired_findings,
    w.file_path, w.file_sha256
from meta.waivers w
join meta.runs r on r.run_id = w.run_id
left join findings f on f.run_id = w.run_id and f.waiver_id = w.waiver_id;
comment on view report.waivers is 'Per run and waiver: scope (as text), state (active, or expired when expires is before the run''s as-of date), days_left, machines_matched (0: the scope matches no machine in the run, a warning), findings_waived, expired_findings (waiver_expired findings it raised) and the waiver file''s path and SHA-256.';
