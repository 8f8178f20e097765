"""Throwaway PostgreSQL databases: a fresh, empty database for a test run or a trial, dropped after.

Tests of the job store run against a real PostgreSQL server; each run gets its own database so
that runs (two engineers, two CI jobs on one server) never see each other's jobs, and nothing is
left behind. The server must allow the user to create databases.

Example
-------
>>> with scratch_postgres_database("postgresql+psycopg://postgres@127.0.0.1:5432/test") as url:  # doctest: +SKIP
...     db = Database(url); db.create_all(); ...; db.close()
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server of a scratch database cannot be reached."""


@contextmanager
def scratch_postgres_database(admin_url: str, *, prefix: str = "neuromesh_scratch") -> Iterator[str]:
    """Create an empty database next to ``admin_url``'s, yield its URL, drop it on exit.

    Parameters
    ----------
    admin_url : str
        A ``postgresql+psycopg://`` URL of any database the user may connect to; the new one is
        created on the same server, with the same user.
    prefix : str
        Start of the new database's name (a random suffix follows).

    Raises
    ------
    PostgresUnavailable
        When the server cannot be reached, with the URL (password hidden) and the driver's reason.
    """
    url = make_url(admin_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"a scratch database needs a PostgreSQL URL, got {admin_url!r}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        raise PostgresUnavailable(f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable: "
                                  f"{exc.orig}") from exc
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                # FORCE (PostgreSQL 13+) ends sessions a killed test process may have left open.
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()
