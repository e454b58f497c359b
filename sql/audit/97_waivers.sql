-- Waivers (after 95_findings.sql, whose table the views read): the waiver file a run applied (hotpatch_audit.waivers loads it inside the run's transaction),
-- and which machines and findings each waiver's scope matches. See docs/waivers.md.
-- meta.waivers itself is in sql/00_schema.sql.
create or replace view audit.waiver_machines as
select w.run_id, w.waiver_id, m.machine_id
from meta.waivers w
join core.machines m on m.run_id = w.run_id and (
    (w.scope_kind = 'machine_id' and m.machine_id = lower(w.scope_value))
    or (w.scope_kind = 'subscription_id' and lower(m.subscription_id) = lower(w.scope_value))
    or (w.scope_kind = 'resource_group'
        and lower(m.subscription_id) || '/' || lower(m.resource_group) = lower(w.scope_value))
    or (w.scope_kind = 'tag' and list_filter(
            map_entries(try_cast(json_transform(m.tags, '"MAP(VARCHAR, VARCHAR)"') as map(varchar, varchar))),
            lambda e: lower(e.key) = lower(w.scope_key))[1].value = w.scope_value)
);
comment on view audit.waiver_machines is 'Per run and waiver: the machines in scope (core.machines) its scope matches. Ids, subscriptions and resource groups compare case-insensitively (Azure ids are), tag keys case-insensitively, tag values exactly.';

create or replace view audit.waiver_finding_matches as
select f.run_id, f.finding_id, w.waiver_id, w.expires, w.expires >= cast(r.as_of as date) as active
from meta.waivers w
join meta.runs r on r.run_id = w.run_id
join audit.waiver_machines wm on wm.run_id = w.run_id and wm.waiver_id = w.waiver_id
join audit.findings f on f.run_id = w.run_id and f.machine_id = wm.machine_id
    and f.audit = w.audit and f.code = w.code
    and (w.months is null or list_contains(w.months, f.month))
where f.status <> 'pass';
comment on view audit.waiver_finding_matches is 'Per run: each finding that is not pass and a waiver whose audit and code equal the finding''s (literally: a WSUS waiver never matches a VBS finding or a readiness gate), whose scope matches the machine and whose months (if any) hold the finding''s month; active = the waiver has not expired at the run''s as-of date.';
