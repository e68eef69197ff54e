-- Issue 21, the office's own work. Only adds, so it applies after any other migration.
-- 包案 as an account, the receiving leader of a 领导接待日 petition (the case fold fills them).
ALTER TABLE cases ADD COLUMN lead_account TEXT;    -- 包案领导: an account at lead_unit
ALTER TABLE cases ADD COLUMN lead_unit TEXT;
ALTER TABLE cases ADD COLUMN received_by TEXT;     -- 领导接待: the receiving leader

-- 约访: appointments with a petitioner for a case (case.appointed, case.appointment_recorded).
CREATE TABLE appointments (
    id           TEXT NOT NULL,          -- YF-<node>-<year>-<serial>
    case_id      TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    unit         TEXT NOT NULL,          -- the node that made it
    leader       TEXT NOT NULL,          -- an account at that node
    leader_name  TEXT NOT NULL,
    at           TEXT NOT NULL,          -- local time, YYYY-MM-DDTHH:MM
    place        TEXT NOT NULL,
    note         TEXT,
    status       TEXT NOT NULL,          -- planned | held | missed | cancelled
    outcome      TEXT,
    done_on      TEXT,
    PRIMARY KEY (case_id, id)
);
CREATE INDEX appointments_at ON appointments(at);

-- 附件: photos and scans of a case (case.attached); the bytes are files under attachments/,
-- named by their SHA-256.
CREATE TABLE attachments (
    case_id   TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    sha256    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    type      TEXT NOT NULL,            -- image/jpeg | image/png | application/pdf
    kind      TEXT NOT NULL,            -- letter | id_photo | site | other
    name      TEXT,
    up_to     TEXT,                     -- the highest tier the bytes may reach (an ID photo)
    origin    TEXT NOT NULL,
    added_on  TEXT NOT NULL,
    event     TEXT NOT NULL,
    PRIMARY KEY (case_id, sha256)
);
CREATE INDEX attachments_sha ON attachments(sha256);

-- The attachments whose bytes a neighbour has whole (node/sync/blobs.py).
CREATE TABLE blobs_sent (
    peer    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (peer, sha256)
) WITHOUT ROWID;

-- Repeats (重复信访): keyed digests of petitioners' ID numbers and phones (repeat.seen) and
-- the links an office made between cases (repeat.linked). Derived from the events.
CREATE TABLE person_digests (
    case_id        TEXT NOT NULL,
    origin         TEXT NOT NULL,
    idx            INTEGER NOT NULL,
    kind           TEXT NOT NULL,       -- id | phone
    version        INTEGER NOT NULL,    -- of the network key
    digest         TEXT NOT NULL,
    registered_on  TEXT NOT NULL,
    category       TEXT NOT NULL,
    PRIMARY KEY (case_id, idx, kind, version)
);
CREATE INDEX person_digests_digest ON person_digests(digest);
CREATE TABLE repeat_links (
    case_id  TEXT NOT NULL,
    of_case  TEXT NOT NULL,
    by_node  TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       TEXT NOT NULL,
    note     TEXT,
    PRIMARY KEY (case_id, of_case)
);

-- Search (node/search.py): Chinese as overlapping bigrams, kept in step with the cases lazily.
CREATE VIRTUAL TABLE search_index USING fts5(text, ident, masked, tokenize = 'unicode61');
CREATE TABLE search_state (
    case_id      TEXT PRIMARY KEY,
    doc          INTEGER NOT NULL,      -- its rowid in search_index
    event_count  INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
) WITHOUT ROWID;

-- 排查: screening rounds, each unit's report, and the register (登记造册) of each unit.
CREATE TABLE rounds (
    id            TEXT PRIMARY KEY,     -- PC-<node>-<year>-<serial>
    origin_node   TEXT NOT NULL,
    title         TEXT NOT NULL,
    focus         TEXT,
    period_start  TEXT NOT NULL,
    period_end    TEXT NOT NULL,
    deadline      TEXT NOT NULL,
    scheduled_on  TEXT NOT NULL,
    note          TEXT,
    heads         TEXT NOT NULL,
    event_count   INTEGER NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE round_units (
    round_id     TEXT NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
    unit         TEXT NOT NULL,
    reported_on  TEXT,
    reporter     TEXT,
    checked      INTEGER,
    added        INTEGER,
    high         INTEGER,
    note         TEXT,
    PRIMARY KEY (round_id, unit)
);
CREATE TABLE register_entries (
    id           TEXT PRIMARY KEY,      -- DJ-<node>-<year>-<serial>
    origin_node  TEXT NOT NULL,
    kind         TEXT NOT NULL,         -- hotspot | person | matter
    title        TEXT NOT NULL,
    category     TEXT NOT NULL,
    place        TEXT,
    risk         TEXT NOT NULL,         -- general | major | serious
    responsible  TEXT NOT NULL,         -- 稳控/化解责任人
    measures     TEXT,
    status       TEXT NOT NULL,         -- open | resolved
    first_round  TEXT,
    last_round   TEXT,
    recorded_on  TEXT NOT NULL,
    updated_on   TEXT NOT NULL,
    closed_on    TEXT,
    note         TEXT,
    heads        TEXT NOT NULL,
    event_count  INTEGER NOT NULL
);
CREATE INDEX register_entries_origin ON register_entries(origin_node, status);
CREATE TABLE register_people (
    entry_id   TEXT NOT NULL REFERENCES register_entries(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    id_number  TEXT,
    phone      TEXT,
    withheld   TEXT,
    PRIMARY KEY (entry_id, idx)
);
CREATE TABLE register_history (
    entry_id  TEXT NOT NULL REFERENCES register_entries(id) ON DELETE CASCADE,
    n         INTEGER NOT NULL,
    on_day    TEXT NOT NULL,
    round     TEXT,
    origin    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    what      TEXT NOT NULL,            -- JSON of the fields it set
    PRIMARY KEY (entry_id, n)
);

-- 领导接待日: who of this office's leaders is on duty on a reception day (this node's own
-- planning, not an event).
CREATE TABLE reception_duty (
    on_date  TEXT PRIMARY KEY,
    leader   TEXT NOT NULL,
    place    TEXT,
    note     TEXT,
    set_by   TEXT NOT NULL,
    set_at   TEXT NOT NULL
);
