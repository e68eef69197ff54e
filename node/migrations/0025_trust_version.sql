-- Issue 19: what the fold of every bundle reads of the trust table (the tree, the parents
-- a moved node had before) is kept in memory while this mark stays the same
-- (trust.kept). Any change to the nodes, or to the joins the former parents come from,
-- sets it to a new random value: random, so that a change rolled back can never leave a
-- value that a later, different change takes again. (No INSERT OR REPLACE: a trigger's
-- conflict clause gives way to that of the statement that fired it.)
CREATE TRIGGER nodes_inserted AFTER INSERT ON nodes BEGIN
    INSERT INTO counters (name, value) SELECT 'trust_version', 0 WHERE NOT EXISTS (
        SELECT 1 FROM counters WHERE name = 'trust_version');
    UPDATE counters SET value = random() WHERE name = 'trust_version';
END;
CREATE TRIGGER nodes_updated AFTER UPDATE ON nodes BEGIN
    INSERT INTO counters (name, value) SELECT 'trust_version', 0 WHERE NOT EXISTS (
        SELECT 1 FROM counters WHERE name = 'trust_version');
    UPDATE counters SET value = random() WHERE name = 'trust_version';
END;
CREATE TRIGGER nodes_deleted AFTER DELETE ON nodes BEGIN
    INSERT INTO counters (name, value) SELECT 'trust_version', 0 WHERE NOT EXISTS (
        SELECT 1 FROM counters WHERE name = 'trust_version');
    UPDATE counters SET value = random() WHERE name = 'trust_version';
END;
CREATE TRIGGER joins_inserted AFTER INSERT ON events WHEN NEW.type = 'node.joined' BEGIN
    INSERT INTO counters (name, value) SELECT 'trust_version', 0 WHERE NOT EXISTS (
        SELECT 1 FROM counters WHERE name = 'trust_version');
    UPDATE counters SET value = random() WHERE name = 'trust_version';
END;
CREATE TRIGGER joins_deleted AFTER DELETE ON events WHEN OLD.type = 'node.joined' BEGIN
    INSERT INTO counters (name, value) SELECT 'trust_version', 0 WHERE NOT EXISTS (
        SELECT 1 FROM counters WHERE name = 'trust_version');
    UPDATE counters SET value = random() WHERE name = 'trust_version';
END;
INSERT OR REPLACE INTO counters (name, value) VALUES ('trust_version', random());
