-- The whole current schema of a siji node: the only way a new database is
-- made. Older databases are upgraded by node/migrations/NNNN_*.sql; a test
-- checks that an old schema plus every migration equals this file.
-- Rows in cases, petitioners, supervision_orders, warnings, warning_acks,
-- warning_receipts and warning_alarms are derived: `siji rebuild` recomputes
-- them from the events table.

PRAGMA application_id = 1397312073;  -- 'SIJI'

-- Nodes this node knows: itself, its parent, children, and origins of
-- events it holds. An event from a node not listed here is refused.
CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tier        TEXT NOT NULL CHECK (tier IN ('city', 'town', 'area', 'village')),
    parent_id   TEXT,
    sign_pub    BLOB NOT NULL,
    enc_pub     BLOB,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    cert        TEXT,
    added_at    TEXT NOT NULL,
    held        TEXT             -- why no key of this node id is trusted (node/membership.py)
);

-- What an admin must look at about a node: a membership conflict, a suspect origin (it
-- signed two different events under one number), a neighbour's clock.
CREATE TABLE node_flags (
    node_id  TEXT NOT NULL,
    kind     TEXT NOT NULL,   -- membership | suspect | clock
    detail   TEXT NOT NULL,
    since    TEXT NOT NULL,
    PRIMARY KEY (node_id, kind)
) WITHOUT ROWID;

-- Named counters: this node's own event sequence and yearly serials.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);

-- The append-only, signed event log. lsn is the local arrival order.
CREATE TABLE events (
    lsn          INTEGER PRIMARY KEY,
    origin       TEXT NOT NULL REFERENCES nodes(node_id),
    seq          INTEGER NOT NULL,
    ts           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    prev         TEXT NOT NULL,   -- JSON list of event ids "origin:seq"
    body         TEXT NOT NULL,   -- canonical JSON
    sig          BLOB NOT NULL,
    digest       BLOB NOT NULL,   -- SHA-256 of the signed bytes
    received_at  TEXT NOT NULL,
    source       TEXT,            -- the neighbour it came from; NULL if written here
    disclosed    TEXT,            -- canonical JSON {path: [salt, value]} of committed fields
    UNIQUE (origin, seq)
);
CREATE INDEX events_subject ON events(subject);

-- Verified events waiting for an event they depend on.
CREATE TABLE inbox (
    origin       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    wire         TEXT NOT NULL,   -- the event as received (JSON)
    waiting_for  TEXT NOT NULL,   -- an event id this one needs
    received_at  TEXT NOT NULL,
    source       TEXT,            -- the neighbour it came from
    PRIMARY KEY (origin, seq)
);
CREATE INDEX inbox_waiting ON inbox(waiting_for);

-- Events refused, with the reason (no personal data: ids and codes only).
CREATE TABLE refusals (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    origin   TEXT,
    seq      INTEGER,
    code     TEXT NOT NULL,
    reason   TEXT NOT NULL
);

-- Sync with each neighbour (docs/protocol.md, part 2). A link is one
-- direction; this row holds both directions' state with one peer.
CREATE TABLE links (
    peer           TEXT PRIMARY KEY,         -- the neighbour's node id
    scanned_lsn    INTEGER NOT NULL DEFAULT 0,  -- events up to this lsn were considered
    next_out       INTEGER NOT NULL DEFAULT 1,  -- next link sequence number to assign
    acked          INTEGER NOT NULL DEFAULT 0,  -- the peer applied our link up to here
    applied        INTEGER NOT NULL DEFAULT 0,  -- we applied the peer's link up to here
    batch          INTEGER NOT NULL DEFAULT 200,
    last_contact   TEXT,
    last_success   TEXT,
    last_error     TEXT,
    errors         INTEGER NOT NULL DEFAULT 0,
    last_ack_at    TEXT,                     -- the newest acknowledgement time taken from it
    -- what the link has shown of itself (node/pacing.py, Pace): bytes moved and cuts seen,
    -- both decaying; the rate measured; bytes on the wire an event takes
    moved          REAL NOT NULL DEFAULT 0,
    cuts           REAL NOT NULL DEFAULT 0,
    rate           REAL,                     -- bytes a second, NULL until measured
    event_wire     REAL,
    -- the session under way or the last one: bytes the neighbour confirmed, and when
    sent_bytes     INTEGER NOT NULL DEFAULT 0,
    progress_at    TEXT,
    -- events after this lsn are routed to the link by link_due (node/sync/outbox.py, route)
    routed_from    INTEGER NOT NULL DEFAULT 0
);

-- Events queued for a neighbour, numbered on that link.
CREATE TABLE outbox (
    peer   TEXT NOT NULL REFERENCES links(peer),
    lseq   INTEGER NOT NULL,
    lsn    INTEGER NOT NULL REFERENCES events(lsn),
    PRIMARY KEY (peer, lseq)
);
-- compaction deletes events (node/figures.py): each is looked up here (the foreign key)
CREATE INDEX outbox_lsn ON outbox(lsn);

-- The subjects (cases, warnings) whose history a neighbour has been sent
-- (node/sync/policy.py): the first event of a subject a neighbour may have is
-- preceded by everything earlier, once.
CREATE TABLE link_subjects (
    peer     TEXT NOT NULL REFERENCES links(peer),
    subject  TEXT NOT NULL,
    PRIMARY KEY (peer, subject)
) WITHOUT ROWID;

-- The events numbered for a neighbour ahead of the routine scan (node/sync/outbox.py,
-- urgent first): an urgent event and what it builds on. A row goes once the scan has
-- passed it, so that the scan does not number it again.
CREATE TABLE link_ahead (
    peer  TEXT NOT NULL REFERENCES links(peer),
    lsn   INTEGER NOT NULL,
    PRIMARY KEY (peer, lsn)
) WITHOUT ROWID;

-- The routing decided once per event (node/sync/outbox.py, ``route``): for each
-- neighbour, the events routed after its link's ``routed_from`` that it may be owed. A row
-- goes once the link's scan has passed it. The counter ``routed_lsn`` is how far the
-- routing got.
CREATE TABLE link_due (
    peer  TEXT NOT NULL,
    lsn   INTEGER NOT NULL,
    PRIMARY KEY (peer, lsn)
) WITHOUT ROWID;

-- One-time enrollment codes a parent's admin hands to a child's admin.
CREATE TABLE enroll_codes (
    id           TEXT PRIMARY KEY,        -- the code's first group, said aloud to find it
    mac_key      BLOB NOT NULL,           -- derived from the code (SHA-256); the code is not kept
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    used_by      TEXT
);

CREATE TABLE users (
    username       TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('liaison', 'handler', 'leader', 'admin')),
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);

-- Failed web logins, per username and per client address, so that throttling
-- survives a restart (node/web/auth.py).
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,    -- 'user:<username>' or 'addr:<client address>'
    failures      INTEGER NOT NULL,
    first_at      TEXT NOT NULL,       -- start of the current counting window
    locked_until  TEXT                 -- refused until then (UTC)
);

-- Who read or unmasked a petitioner's identity, and when (Guardrails).
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL
);

-- 信访件: the fold of each case's events.
CREATE TABLE cases (
    id              TEXT PRIMARY KEY,     -- the readable number, e.g. C-dongshan-2026-0007
    origin_node     TEXT NOT NULL,
    holder          TEXT NOT NULL,        -- 承办单位: the node that decides
    state           TEXT NOT NULL,
    handover        TEXT,                 -- pending / signed / returned, for the last referral
    referred_by     TEXT,
    archived        INTEGER NOT NULL DEFAULT 0,
    needs_review    INTEGER NOT NULL DEFAULT 0,
    conflicts       TEXT NOT NULL DEFAULT '[]',
    query_code      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    nature          TEXT NOT NULL,
    category        TEXT NOT NULL,
    summary         TEXT NOT NULL,
    request         TEXT,
    facts           TEXT,
    people_count    INTEGER NOT NULL,
    collective      INTEGER NOT NULL DEFAULT 0,
    first_time      INTEGER NOT NULL DEFAULT 1,
    repeat_of       TEXT,
    skip_level      INTEGER NOT NULL DEFAULT 0,
    lead_leader     TEXT,                 -- 包案领导
    assignee        TEXT,
    decision        TEXT,
    reply           TEXT,
    delivery        TEXT,
    rating          TEXT,
    reopen_count    INTEGER NOT NULL DEFAULT 0,
    urge_count      INTEGER NOT NULL DEFAULT 0,
    extended_days   INTEGER NOT NULL DEFAULT 0,
    merged_into     TEXT,
    outcome         TEXT,
    registered_on   TEXT NOT NULL,
    accepted_on     TEXT,
    replied_on      TEXT,
    closed_on       TEXT,
    due_on          TEXT,                 -- the earliest open deadline of this state
    due_kind        TEXT,
    heads           TEXT NOT NULL,        -- JSON list of the case's head event ids
    event_count     INTEGER NOT NULL,
    updated_at      TEXT NOT NULL,
    referred_on     TEXT,                 -- the last referral down: when, and its deadline
    referral_due    TEXT,
    due_provisional INTEGER NOT NULL DEFAULT 0,  -- due_on rests on the statutory holidays
    request_until   TEXT,                 -- the petitioner may ask for review / re-review until
    request_kind    TEXT,                 -- review_request | recheck_request
    request_provisional INTEGER NOT NULL DEFAULT 0,
    delivered_on    TEXT,                 -- the reply's delivery, from which Art. 35 counts
    accused_unit    TEXT,                 -- Art. 30: the unit a report accuses, never its holder
    circle_top      TEXT,                 -- the highest node of its circle: it counts the case
    decided_in_time INTEGER,              -- 及时受理: decided within the limit (NULL: not yet)
    done_in_time    INTEGER,              -- 按期办结: answered within the limit (NULL: not yet)
    reviewed        INTEGER NOT NULL DEFAULT 0, -- a review (复查) was asked for
    lead_account    TEXT,                 -- 包案领导: an account at lead_unit
    lead_unit       TEXT,
    received_by     TEXT                  -- 领导接待: the receiving leader
);
CREATE INDEX cases_state ON cases(state);
CREATE INDEX cases_registered ON cases(registered_on);
CREATE INDEX cases_repeat_of ON cases(repeat_of) WHERE repeat_of IS NOT NULL;  -- 息访
CREATE INDEX cases_due ON cases(due_on);
CREATE INDEX cases_holder ON cases(holder);

CREATE TABLE petitioners (
    case_id         TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,
    name            TEXT NOT NULL,
    id_number       TEXT,
    phone           TEXT,
    address         TEXT,
    representative  INTEGER NOT NULL DEFAULT 0,
    withheld        TEXT,             -- JSON {field: tier it stays at} of fields not here
    PRIMARY KEY (case_id, idx)
);

-- 督办单: each with its own deadline and life.
CREATE TABLE supervision_orders (
    id              TEXT NOT NULL,        -- unique within its case
    case_id         TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    issuer          TEXT NOT NULL,
    target          TEXT NOT NULL,
    instruction     TEXT NOT NULL,
    deadline        TEXT NOT NULL,
    status          TEXT NOT NULL,        -- issued / acknowledged / feedback / closed
    issued_on       TEXT NOT NULL,
    acknowledged_on TEXT,
    feedback        TEXT,
    feedback_on     TEXT,
    closed_on       TEXT,
    PRIMARY KEY (case_id, id)
);

-- 预警: early warnings of group petitions.
CREATE TABLE warnings (
    id               TEXT PRIMARY KEY,
    origin_node      TEXT NOT NULL,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    category         TEXT NOT NULL,
    place            TEXT NOT NULL,
    trigger_desc     TEXT,
    expected_size    INTEGER NOT NULL,
    expected_date    TEXT,
    destination      TEXT NOT NULL,
    skip_level_risk  INTEGER NOT NULL DEFAULT 0,
    beijing_risk     INTEGER NOT NULL DEFAULT 0,
    sensitive_date   TEXT,
    risk_score       INTEGER NOT NULL,
    risk_level       TEXT NOT NULL,
    measures         TEXT,
    lead_leader      TEXT,
    linked_cases     TEXT NOT NULL DEFAULT '[]',
    raised_at        TEXT NOT NULL,
    heads            TEXT NOT NULL,
    event_count      INTEGER NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX warnings_status ON warnings(status);

CREATE TABLE warning_acks (
    warning_id  TEXT NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (warning_id, node_id)
);

-- The same-day chain: each node's receipt, and its alarm for not acknowledging in time.
CREATE TABLE warning_receipts (
    warning_id  TEXT NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    at          TEXT NOT NULL,           -- in the node's time zone, for people
    ts          TEXT NOT NULL,           -- the receipt event's UTC time, for the alarm's clock
    PRIMARY KEY (warning_id, node_id)
);

CREATE TABLE warning_alarms (
    warning_id  TEXT NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,           -- the node that did not acknowledge in time
    hours       INTEGER NOT NULL,        -- its WARNING_ACK_HOURS when it raised the alarm
    at          TEXT NOT NULL,
    PRIMARY KEY (warning_id, node_id)
);

-- Evidence of equivocation (node/evidence.py): an origin signed two different events
-- under one number, or a link number carried two different events. Both are kept: the
-- stored event by its digest, the refused one whole.
CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,   -- event | link
    origin      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kept_digest BLOB,            -- the digest of the event stored under that number, if any
    other       TEXT NOT NULL,   -- the refused event's canonical wire JSON
    source      TEXT             -- the neighbour it came from
);
CREATE INDEX evidence_origin ON evidence(origin, seq);

-- Events an admin released after they were held for their time (too far in the past):
-- their dates count from when this node received them (node/log.py, release_held).
CREATE TABLE clock_overrides (
    origin  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    ts      TEXT NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;

-- Web sessions kept on the server (node/users.py): a cookie names one by a random id,
-- stored here only as its SHA-256; logging out, a password change or an admin ends it.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    ended_at    TEXT,
    ended_why   TEXT             -- logout | password | admin | expired
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(username);

-- Notices (node/notices.py): channels added on the network page (those of siji.toml
-- are read from it), each channel's last success and error, and the notices queued,
-- sent or retried, each once per channel and key.
CREATE TABLE notify_channels (
    name      TEXT PRIMARY KEY,
    url       TEXT NOT NULL,    -- an Apprise address: a secret, never logged
    roles     TEXT NOT NULL,    -- JSON list of roles
    kinds     TEXT NOT NULL,    -- JSON list of notice kinds
    added_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE notify_state (
    name           TEXT PRIMARY KEY,
    last_ok        TEXT,
    last_error     TEXT,
    last_error_at  TEXT,
    failures       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,    -- what makes it once only: an event id, a deadline and day
    subject     TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    next_try    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     TEXT,
    error       TEXT,
    given_up    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (channel, key)
);
CREATE INDEX notices_due ON notices(sent_at, given_up, next_try);


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


-- The newest figures report of each unit for each month (node/figures.py), derived from
-- the figures.rolled_up events so that a dashboard reads a few rows, not the log.
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

-- Issue 19: every list filtered and paged in SQL (node/cases/query.py), newest first by
-- (registered_on, id); counts from the same conditions.
CREATE INDEX cases_page ON cases(registered_on, id);
CREATE INDEX cases_origin ON cases(origin_node, registered_on);
CREATE INDEX cases_holder_page ON cases(holder, registered_on);
CREATE INDEX cases_category ON cases(category, registered_on);
CREATE INDEX cases_state_page ON cases(state, registered_on);
CREATE INDEX cases_referred ON cases(referred_by) WHERE referred_by IS NOT NULL;
CREATE INDEX warnings_page ON warnings(raised_at, id);
CREATE INDEX warnings_origin ON warnings(origin_node, raised_at);
-- Issue 19: the city at a year's size. What the city's pages ask on every load, answered
-- from an index instead of the case rows (a case row is 1-2 KB with its text: counting a
-- few cases among 100,000 held by one unit read every one of them). Only indexes.
-- What waits at a unit (cases.waiting_here on every page, the inbox): cases escalated here
-- and not yet decided, referrals to sign for; counted from the index alone.
CREATE INDEX cases_waiting ON cases(holder, handover, state, origin_node);
-- ... and their pages, newest first (the inbox, from-above: none pending read every case
-- held here).
CREATE INDEX cases_handover_page ON cases(holder, handover, registered_on);
-- Cases urged (催办) held here: the urges waiting and the from-above list.
CREATE INDEX cases_urged ON cases(holder, registered_on) WHERE urge_count > 0;
-- The reception log and a leader's 包案 cases (node/reception.py).
CREATE INDEX cases_reception ON cases(origin_node, registered_on) WHERE channel = 'leader_day';
CREATE INDEX cases_lead ON cases(lead_account, lead_unit) WHERE lead_account IS NOT NULL;
-- The search index's refresh compares each case's count of events and last change.
CREATE INDEX cases_search ON cases(id, event_count, updated_at);
-- the years of deadlines resting on the statutory holidays only, by a few seeks
-- (recount.calendar_gaps, the admin's banner)
CREATE INDEX cases_due_provisional ON cases(due_on) WHERE due_provisional = 1;
CREATE INDEX cases_request_provisional ON cases(request_until) WHERE request_provisional = 1;

-- Bundles in transit, each bound to the SHA-256 of the whole bundle (node/sync/parts.py,
-- as NNCP's .part files): 'in', what a neighbour has sent of one so far (the bytes in
-- part_pieces), or, once whole and applied, its digest alone; 'out', the sealed bundle
-- this node has in flight to a neighbour and how much of it the neighbour holds. At
-- most one of each per neighbour.
CREATE TABLE parts (
    peer     TEXT NOT NULL,
    way      TEXT NOT NULL CHECK (way IN ('in', 'out')),
    digest   BLOB NOT NULL,
    size     INTEGER NOT NULL,            -- the whole bundle's bytes
    held     INTEGER NOT NULL DEFAULT 0,  -- bytes the receiver holds (out: as it confirmed)
    done     INTEGER NOT NULL DEFAULT 0,  -- in: whole and applied (the bytes are gone)
    first    INTEGER,                     -- out: the link numbers inside
    last     INTEGER,
    data     BLOB,                        -- out: the sealed bundle
    at       TEXT NOT NULL,               -- when it last moved
    PRIMARY KEY (peer, way)
);
CREATE TABLE part_pieces (
    peer     TEXT NOT NULL,
    start    INTEGER NOT NULL,            -- where the piece's bytes begin in the bundle
    data     BLOB NOT NULL,
    PRIMARY KEY (peer, start)
);


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
    at             TEXT NOT NULL,       -- when the registrant wrote the case's repeat.seen
    via            TEXT NOT NULL,       -- the subject that brought it: D-<case> or DR-<node>-<n>
    PRIMARY KEY (case_id, idx, kind, version, via)
);
CREATE INDEX person_digests_digest ON person_digests(digest);
CREATE INDEX person_digests_via ON person_digests(via);
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
-- (issue 19, migration 0020) A search's matches are joined to their cases by the
-- document's rowid: without this each match scanned search_state, and a common word at
-- a city took a minute (51,550 cases).
CREATE UNIQUE INDEX search_state_doc ON search_state(doc);

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

-- Draft keys (node/drafts.py): a registration or warning sent with a key is written
-- once; the same key sent again answers the first result and writes nothing. Written in
-- the same transaction as the event. This node's own, not derived from events:
-- `siji rebuild` leaves it, and it never travels.
CREATE TABLE draft_keys (
    key        TEXT PRIMARY KEY,  -- made by the phone (or the form), one per draft
    username   TEXT NOT NULL,     -- who sent it first
    kind       TEXT NOT NULL,     -- case | warning
    digest     TEXT NOT NULL,     -- SHA-256 of the sent fields' sorted JSON
    result_id  TEXT NOT NULL,     -- the case or warning it made
    at         TEXT NOT NULL
) WITHOUT ROWID;


-- The trust table's mark (counters 'trust_version', node/trust.py kept): a new random value
-- at every change to the nodes or to the joins (migration 0025).
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

PRAGMA user_version = 25;
