-- Timehook schema, version 9: two fewer index entries per change (issue 5).
--
-- Every change was written to three B-trees: the primary key (tenant_id, version), changes_by_collection
-- (tenant_id, collection, version) and changes_by_commit_time (committed_at). Batch ingest writes its changes
-- under the tenant lock, so that cost is paid inside the one section no two writes of a tenant share. With the
-- two secondary indexes dropped, bench workload 1 on PostgreSQL 15 (2-core bench machine, two runs each,
-- alternating) went from 42,811 and 47,385 to 54,692 and 52,584 changes/s.
--
-- What they served, and what serves it now:
-- - Absence changes (nearly all of the log) are read by tenant and version range, by the delta and by the
--   webhooks' fan-out: the primary key walks that range in order, and its filter on collection skips the few
--   changes of other collections in between.
-- - Changes of the other collections (people, absence definitions, shift definitions), read by their own
--   delta, keep a partial index, which an absence change does not enter.
-- - Pruning walks each tenant's log from its pruned_through_version in version order by the primary key
--   (src/store/changes.ts pruneChanges) instead of reading the log in commit-time order.
drop index changes_by_collection;
drop index changes_by_commit_time;
create index changes_by_collection on changes (tenant_id, collection, version) where collection <> 'absences';
