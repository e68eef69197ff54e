-- Issue 17: deadlines right in every year. Written to apply after any other migration:
-- it only adds. The new case columns are derived (the fold fills them): cases folded by
-- an older version get them when the calendar check on opening finds no calendar_seen
-- row and folds every case with a deadline again (node/cases/recount.py).
ALTER TABLE cases ADD COLUMN due_provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN request_until TEXT;
ALTER TABLE cases ADD COLUMN request_kind TEXT;
ALTER TABLE cases ADD COLUMN request_provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN delivered_on TEXT;
ALTER TABLE cases ADD COLUMN accused_unit TEXT;

-- The holiday calendar the stored deadlines were counted with (node/holidays.py): when
-- the calendar a node opens with differs (a year's file added, a package release), every
-- case with a deadline is folded again and each change recorded (node/cases/recount.py).
CREATE TABLE calendar_seen (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT NOT NULL,
    sources      TEXT NOT NULL,   -- JSON {year: where its official arrangement comes from}
    at           TEXT NOT NULL
);

-- Deadlines a new calendar moved, shown in the case's timeline. Not derived from events
-- (a calendar is this node's own): `siji rebuild` leaves them.
CREATE TABLE deadline_changes (
    id               INTEGER PRIMARY KEY,
    case_id          TEXT NOT NULL,
    at               TEXT NOT NULL,
    kind             TEXT NOT NULL,   -- a due_kind, or review_request / recheck_request
    old_on           TEXT,
    new_on           TEXT,
    old_provisional  INTEGER NOT NULL,
    new_provisional  INTEGER NOT NULL,
    years            TEXT NOT NULL    -- the years whose arrangement changed: "2027"
);
CREATE INDEX deadline_changes_case ON deadline_changes(case_id);
