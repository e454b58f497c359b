-- Which runs a run may read as history: itself, and the succeeded runs of its scope with an earlier
-- as-of. Failed, incomplete, superseded and still-running runs are never evidence of a month for another
-- run (a failed run has no rows; an incomplete one may lack rows, and missing rows would read as "no
-- install", "not Enabled"). Every view that looks back over earlier runs joins this view, never meta.runs.
create or replace view core.run_evidence as
select
    t.run_id,
    t.scope,
    o.run_id as evidence_run_id,
    o.as_of as evidence_as_of
from meta.runs t
join meta.runs o
    on o.scope = t.scope
    and (o.run_id = t.run_id or (o.status = 'succeeded' and o.as_of < t.as_of));
comment on view core.run_evidence is 'Per run: the runs whose rows it may read as history (evidence_run_id, evidence_as_of): itself and the succeeded runs of the same scope with an earlier as-of. Failed, incomplete, superseded and running runs are never evidence for another run.';
