"""检索: find a case by petitioner name, ID number, phone, 查询码, case number or any
words of its summary, request, facts, reply and notes (SQLite FTS5, node/bigrams.py).

The index is this node's own and kept in step lazily: each search first reindexes the
cases folded since they were indexed (``refresh``: their event count or last change
differs), so no write path pays for it and ``siji rebuild`` needs nothing more. Each case
is indexed three ways: its text (``text``), its petitioners' names, ID numbers and phones
(``ident``), and its text and names masked as a masked viewer reads them (``masked``). A
search looks only at what its reader may see: the caller says, per case, whether the
reader sees it in full, masked, or not at all; a masked reader's words are matched
against the masked column only, so an ID number never finds a case whose identity the
reader may not see. Every search is recorded in ``audit_log`` (the query with any ID
number or phone in it masked, and how many cases it found).
"""

from __future__ import annotations

from collections.abc import Callable

from node import bigrams, cases, disclosure, log, screening, store
from node.errors import N_, ValidationError

# the free-text fields of a case's events that are searched besides the case's own text
EVENT_TEXT = ("text", "note", "reason", "reply", "message", "instruction", "feedback",
              "report", "answer", "outcome", "measures")
MAX_QUERY = 100
_MARKS = ("search_lsn", "search_cases", "search_rebuilds")  # how far the index caught up


def _document(node, case: dict) -> tuple[str, str, str]:
    people = node.db.conn.execute("SELECT name, id_number, phone FROM petitioners WHERE "
                                  "case_id = ? ORDER BY idx", (case["id"],)).fetchall()
    names = [p[0] for p in people if p[0]]
    texts = [case["id"], case["query_code"], case["summary"], case["request"], case["facts"],
             case["reply"], case.get("received_by"), case.get("lead_leader")]
    for ev in log.subject_events(node.db, case["id"]):
        body = ev.revealed
        texts += [body[k] for k in EVENT_TEXT if isinstance(body.get(k), str)]
    texts = [disclosure.shown(t) for t in texts if isinstance(t, str)]
    ident = [v for p in people for v in p if v]
    masked = [screening.mask(t, names) for t in texts] + [screening.mask(n, names)
                                                         for n in names]
    return bigrams.indexed(*texts), bigrams.indexed(*ident), bigrams.indexed(*masked)


def refresh(node, limit: int | None = None) -> int:
    """Reindex the cases changed since they were indexed (at most ``limit`` of them);
    returns how many. The caller owns the transaction.

    A case changes only with an event and goes only with its events, so while the log's
    newest event, the number of cases and the number of rebuilds are what they were when
    the index last caught up (counters ``search_lsn``, ``search_cases``,
    ``search_rebuilds``), and the index holds a document for each case, nothing is looked
    at: finding the changed cases reads every case (0.15 s a search at a city of 250,000).
    A migration that empties the index is caught up after by the last."""
    mark = (node.db.conn.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0],
            node.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0],
            store.counter(node.db, log.REBUILDS))
    if mark == tuple(store.counter(node.db, name) for name in _MARKS) and mark[1] == \
            node.db.conn.execute("SELECT count(*) FROM search_state").fetchone()[0]:
        return 0
    done = _catch_up(node, limit)
    if limit is None or done < limit:  # caught up
        for name, value in zip(_MARKS, mark, strict=True):
            store.set_counter(node.db, name, value)
    return done


def _catch_up(node, limit: int | None) -> int:
    rows = node.db.conn.execute(
        "SELECT c.id FROM cases c LEFT JOIN search_state s ON s.case_id = c.id WHERE "
        "s.case_id IS NULL OR s.event_count != c.event_count OR s.updated_at != c.updated_at"
        + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
    gone = node.db.conn.execute("SELECT case_id, doc FROM search_state WHERE case_id NOT IN "
                                "(SELECT id FROM cases)").fetchall()
    for case_id, doc in gone:
        node.db.conn.execute("DELETE FROM search_index WHERE rowid = ?", (doc,))
        node.db.conn.execute("DELETE FROM search_state WHERE case_id = ?", (case_id,))
    for (case_id,) in rows:
        case = cases.get(node, case_id)
        text, ident, masked = _document(node, case)
        old = node.db.conn.execute("SELECT doc FROM search_state WHERE case_id = ?",
                                   (case_id,)).fetchone()
        if old:
            node.db.conn.execute("DELETE FROM search_index WHERE rowid = ?", (old[0],))
        doc = node.db.conn.execute("INSERT INTO search_index (text, ident, masked) VALUES "
                                   "(?, ?, ?)", (text, ident, masked)).lastrowid
        node.db.conn.execute("INSERT OR REPLACE INTO search_state (case_id, doc, event_count, "
                             "updated_at) VALUES (?, ?, ?, ?)",
                             (case_id, doc, case["event_count"], case["updated_at"]))
    return len(rows) + len(gone)


def _hits(node, columns: str, query: str) -> list[tuple[str, float]]:
    return node.db.conn.execute(
        "SELECT s.case_id, bm25(search_index) FROM search_index JOIN search_state s ON "
        "s.doc = search_index.rowid WHERE search_index MATCH ? ORDER BY bm25(search_index) "
        "LIMIT 500", (f"{{{columns}}} : ({query})",)).fetchall()


def search(node, text: str, sight: Callable[[dict], str | None], username: str,
           limit: int = 50) -> list[dict]:
    """Cases matching ``text`` that the reader may see, best first. ``sight(case)`` says
    how the reader sees a case: "full", "masked" or None (not at all). Records the search
    in audit_log (the caller owns the transaction). The pages do the same in three short
    transactions (web/search.py)."""
    query = parse(text)
    refresh(node)
    out = find(node, query, sight, limit)
    record(node, username, text or "", len(out))
    return out


def parse(text: str) -> str:
    """The FTS5 query of what a user typed; a query too long or with nothing to look for
    is refused."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY:
        raise ValidationError(N_("%(field)s: at most %(n)s characters"), field="q", n=MAX_QUERY)
    query = bigrams.query(text)
    if query is None:
        raise ValidationError(N_("%(field)s: type a name, a number or words to look for"),
                              field="q")
    return query


def find(node, query: str, sight: Callable[[dict], str | None], limit: int = 50) -> list[dict]:
    """The matches of ``query`` (from ``parse``) the reader may see, best first, as the
    index stands (reads only)."""
    full = dict(_hits(node, "text ident", query))
    masked = dict(_hits(node, "masked", query))
    out = []
    for case_id in sorted(set(full) | set(masked), key=lambda c: min(
            full.get(c, 0.0), masked.get(c, 0.0))):
        case = cases.get(node, case_id)
        how = sight(case)
        if (how == "full" and case_id in full) or (how == "masked" and case_id in masked):
            out.append({**case, "sight": how})
        if len(out) >= limit:
            break
    return out


def record(node, username: str, text: str, found: int) -> None:
    """Record a search in audit_log, any ID number or phone in it masked (the caller owns
    the transaction)."""
    node.db.conn.execute("INSERT INTO audit_log (at, actor, action, target) VALUES "
                         "(?, ?, 'search', ?)",
                         (node.now(), username, f"{screening.mask(text.strip())} -> {found}"))
