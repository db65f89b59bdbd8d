-- Timehook schema, version 11: the absence write plans every call for the absences it is given (issue 5).
--
-- PL/pgSQL caches the plan of timehook_write_absence_batches' statement per session. After five calls it may
-- switch to a generic plan: one made without the call's arrays, so for about ten absences, on the table as it
-- is at that moment. Made while `absences` holds a handful of rows, every index that starts with tenant_id
-- looks as cheap as the primary key; the generic plan then finds each stored absence through
-- absences_by_resulting_definition, reading every absence of the tenant for each one, and it is kept for
-- good: the embedded store never analyzes (PGlite has no autovacuum), and PostgreSQL replans only after an
-- analyze. Six single-absence writes followed by a write of 1,000 updates: 504,500 index entries read
-- instead of 1,000; 100-115 ms instead of 20 on PostgreSQL 15, 120-200 ms instead of 30-40 embedded (a
-- 2-core machine, 2026-11-29). In bench workload 2, which writes after the delivery probe's single changes,
-- the write's share of the embedded store's thread fell from 15.3 to 3.7 CPU-seconds per 100,000 changes.
--
-- A plan made for each call fits the call's arrays and the table as it is. What that costs was not
-- measurable against noise: 1,000-absence writes (bench workload 1) and writes of 1, 10 and 100 absences
-- (300 of each) ran as fast either way on both stores. (A generic plan good at every size would save the
-- planning too, but one made on a small table is the failure above; see README, Limits.)
alter function timehook_write_absence_batches(
  text, text, int, bigint[], text[], bigint[], bigint[], bigint[], bigint[], int[], int[], int[], text[], text[],
  text[], text[], boolean[], text[], int[], bigint[], int[], bigint[], int[], bigint[], int[], bigint[], int[]
) set plan_cache_mode = force_custom_plan;
