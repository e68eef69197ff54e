-- Figures (issue 18, docs/metrics.md). Four columns the case fold derives: the highest
-- node of the case's circle (who counts it, node/figures.py), whether the decision on
-- acceptance and the answer came within the limit in force (及时受理, 按期办结), and whether
-- a review was ever asked for (息访). They are derived: `siji rebuild` fills them for the
-- cases an older version folded (until then such a case counts as the origin's own, and as
-- neither timely nor late). Written to apply after any other migration: it only adds.
ALTER TABLE cases ADD COLUMN circle_top TEXT;
ALTER TABLE cases ADD COLUMN decided_in_time INTEGER;
ALTER TABLE cases ADD COLUMN done_in_time INTEGER;
ALTER TABLE cases ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cases_registered ON cases(registered_on);
CREATE INDEX cases_repeat_of ON cases(repeat_of) WHERE repeat_of IS NOT NULL;  -- 息访
-- The newest figures report of each unit for each month (node/figures.py): derived from
-- the figures.rolled_up events, so that a dashboard reads a few rows, not the log.
CREATE TABLE figures_latest (
    origin  TEXT NOT NULL,
    month   TEXT NOT NULL,      -- YYYY-MM: the cases registered (warnings raised) then
    seq     INTEGER NOT NULL,   -- the report's sequence number at its origin
    ts      TEXT NOT NULL,      -- when it was made (UTC)
    body    TEXT NOT NULL,      -- canonical JSON
    PRIMARY KEY (origin, month)
) WITHOUT ROWID;
-- 督办请求: a level's request that the unit above an overdue case's holder urge it or issue
-- a supervision order (node/oversight.py); derived from the oversight.* events.
CREATE TABLE oversight_requests (
    id            TEXT PRIMARY KEY,      -- DQ-<requester>-<year>-<serial>
    requester     TEXT NOT NULL,
    to_unit       TEXT NOT NULL,         -- the unit it is addressed to
    case_id       TEXT NOT NULL,
    holder        TEXT NOT NULL,         -- the case's holder as the requester saw it
    action        TEXT NOT NULL,         -- urge | supervise
    message       TEXT NOT NULL,
    deadline      TEXT,
    requested_at  TEXT NOT NULL,
    status        TEXT NOT NULL,         -- open | answered
    outcome       TEXT,                  -- urged | ordered | noted
    note          TEXT,
    answered_at   TEXT,
    answered_by   TEXT
);
