"""Job stores for the gateway tests: an SQLite file and a real PostgreSQL database, each test on a clean one.

PostgreSQL is the server on 127.0.0.1:5432 (``NEUROMESH_TEST_POSTGRES_URL`` names another). A
scratch database is created for the test session and dropped after it, so two runs on one server
never see each other; each test starts with empty tables. If the server cannot be reached the
tests *fail* with the reason: CI has PostgreSQL, and a silently skipped backend tests nothing.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from gateway.jobs.database import Database
from gateway.jobs.schema import metadata
from gateway.jobs.scratch import PostgresUnavailable, scratch_postgres_database
from gateway.jobs.store import JobStore

POSTGRES_URL = os.environ.get("NEUROMESH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a scratch PostgreSQL database with the job store's tables, for this session."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(POSTGRES_URL, prefix="neuromesh_test_gateway"))
        except PostgresUnavailable as exc:
            unreachable = str(exc)
        else:
            unreachable = None
        if unreachable:
            pytest.fail(f"{unreachable}\nThe job store tests need a PostgreSQL server (CI runs one); "
                        "start it or point NEUROMESH_TEST_POSTGRES_URL at one.", pytrace=False)
        db = Database(url)
        db.create_all()
        db.close()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A job store database with empty tables, on each backend."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
        db.create_all()
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        with db.write() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
    yield db
    db.close()


@pytest.fixture
def store(database):
    return JobStore(database)
