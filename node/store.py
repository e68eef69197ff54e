"""The node's SQLite file: opening, creating, upgrading, transactions.

One place sets the connection's pragmas (WAL, foreign keys, busy timeout).
``schema.sql`` makes every new database; ``migrations/NNNN_*.sql`` upgrade
older ones, each in one transaction with its ``PRAGMA user_version`` bump.
Writers use ``BEGIN IMMEDIATE`` so two writers never deadlock on upgrade
from a read lock (as Datasette does).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from importlib import resources
from pathlib import Path

from sqlite_utils import Database

from node.errors import N_, StoreBusy, StoreError

log = logging.getLogger(__name__)

APPLICATION_ID = 0x53494A49  # 'SIJI'
BUSY_TIMEOUT_MS = 5000
# WAL pages after which a committing writer copies the WAL into the database file itself:
# SQLite's default, or a safety net while a background thread does it (set by
# checkpoint_in_background for the connections opened after it)
AUTOCHECKPOINT, BACKGROUND_AUTOCHECKPOINT = 1000, 16000
_autocheckpoint = AUTOCHECKPOINT
WAL_KEEP_BYTES = 16 * 1024 * 1024

# Python's sqlite3 binds int, float and str directly, but asks its adapter registry about
# every None and bytes parameter, and on a miss looks up ``__adapt__`` on its protocol
# class: a failed attribute lookup that builds and discards an AttributeError each time.
# A received event binds a dozen of them (NULL columns of a case, signatures, digests),
# and that lookup cost 5% of applying a bundle. Registered, each is one dict lookup and a
# call to a C function that returns its argument as it is (bytes(b) is b; {}.get(None)
# is None); what is stored is unchanged.
sqlite3.register_adapter(type(None), {}.get)
sqlite3.register_adapter(bytes, bytes)


def schema_sql() -> str:
    """The whole current schema: the repository's top-level schema.sql, which the build
    copies into the package (setup.py); run from a source tree, the file itself."""
    packaged = resources.files("node") / "schema.sql"
    if not packaged.is_file():  # a source checkout on sys.path, not an installed package
        packaged = Path(__file__).resolve().parent.parent / "schema.sql"
    return packaged.read_text(encoding="utf-8")


def schema_version() -> int:
    return int(re.search(r"PRAGMA user_version = (\d+);", schema_sql()).group(1))


def base_schema_sql() -> str:
    """Schema version 1 as first released: what the migrations start from."""
    return (resources.files("node") / "migrations" / "0001_initial.sql").read_text("utf-8")


def migrations() -> list[tuple[int, str, str]]:
    """(version it upgrades to, file name, sql) for versions 2 and up, in order."""
    found = []
    for item in (resources.files("node") / "migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_\w+\.sql", item.name)
        if m and int(m.group(1)) > 1:
            found.append((int(m.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def _connect(path: Path) -> Database:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db = Database(conn)
    db.writer_lock = _writer_lock(str(Path(path).resolve()))
    return db


# Writers in one process queue for a database file on a lock of their own, each waiting
# its turn asleep, instead of polling SQLite's busy handler against each other: under load
# (100 children syncing at once) a polling writer could lose every round for the whole
# busy timeout and fail its request. The busy timeout is then what a writer waits for
# another process (the CLI, a backup); a writer waits at most WRITER_WAIT_SECONDS here.
WRITER_WAIT_SECONDS = 60
_writer_locks: dict[str, threading.RLock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(key: str) -> threading.RLock:
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.RLock())


def _busy() -> StoreBusy:
    return StoreBusy(N_("the database is busy with other work; try again in a moment"))


def is_busy(e: BaseException) -> bool:
    """Whether ``e`` says another writer held the database too long (StoreBusy, or SQLite's
    own "database is locked" past the busy timeout)."""
    return isinstance(e, StoreBusy) or isinstance(e, sqlite3.OperationalError) and (
        "locked" in str(e) or "busy" in str(e))


def _configure(db: Database) -> None:
    db.conn.execute("PRAGMA journal_mode = WAL")
    db.conn.execute("PRAGMA foreign_keys = ON")
    db.conn.execute("PRAGMA synchronous = NORMAL")
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {_autocheckpoint}")
    # after a burst, the WAL file shrinks back to this once it is checkpointed and reused
    db.conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")


def checkpoint_in_background(path: Path, every: float = 1.0) -> Callable[[], None]:
    """Copy the WAL into the database file from a thread of its own, every ``every`` s;
    returns a function that stops it.

    A server calls this once. Otherwise the writer whose commit takes the WAL past
    1,000 pages does the copy and its fsyncs before its commit returns: about 40 ms on
    this machine, a few times a minute while a bundle stream is applied. Connections
    opened afterwards in this process leave it to the thread, and checkpoint themselves
    only if it falls far behind (BACKGROUND_AUTOCHECKPOINT). A PASSIVE checkpoint never blocks a
    reader or a writer.
    """
    global _autocheckpoint
    _autocheckpoint = BACKGROUND_AUTOCHECKPOINT
    stopped = threading.Event()

    def run() -> None:
        seen = None
        with closing(sqlite3.connect(path, isolation_level=None, check_same_thread=False)) as conn:
            while not stopped.wait(every):
                try:  # only when another connection committed since the last look
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        seen = version
                except Exception as e:  # noqa: BLE001 - for now; the writers' net still holds
                    log.warning("background checkpoint failed: %s", e)
    threading.Thread(target=run, name="siji-checkpoint", daemon=True).start()

    def stop() -> None:
        global _autocheckpoint
        stopped.set()
        _autocheckpoint = AUTOCHECKPOINT
    return stop


def create(path: Path) -> Database:
    """Make a new database from schema.sql; refuses to touch an existing file."""
    path = Path(path)
    if path.exists():
        raise StoreError(N_("database %(path)s already exists"), path=path)
    db = _connect(path)
    path.chmod(0o600)  # it holds petitioners' personal data; -wal/-shm inherit the mode
    _configure(db)
    with write(db):
        for statement in split_sql(schema_sql()):
            db.conn.execute(statement)
    return db


def open_db(path: Path) -> Database:
    """Open an existing node database, upgrading it if it is older."""
    path = Path(path)
    if not path.exists():
        raise StoreError(N_("no database at %(path)s: run `siji init` first"), path=path)
    db = _connect(path)
    try:
        app_id = db.conn.execute("PRAGMA application_id").fetchone()[0]
        version = db.conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError:
        db.conn.close()
        raise StoreError(N_("%(path)s is not a database (corrupt or not SQLite)"),
                         path=path) from None
    if app_id != APPLICATION_ID:
        db.conn.close()
        raise StoreError(N_("%(path)s is not a siji database"), path=path)
    current = schema_version()
    if version > current:
        db.conn.close()
        raise StoreError(N_("database %(path)s is schema version %(found)s, newer than this "
                            "siji (%(known)s): upgrade siji"), path=path, found=version,
                         known=current)
    try:
        _configure(db)
        if version < current:
            try:
                migrate(db)
            except sqlite3.DatabaseError as e:  # each step is one transaction: undone whole
                db.conn.close()
                with closing(sqlite3.connect(path)) as conn:
                    reached = conn.execute("PRAGMA user_version").fetchone()[0]
                raise StoreError(N_("upgrading %(path)s stopped at schema version %(version)s "
                                    "(nothing half done): %(problem)s"),
                                 path=path, version=reached, problem=str(e)) from None
        # A cheap look into the log (O(1), unlike count(*), since this runs per request);
        # `PRAGMA quick_check` is the thorough one, for an admin.
        db.conn.execute("SELECT max(lsn) FROM events").fetchone()
    except sqlite3.DatabaseError as e:
        db.conn.close()
        raise StoreError(N_("database %(path)s is damaged: %(problem)s"),
                         path=path, problem=str(e)) from None
    return db


def migrate(db: Database) -> list[str]:
    """Apply every migration newer than the database, each in one transaction."""
    applied = []
    for version, name, sql in migrations():
        with write(db):
            found = db.conn.execute("PRAGMA user_version").fetchone()[0]
            if version <= found:
                continue
            if version != found + 1:
                raise StoreError(N_("no migration from schema version %(found)s"), found=found)
            for statement in split_sql(sql):
                db.conn.execute(statement)
            db.conn.execute(f"PRAGMA user_version = {version}")
        applied.append(name)
    return applied


def split_sql(sql: str) -> list[str]:
    """Split a script into statements (executescript would commit our transaction)."""
    statements, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        candidate = "\n".join(current).strip()
        if sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


@contextmanager
def write(db: Database) -> Iterator[Database]:
    """A write transaction (BEGIN IMMEDIATE), or a savepoint inside one."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    # (a Database not opened here has no lock shared with others: it queues with none)
    lock = getattr(db, "writer_lock", None) or threading.RLock()
    if not lock.acquire(timeout=WRITER_WAIT_SECONDS):
        raise _busy()
    try:
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise _busy() from e
            raise
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        else:
            db.conn.execute("COMMIT")
    finally:
        lock.release()


def path_of(db: Database) -> str:
    """The file of an open database (for messages)."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else "?"


def damaged(db: Database, what: str, problem: str) -> StoreError:
    """The one-line error for data that SQLite keeps intact but that is not what siji
    wrote (a row edited by hand, a disk that flipped bits inside a value)."""
    return StoreError(N_("database %(path)s holds damaged data (%(what)s: %(problem)s): run "
                         "siji check to list what is damaged, then restore the database from "
                         "the latest backup (docs/deploy.md)"),
                      path=path_of(db), what=what, problem=problem)


def chunks(items: list, size: int = 500):
    """(chunk, its SQL placeholders "?, ?, ...") for every ``size`` items: a query with
    ``IN (...)`` over many values, a few hundred at a time (SQLite caps a statement's
    variables)."""
    for i in range(0, len(items), size):
        chunk = items[i:i + size]
        yield chunk, ", ".join("?" * len(chunk))


def raise_counter(db: Database, name: str, at_least: int) -> None:
    """Make a named counter at least ``at_least`` (its next value comes after it)."""
    db.conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO "
                    "UPDATE SET value = max(value, excluded.value)", (name, at_least))


def set_counter(db: Database, name: str, value: int) -> None:
    """Set a named counter (a mark, such as how far an index has caught up)."""
    db.conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO "
                    "UPDATE SET value = excluded.value", (name, value))


def next_value(db: Database, name: str) -> int:
    """Increment and return a named counter; the caller owns the transaction."""
    row = db.conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value", (name,)
    ).fetchone()
    return row[0]


def add_to_counter(db: Database, name: str, n: int) -> int:
    """Add ``n`` to a named counter and return it; the caller owns the transaction."""
    row = db.conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value RETURNING value",
        (name, n)).fetchone()
    return row[0]


def counter(db: Database, name: str) -> int:
    """A named counter's value (0 if it was never counted)."""
    row = db.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0
