"""The job store's database: one :class:`Database` built from a URL, SQLite or PostgreSQL.

SQLite (``sqlite:///path/jobs.db``) is the embedded default of the local stack; PostgreSQL
(``postgresql+psycopg://user@host/db``) is for compose and Kubernetes, where several gateway
replicas share one store. The differences that matter to the store are handled here:

- SQLite runs in WAL mode (readers do not block the writer, and the writer does not block
  readers), with foreign keys on (they are off by default in SQLite) and a busy timeout (a
  second process waits for the write lock instead of failing at once).
- SQLite write transactions start with ``BEGIN IMMEDIATE``: they take the write lock before
  their first read. A deferred transaction that reads and then writes can fail at once with
  ``SQLITE_BUSY`` in WAL mode when another process wrote in between (the busy timeout does not
  apply to that upgrade), so every read-then-write of the store would be a race.
- PostgreSQL transactions are READ COMMITTED; claims use ``FOR UPDATE SKIP LOCKED`` (see
  :mod:`gateway.jobs.claims`).

Example
-------
>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> db = Database(f"sqlite:///{tmp.name}/jobs.db")
>>> db.create_all()
>>> with db.write() as conn:
...     conn.exec_driver_sql("PRAGMA journal_mode").scalar()
'wal'
>>> db.close(); tmp.cleanup()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from gateway.jobs.schema import metadata

DEFAULT_URL = "sqlite:///neuromesh-jobs.db"
_SCHEMA_LOCK_ID = 0x6E6D_6A6F_6273  # "nmjobs": the advisory lock that serialises schema creation


class Database:
    """An SQLAlchemy engine for the job store, configured for its backend.

    Parameters
    ----------
    url : str
        ``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or
        ``postgresql+psycopg://user:password@host:5432/name``. In-memory SQLite is refused:
        every pooled connection would see its own empty database.
    busy_timeout_s : float
        SQLite only: how long a writer waits for another process's write lock.
    echo : bool
        Log every SQL statement (debugging).

    Example
    -------
    >>> db = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")   # doctest: +SKIP
    >>> db.dialect                                                           # doctest: +SKIP
    'postgresql'
    """

    def __init__(self, url: str = DEFAULT_URL, *, busy_timeout_s: float = 30.0, echo: bool = False) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database in (None, "", ":memory:") or (parsed.query or {}).get("mode") == "memory":
                raise ValueError("the job store needs an SQLite *file* (sqlite:///path.db); an in-memory "
                                 "database is private to one connection")
            self.engine: Engine = create_engine(
                parsed, echo=echo,
                # The runner calls the store from worker threads; the pool hands a connection to
                # one thread at a time, so SQLite's same-thread check only gets in the way.
                connect_args={"check_same_thread": False, "timeout": busy_timeout_s})
            self._configure_sqlite(busy_timeout_s)
        elif self.dialect == "postgresql":
            self.engine = create_engine(parsed, echo=echo, pool_pre_ping=True)
        else:
            raise ValueError(f"the job store runs on SQLite or PostgreSQL, not {self.dialect!r} ({url})")

    def _configure_sqlite(self, busy_timeout_s: float) -> None:
        @event.listens_for(self.engine, "connect")
        def on_connect(dbapi_connection, _record) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("neuromesh_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def create_all(self) -> None:
        """Create the tables that do not exist yet (safe to call from every process at start)."""
        with self.write() as conn:
            if self.is_postgresql:
                # Replicas starting together would each see a table missing and both create it;
                # a transaction-scoped advisory lock makes them take turns.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_ID})")
            metadata.create_all(conn, checkfirst=True)

    def drop_all(self) -> None:
        """Drop the job store's tables and everything in them."""
        with self.write() as conn:
            metadata.drop_all(conn, checkfirst=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: committed on success, rolled back on an exception."""
        with self.engine.connect() as conn:
            conn.execution_options(neuromesh_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent snapshot; it never blocks a writer)."""
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
