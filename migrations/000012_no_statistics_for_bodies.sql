-- Timehook schema, version 12: ANALYZE skips the columns that hold whole bodies.
--
-- No statement filters, joins or sorts on an event body, a stored object or a response body, so statistics on
-- them serve no plan; gathering them makes every ANALYZE (autovacuum's on PostgreSQL, or one run by hand on
-- the embedded store, where memory WebAssembly takes is never given back) read, copy and sort hundreds of bytes
-- per sampled row.
alter table deliveries alter column body set statistics 0, alter column last_response_body set statistics 0;
alter table delivery_attempts alter column response_body set statistics 0;
alter table changes alter column data set statistics 0;
alter table resources alter column body set statistics 0;
