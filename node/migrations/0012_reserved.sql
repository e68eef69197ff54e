-- A placeholder for migration 12, which another branch (issue 16) brings: delete this
-- file when that one is merged (tests/test_store.py fails while both are here).
SELECT 1;
