-- Report view: action_items_by_group
-- Reads: report.action_items, meta.runs, core.machines
-- The machines needing action per owner and per subscription: every open action of report.action_items
-- (one per machine and root cause; waived findings are not listed here) twice, once under its owner
-- (group_kind 'owner', '(no owner tag)' when missing) and once under its subscription (group_kind
-- 'subscription', named by core.machines.subscription_name, else its id).
-- days_overdue: the action's longest exposure (audit.open_actions: days from the grace end of its oldest
-- open month, or from the off-track event, to the run's as-of date); null for actions without a month
-- (WSUS, VBS, enrollment...). Within a group, item_rank orders by severity (critical first), then days_overdue (most
-- overdue first, month-less findings after), then status (fail and warn before unknown), machine, audit,
-- code. Groups are ranked (group_rank) by action findings, then name; group_items, group_machines and
-- groups_total count everything before any cap.
create or replace view report.action_items_by_group as
with items as (
    -- the sort and group keys only: the wide columns (reason, remediation...) join in after the ranking
    select
        a.run_id, a.finding_id, a.machine_id, a.machine_name, a.audit, a.code, a.owner, a.subscription_id,
        a.status, a.status_rank, a.severity_rank,
        a.days_overdue
    from report.action_items as a
    join meta.runs as r on r.run_id = a.run_id
    where a.list_kind = 'action'
),

subscriptions as (
    select run_id, subscription_id, any_value(subscription_name) as subscription_name
    from core.machines
    group by run_id, subscription_id
),

grouped as (
    select 'owner' as group_kind, coalesce(owner, '(no owner tag)') as group_key, * from items
    union all
    select 'subscription', coalesce(subscription_id, '(no subscription)'), * from items
),

groups as (
    select
        run_id,
        group_kind,
        group_key,
        count(*) as group_items,
        count(distinct machine_id) as group_machines,
        count(*) filter (where status in ('fail', 'warn')) as group_open,
        count(*) filter (where status = 'unknown') as group_unknown
    from grouped
    group by run_id, group_kind, group_key
),

ranked_groups as (
    select
        g.*,
        row_number() over (partition by run_id, group_kind order by group_items desc, group_key) as group_rank,
        count(*) over (partition by run_id, group_kind) as groups_total
    from groups as g
),

ranked as (
    select
        run_id, group_kind, group_key, finding_id, days_overdue,
        row_number() over (
            partition by run_id, group_kind, group_key
            order by severity_rank, days_overdue desc nulls last, status_rank, machine_name, audit, code, finding_id
        ) as item_rank
    from grouped
)

select
    r.run_id,
    r.group_kind,
    r.group_key,
    case r.group_kind when 'owner' then r.group_key
        else coalesce(nullif(trim(s.subscription_name), ''), a.subscription_id, r.group_key) end as group_name,
    g.group_rank,
    g.groups_total,
    g.group_items,
    g.group_machines,
    g.group_open,
    g.group_unknown,
    r.item_rank,
    a.finding_id, a.audit, a.code, a.machine_id, a.machine_name, a.machine_kind, a.subscription_id,
    coalesce(nullif(trim(s.subscription_name), ''), a.subscription_id) as subscription_name,
    a.resource_group, a.owner, a.track, a.month, a.status, a.severity, a.severity_rank, a.status_rank,
    r.days_overdue, a.reason, a.remediation, a.reason_key, a.remediation_key, a.params
from ranked as r
join ranked_groups as g using (run_id, group_kind, group_key)
join report.action_items as a on a.run_id = r.run_id and a.finding_id = r.finding_id
left join subscriptions as s on s.run_id = a.run_id and s.subscription_id = a.subscription_id;

comment on view report.action_items_by_group is 'Machines needing action per owner and per subscription: each open action (report.action_items, one per machine and root cause; not waived) under group_kind owner (group_key = owner, ''(no owner tag)'' when missing) and under group_kind subscription (group_key = subscription id, group_name = its name or id; subscription_name on every row). days_overdue = the action''s longest exposure (audit.open_actions: days from the grace end of its oldest open month, or from the off-track event, to the run''s as-of date), null without a month. item_rank within a group: severity, then days_overdue (most first, nulls last), status, machine, audit, code. group_rank orders groups by group_items (actions), then key; group_items, group_machines, group_open (fail + warn), group_unknown and groups_total are before any cap. Follows the report_owner variable.';
