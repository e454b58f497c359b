-- Report view: attest_calendar
-- Reads: core.run_calendar_months, core.run_calendar, core.run_settings
-- The release-calendar rows a run was judged with (the calendar pinned to the run), for the months of its
-- reporting period: per track and month the kind, KB, build and release date, whether the row was checked
-- against Microsoft's release notes (verified), and rule_only for a month without a row (judged by the
-- default rule: Jan/Apr/Jul/Oct baseline, other months hotpatch). Out-of-band events follow their month.
create or replace view report.attest_calendar as
select
    c.run_id, c.track, c.month, c.kind, c.kb, c.os_build, c.release_date,
    coalesce(c.verified, false) as verified, coalesce(c.rule_only, false) as rule_only, c.source_url
from core.run_calendar_months as c
join core.run_settings as p on p.run_id = c.run_id
where c.month between p.period_start_month and p.as_of_month
union all
select
    e.run_id, e.track, e.month, e.kind, e.kb, e.os_build, e.release_date,
    coalesce(e.verified, false), false, e.source_url
from core.run_calendar as e
join core.run_settings as p on p.run_id = e.run_id
where e.month between p.period_start_month and p.as_of_month and e.kind in ('oob_lcu', 'oob_hotpatch');

comment on view report.attest_calendar is 'Per run: the release-calendar rows of its reporting period (core.run_calendar_months, plus out-of-band events of core.run_calendar): track, month, kind, kb, os_build, release_date, verified (checked against Microsoft''s release notes), rule_only (no row: judged by the default rule) and source_url.';
