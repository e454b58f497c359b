-- Report view: waivers_expiring
-- Reads: report.waivers
create or replace view report.waivers_expiring as
select *
from report.waivers
where state = 'active' and days_left <= 30;
comment on view report.waivers_expiring is 'Per run: active waivers that expire within 30 days of the run''s as-of date (days_left 0-30), with every report.waivers column; the report lists them soonest first.';
