-- Figures don't pile up (issue 19; node/figures.py, docs/architecture.md "Superseded
-- figures reports are compacted"). Compaction deletes superseded report events, and SQLite
-- looks each deleted event up in the outbox (its foreign key), as log.forget does to keep
-- what a neighbour is still owed: with this index that is a lookup, not a scan of the
-- outbox for every event deleted.
CREATE INDEX outbox_lsn ON outbox(lsn);
-- A report's subject is no longer recorded as shared with the parent (a report brings no
-- history along: sync/policy.Router.brings_history); the rows recorded before go.
DELETE FROM link_subjects WHERE subject IN (
    SELECT subject FROM events WHERE type LIKE 'figures.%');
