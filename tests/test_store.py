"""The database: schema.sql makes new ones, migrations upgrade old ones to the same shape."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from node import store
from node.errors import StoreBusy, StoreError


def shape(conn) -> dict:
    """Tables, columns, indexes and foreign keys, independent of how they were made."""
    out = {}
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    for t in tables:
        out[t] = {
            "columns": sorted(tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({t})")),
            "indexes": sorted(
                (r[1], r[2], tuple(c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")))
                for r in conn.execute(f"PRAGMA index_list({t})")),
            "foreign_keys": sorted(tuple(r[2:]) for r in conn.execute(
                f"PRAGMA foreign_key_list({t})")),
        }
    out["triggers"] = sorted(r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    out["user_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
    out["application_id"] = conn.execute("PRAGMA application_id").fetchone()[0]
    return out


def old_database(path):
    """A database as version 1 of siji made it, with a row in each table that feeds others."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in store.split_sql(store.base_schema_sql()):
        conn.execute(statement)
    conn.execute("INSERT INTO nodes VALUES ('cun', '东山村', 'village', NULL, x'00', NULL, "
                 "'active', NULL, '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO events (origin, seq, ts, actor, role, type, subject, prev, body, "
                 "sig, digest, received_at) VALUES ('cun', 1, '2026-01-01T00:00:00Z', 'liu', "
                 "'liaison', 'case.note', 'C-cun-2026-0001', '[]', '{}', x'00', x'01', "
                 "'2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO users VALUES ('liu', '刘', 'liaison', 'hash', 0, '2026-01-01')")
    conn.close()


def test_new_database_is_schema_sql_at_its_version(tmp_path):
    db = store.create(tmp_path / "new.db")
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == store.schema_version()
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


# the one source of truth for a new database, at the top of the repository
TOP_SCHEMA = Path(__file__).resolve().parents[1] / "schema.sql"


def from_top_schema(path):
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in store.split_sql(TOP_SCHEMA.read_text("utf-8")):
        conn.execute(statement)
    return conn


def test_oldest_schema_plus_migrations_equals_schema_sql(tmp_path):
    new = from_top_schema(tmp_path / "new.db")
    old_database(tmp_path / "old.db")
    upgraded = store.open_db(tmp_path / "old.db")  # opening upgrades
    assert shape(upgraded.conn) == shape(new)
    assert upgraded.conn.execute("SELECT actor, type FROM events").fetchall() == [
        ("liu", "case.note")]
    assert upgraded.conn.execute("SELECT name FROM nodes").fetchall() == [("东山村",)]
    assert upgraded.conn.execute("SELECT username FROM users").fetchall() == [("liu",)]


def test_links_at_the_old_default_batch_take_the_new_one(tmp_path):
    """Migration 10: a link still at 200 events a bundle goes to outbox.BATCH; one that
    halved its own after a 413 keeps it."""
    from node.sync import outbox
    conn = sqlite3.connect(tmp_path / "links.db", isolation_level=None)
    for statement in store.split_sql(store.base_schema_sql()):  # version 1, then up to 9
        conn.execute(statement)
    for version, _, sql in store.migrations():
        if version <= 9:
            for statement in store.split_sql(sql):
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 9")
    conn.executemany("INSERT INTO links (peer, batch) VALUES (?, ?)",
                     [("zhen", 200), ("pian", 50)])
    conn.close()
    upgraded = store.open_db(tmp_path / "links.db")
    assert dict(upgraded.conn.execute("SELECT peer, batch FROM links")) == {
        "zhen": outbox.BATCH, "pian": 50}


def test_there_is_a_migration_for_every_version():
    versions = [v for v, _, _ in store.migrations()]
    assert versions == list(range(2, store.schema_version() + 1))


def test_a_failing_migration_leaves_the_old_database_intact(tmp_path, monkeypatch):
    old_database(tmp_path / "old.db")
    broken = [(2, "0002_broken.sql", "ALTER TABLE cases ADD COLUMN x TEXT;\nNOT SQL;")]
    monkeypatch.setattr(store, "migrations", lambda: broken)
    with pytest.raises(StoreError, match="stopped at schema version 1"):
        store.open_db(tmp_path / "old.db")
    conn = sqlite3.connect(tmp_path / "old.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "x" not in [r[1] for r in conn.execute("PRAGMA table_info(cases)")]


@pytest.mark.parametrize("content,message", [
    (b"this is not a database at all" * 200, "not a database"),
    (b"", "not a siji database"),
])
def test_corrupt_files_are_refused(tmp_path, content, message):
    path = tmp_path / "siji.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        store.open_db(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a siji database"):
        store.open_db(path)
    assert path.read_bytes() == before


def test_newer_database_is_refused(tmp_path):
    db = store.create(tmp_path / "siji.db")
    db.conn.execute("PRAGMA user_version = 999")
    db.conn.close()
    with pytest.raises(StoreError, match="newer"):
        store.open_db(tmp_path / "siji.db")


def test_create_refuses_an_existing_file(tmp_path):
    store.create(tmp_path / "siji.db").conn.close()
    with pytest.raises(StoreError, match="already exists"):
        store.create(tmp_path / "siji.db")


def test_write_is_all_or_nothing(tmp_path):
    db = store.create(tmp_path / "siji.db")
    with pytest.raises(RuntimeError), store.write(db):
        store.next_value(db, "seq")
        raise RuntimeError("crash mid-transaction")
    assert db.conn.execute("SELECT count(*) FROM counters").fetchone()[0] == 0
    with store.write(db):
        assert store.next_value(db, "seq") == 1
        with store.write(db):  # nested: a savepoint
            assert store.next_value(db, "seq") == 2
    assert db.conn.execute("SELECT value FROM counters").fetchone()[0] == 2


def test_schema_ships_inside_the_package_as_the_top_level_file():
    from importlib import resources
    assert (resources.files("node") / "schema.sql").is_file()
    assert store.schema_sql() == TOP_SCHEMA.read_text("utf-8")  # copied by the build, not kept
    assert "CREATE TABLE events" in store.schema_sql()


def test_a_damaged_database_is_refused_in_one_line(tmp_path):
    path = tmp_path / "siji.db"
    db = store.create(path)
    db.conn.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, past the header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        store.open_db(path)


def test_a_background_thread_checkpoints_for_the_writers(tmp_path):
    """With it, a commit never copies the WAL itself (below the 16,000-page safety net),
    and the pages still reach the database file."""
    path = tmp_path / "siji.db"
    store.create(path).conn.close()
    stop = store.checkpoint_in_background(path, every=0.05)
    try:
        db = store.open_db(path)
        assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 16000
        assert db.conn.execute("PRAGMA journal_size_limit").fetchone()[0] == store.WAL_KEEP_BYTES
        before = path.stat().st_size
        with store.write(db):  # some 2,000 pages, past SQLite's own threshold of 1,000
            db.conn.executemany("INSERT INTO counters (name, value) VALUES (?, ?)",
                                [(f"c{i}" + "x" * 2000, i) for i in range(4000)])
        for _ in range(200):
            if path.stat().st_size > before + 4_000_000:
                break
            time.sleep(0.05)
        assert path.stat().st_size > before + 4_000_000
        db.conn.close()
    finally:
        stop()
    assert store.open_db(path).conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_damaged_content_that_sqlite_keeps_intact_is_named_in_one_line(tmp_path):
    """A row edited by hand passes PRAGMA integrity_check; reading it says which database,
    what is damaged and what to do, and `siji check` lists it."""
    from datetime import UTC, datetime

    from conftest import LIAISON, Clock, NodeFactory, case_fields

    from node import cases, log
    from node.errors import StoreError
    factory = NodeFactory(tmp_path, Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)))
    node = factory("village", "cun")
    try:
        with store.write(node.db):
            cid = cases.register(node, LIAISON, case_fields()).subject
        node.db.conn.execute("UPDATE events SET body = '{broken' WHERE subject = ?", (cid,))
        assert node.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with pytest.raises(StoreError) as info:
            log.subject_events(node.db, cid)
        message = info.value.english()
        assert str(tmp_path / "cun" / "siji.db") in message and "siji check" in message
        problems = log.check(node)
        assert len(problems) == 1 and problems[0].startswith("cun:1:")
    finally:
        factory.close()


def test_writers_in_one_process_wait_their_turn_past_the_busy_timeout(tmp_path, monkeypatch):
    # SQLite's busy handler polls; a writer that kept losing gave up after the busy timeout
    # (an HTTP 500 with 100 children syncing at once). In one process they queue instead.
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 20)
    store.create(tmp_path / "n.db").close()
    first, second = store.open_db(tmp_path / "n.db"), store.open_db(tmp_path / "n.db")
    holding, done = threading.Event(), []

    def hold():
        with store.write(first):
            first.conn.execute("INSERT INTO counters (name, value) VALUES ('a', 1)")
            holding.set()
            time.sleep(0.3)  # fifteen times the busy timeout

    def wait_turn():
        holding.wait()
        with store.write(second):
            second.conn.execute("INSERT INTO counters (name, value) VALUES ('b', 2)")
        done.append(True)

    threads = [threading.Thread(target=hold), threading.Thread(target=wait_turn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done == [True]
    assert first.conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall() == [
        ("a", 1), ("b", 2)]
    first.close()
    second.close()


def test_a_writer_kept_out_by_another_process_is_told_the_store_is_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 20)
    store.create(tmp_path / "n.db").close()
    other = sqlite3.connect(tmp_path / "n.db")  # not through store: as another process
    other.execute("BEGIN IMMEDIATE")
    db = store.open_db(tmp_path / "n.db")
    try:
        with pytest.raises(StoreBusy) as e, store.write(db):
            db.conn.execute("INSERT INTO counters (name, value) VALUES ('a', 1)")
        assert e.value.http_status == 503
        other.execute("ROLLBACK")
        with store.write(db):  # and the lock is free again for the next writer
            db.conn.execute("INSERT INTO counters (name, value) VALUES ('a', 1)")
        assert store.counter(db, "a") == 1
    finally:
        other.close()
        db.close()
