-- Links still at the old default of 200 events a bundle take the new one,
-- 400 (node/sync/outbox.py, BATCH); a link that halved its own after a 413
-- keeps what it learned.
UPDATE links SET batch = 400 WHERE batch = 200;
