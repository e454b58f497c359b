-- Month over month: how each finding changed between two runs of the same scope.
-- Reads: meta.runs, meta.settings, audit.findings, audit.readiness (machines in a run's scope),
-- audit.coverage (a machine's data gaps in a run).
--
-- "Open" = status fail or warn and state open (runs audited before the lifecycle: state null counts as
-- open; closed, past and opportunity findings are not open). "Good" run = status succeeded or incomplete. For runs A (earlier) and
-- B (later) of one scope, every finding open in A, open in B or waived in B gets one change:
--   still_open  open in A and in B
--   new         open in B, not open in A, never open in a good monthly run of the scope before A
--   regressed   open in B, not open in A, open in a good monthly run of the scope before A
--   waived      waived in B (neither open nor fixed)
--   fixed       open in A; in B status pass, closed (superseded by a later update, back on track), or absent while the machine is in B's scope, has no
--               data gap in B and the finding's month is still inside B's reporting period
--   unknown     open in A; in B status unknown, machine gone from B's scope, a data gap in B, or the
--               month left B's reporting period (change_detail says which). Never fixed on missing data.
-- "Open before A" is one grouped pass over history (first open as-of per scope and finding), never a
-- scan per row.

create or replace view audit.finding_run_pairs as
with
runs as (
    select run_id, scope, as_of, started_at, is_monthly, status in ('succeeded', 'incomplete') as is_good
    from meta.runs
),
previous as (
    select
        b.run_id,
        arg_max(a.run_id, (a.as_of, a.started_at)) as previous_run_id
    from runs b
    join runs a on a.scope = b.scope and a.is_good and a.is_monthly and a.as_of < b.as_of
    group by b.run_id
)
select
    b.run_id, b.scope, b.as_of, b.is_monthly, b.is_good,
    p.previous_run_id, a.as_of as previous_as_of
from runs b
left join previous p using (run_id)
left join runs a on a.run_id = p.previous_run_id;
comment on view audit.finding_run_pairs is 'One row per run: its scope, as_of, whether it is monthly and good (succeeded or incomplete), and previous_run_id / previous_as_of, the latest good monthly run of the same scope with an earlier as_of (null for the first monthly run: nothing to compare).';

-- The changes between run_a (earlier) and run_b (later) of the same scope; with both null, the
-- changes of every run against its previous good monthly run (audit.finding_run_pairs). Runs of
-- different scopes, or run_a not earlier than run_b, give no rows (hotpatch_audit.diff refuses them first).
create or replace macro audit.finding_changes_between(run_a, run_b) as table
with
pairs as (
    select run_id, previous_run_id, scope, as_of, previous_as_of
    from audit.finding_run_pairs
    where run_a is null and run_b is null and previous_run_id is not null
    union all
    select rb.run_id, ra.run_id, rb.scope, rb.as_of, ra.as_of
    from meta.runs ra
    join meta.runs rb on rb.scope = ra.scope and ra.as_of < rb.as_of
    where run_a is not null and run_b is not null and ra.run_id = run_a and rb.run_id = run_b
),
scopes as (
    select distinct scope from pairs
),
first_open as (
    -- per scope and finding: the first good monthly run in which it was open
    select r.scope, f.finding_id, min(r.as_of) as first_open_as_of
    from audit.findings f
    join meta.runs r on r.run_id = f.run_id
    where f.status in ('fail', 'warn') and coalesce(f.state, 'open') = 'open'
      and r.is_monthly and r.status in ('succeeded', 'incomplete')
      and r.scope in (select scope from scopes)
    group by r.scope, f.finding_id
),
keys as (
    -- findings open in A, or open or waived in B (the rows a diff talks about)
    select p.run_id, p.previous_run_id, f.finding_id
    from pairs p
    join audit.findings f on f.run_id = p.previous_run_id and f.status in ('fail', 'warn') and coalesce(f.state, 'open') = 'open'
    union
    select p.run_id, p.previous_run_id, f.finding_id
    from pairs p
    join audit.findings f on f.run_id = p.run_id
        and (f.status = 'waived' or (f.status in ('fail', 'warn') and coalesce(f.state, 'open') = 'open'))
),
in_scope as (
    select distinct r.run_id, r.machine_id
    from audit.readiness r
    where r.run_id in (select run_id from pairs)
),
gaps as (
    select c.run_id, c.machine_id, string_agg(distinct c.issue, ', ' order by c.issue) as issues
    from audit.coverage c
    where c.run_id in (select run_id from pairs)
    group by c.run_id, c.machine_id
),
periods as (
    select
        p.run_id,
        strftime(date_trunc('month', p.as_of) - to_months(coalesce(max(try_cast(s.value as integer)), 12) - 1), '%Y-%m')
            as period_start
    from pairs p
    left join meta.settings s on s.run_id = p.run_id and s.key = 'period_months'
    group by p.run_id, p.as_of
),
joined as (
    select
        k.run_id,
        k.finding_id,
        coalesce(fb.audit, fa.audit) as audit,
        coalesce(fb.code, fa.code) as code,
        coalesce(fb.machine_id, fa.machine_id) as machine_id,
        coalesce(fb.machine_name, fa.machine_name) as machine_name,
        coalesce(fb.owner, fa.owner) as owner,
        coalesce(fb.month, fa.month) as month,
        fa.status as status_before,
        case when fb.status in ('fail', 'warn') and coalesce(fb.state, 'open') <> 'open' then fb.state else fb.status end as status_now,
        fb.closed_by, fb.closed_at,
        coalesce(fb.severity, fa.severity) as severity,
        coalesce(fb.reason, fa.reason) as reason,
        case when fb.finding_id is not null then fb.reason_key else fa.reason_key end as reason_key,
        case when fb.finding_id is not null then fb.params else fa.params end as params,
        coalesce(fa.status in ('fail', 'warn') and coalesce(fa.state, 'open') = 'open', false) as open_before
    from keys k
    left join audit.findings fa on fa.run_id = k.previous_run_id and fa.finding_id = k.finding_id
    left join audit.findings fb on fb.run_id = k.run_id and fb.finding_id = k.finding_id
),
classified as (
    select
        j.*,
        p.previous_run_id, p.scope, p.as_of, p.previous_as_of,
        fo.first_open_as_of,
        s.machine_id is not null as machine_in_scope,
        gp.issues as data_gaps,
        pr.period_start,
        case
            when j.status_now in ('fail', 'warn') and j.open_before then 'still_open'
            when j.status_now in ('fail', 'warn') and fo.first_open_as_of < p.previous_as_of then 'regressed'
            when j.status_now in ('fail', 'warn') then 'new'
            when j.status_now = 'waived' then 'waived'
            when j.status_now = 'pass' then 'fixed'
            when j.status_now = 'closed' then 'fixed'
            when j.status_now in ('past', 'opportunity') then 'unknown'
            when j.status_now = 'unknown' then 'unknown'
            when s.machine_id is null then 'unknown'
            when gp.issues is not null then 'unknown'
            when j.month is not null and j.month < pr.period_start then 'unknown'
            else 'fixed'
        end as change,
        case
            when j.status_now in ('fail', 'warn') and j.open_before then 'open in both runs'
            when j.status_now in ('fail', 'warn') and fo.first_open_as_of < p.previous_as_of
                then 'open again; first open ' || strftime(fo.first_open_as_of, '%Y-%m-%d') || ', not open in the previous run'
            when j.status_now in ('fail', 'warn') then 'first time open in this scope'
            when j.status_now = 'waived' then 'waived in this run'
            when j.status_now = 'pass' then 'passes in this run'
            when j.status_now = 'closed' then coalesce('closed by ' || j.closed_by || ' installed ' || strftime(j.closed_at, '%Y-%m-%d'), 'closed since the previous run')
            when j.status_now = 'past' then 'no longer open: a past month''s outcome'
            when j.status_now = 'opportunity' then 'no longer open: an opportunity, not a finding'
            when j.status_now = 'unknown' then 'status unknown in this run (missing or stale data)'
            when s.machine_id is null then 'machine no longer in this run''s scope'
            when gp.issues is not null then 'no finding in this run, but its data has gaps: ' || gp.issues
            when j.month is not null and j.month < pr.period_start
                then 'month ' || j.month || ' left the reporting period (starts ' || pr.period_start || ')'
            else 'no longer found, machine in scope with complete data'
        end as change_detail
    from joined j
    join pairs p on p.run_id = j.run_id
    left join first_open fo on fo.scope = p.scope and fo.finding_id = j.finding_id
    left join in_scope s on s.run_id = j.run_id and s.machine_id = j.machine_id
    left join gaps gp on gp.run_id = j.run_id and gp.machine_id = j.machine_id
    left join periods pr on pr.run_id = j.run_id
)
select
    run_id, previous_run_id, scope, as_of, previous_as_of, finding_id, audit, code, machine_id, machine_name,
    owner, month, change, status_before, status_now, severity, reason, change_detail, first_open_as_of, reason_key, params
from classified;

create or replace view audit.finding_changes as
select c.*
from audit.finding_changes_between(null, null) c
join audit.finding_run_pairs p using (run_id)
where p.is_monthly and p.is_good;
comment on view audit.finding_changes is 'Month over month: for every good monthly run (run_id) against its previous good monthly run of the same scope (previous_run_id), each finding open in either run or waived now, with change = new | fixed | still_open | regressed | unknown | waived, status_before / status_now, severity, reason (the finding''s, with its reason_key and params) and change_detail (why: e.g. machine gone from scope, data gaps, status unknown). Fixed needs a pass row or a machine in scope with complete data; missing data is unknown, never fixed. Any two runs: the table macro audit.finding_changes_between(run_a, run_b).';
