"""The tables of the job store, defined once with SQLAlchemy Core for SQLite and PostgreSQL.

Five tables (four of the job engine, and the gateway's uploads, which live in the same database so
that one URL configures a gateway):

``jobs``
    One row per submitted job: tenant, optional idempotency key (unique per tenant), state,
    the specification as JSON and its digest, the error that ended it, times.
``job_steps``
    One row per step, keyed by (job id, step id): state, attempts, the lease of the runner that
    holds it (owner and expiry), the outputs (artifact references with digests), the error code
    and message, progress, the cache key, times.
``job_step_dependencies``
    One row per edge "step uses an output of ``depends_on``", so that "all dependencies have
    succeeded" is one ``NOT EXISTS`` in the claim query rather than JSON parsed per row.
``step_cache``
    Outputs by cache key (:mod:`gateway.jobs.cache`), with the service version that made them.
``uploads``
    Artifact uploads in flight through presigned URLs (:mod:`gateway.artifacts.uploads`): the
    tenant, the key the artifact will have, where the client's bytes land first, the state, and
    once completed the stored artifact's reference with its sha256.

The database holds references only; artifacts stay in the object store. States are stored as
short strings checked by a constraint listing :mod:`gateway.jobs.states`, rather than a native
PostgreSQL enum, so adding a state later is one constraint change instead of an ``ALTER TYPE``.
Times are stored in UTC (:class:`UTCDateTime`). ``Database.create_all`` creates the schema; a
migration tool can take over from this module's ``metadata`` when the schema first changes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Column, DateTime, Float, ForeignKey,
                        ForeignKeyConstraint, Index, Integer, MetaData, String, Table, Text, UniqueConstraint, Uuid)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from gateway.jobs.states import JobState, StepState

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator):
    """An aware ``datetime`` in UTC on the way in and out, whatever the database keeps.

    PostgreSQL has ``timestamptz``; SQLite stores text without a zone, so values are converted to
    naive UTC before they are written (and compared: SQLite compares these strings, which sort
    like the times they spell only when all are in one zone) and given UTC back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the job store keeps aware datetimes only (got a naive one)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def _state_check(column: str, states: type[JobState] | type[StepState]) -> CheckConstraint:
    values = ", ".join(f"'{s.value}'" for s in states)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_known")


jobs = Table(
    "jobs", metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("spec", JSONDocument, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # NULL keys never collide (SQL treats NULLs as distinct), so jobs without a key are unlimited.
    UniqueConstraint("tenant", "idempotency_key"),
    _state_check("state", JobState),
    # Listing a tenant's jobs newest first, with a (created_at, id) cursor.
    Index(None, "tenant", "created_at", "id"),
    Index(None, "state"),
)

job_steps = Table(
    "job_steps", metadata,
    Column("job_id", Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("step_id", String(63), primary_key=True),
    Column("position", Integer, nullable=False, doc="index in the job's topological order; claims follow it"),
    Column("service", String(63), nullable=False),
    Column("method", String(128), nullable=False),
    Column("spec", JSONDocument, nullable=False, doc="the StepSpec as JSON (params and inputs)"),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0, doc="executions started, including retries"),
    Column("lease_owner", String(128), nullable=True, doc="the runner that holds the step while running"),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False,
           doc="set on a running step when its job is cancelled; its runner's next heartbeat sees it"),
    Column("outputs", JSONDocument, nullable=True, doc="output name -> artifact reference with sha256"),
    Column("error_code", String(32), nullable=True, doc="gRPC status code name of the last error"),
    Column("error_message", Text, nullable=True),
    Column("progress", Float, nullable=True),
    Column("progress_message", Text, nullable=True),
    Column("cache_key", String(64), nullable=True),
    Column("reused", Boolean, nullable=False, default=False, doc="outputs taken from the cache, not computed"),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    _state_check("state", StepState),
    CheckConstraint("progress IS NULL OR (progress >= 0 AND progress <= 1)", name="progress_fraction"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    # The claim query looks for pending steps and for running ones whose lease expired.
    Index(None, "state", "lease_expires_at"),
)

job_step_dependencies = Table(
    "job_step_dependencies", metadata,
    Column("job_id", Uuid, primary_key=True),
    Column("step_id", String(63), primary_key=True),
    Column("depends_on", String(63), primary_key=True),
    ForeignKeyConstraint(["job_id", "step_id"], ["job_steps.job_id", "job_steps.step_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["job_id", "depends_on"], ["job_steps.job_id", "job_steps.step_id"], ondelete="CASCADE"),
    Index(None, "job_id", "depends_on"),
)

step_cache = Table(
    "step_cache", metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("service", String(63), nullable=False),
    Column("method", String(128), nullable=False),
    Column("service_version", String(128), nullable=False),
    Column("outputs", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


UPLOAD_STATES = ("pending", "completing", "completed", "failed", "expired")

uploads = Table(
    "uploads", metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("key", String(1024), nullable=False, doc="the artifact's key in the bucket (tenant prefix included)"),
    Column("staging_key", String(1024), nullable=False, doc="where the presigned PUT puts the bytes"),
    Column("kind", String(16), nullable=False, doc="'object' (kept as uploaded) or 'array' (.npy to Zarr v3)"),
    Column("media_type", String(255), nullable=False),
    Column("declared_sha256", String(64), nullable=True, doc="the digest the client announced, checked on completion"),
    Column("declared_size", BigInteger, nullable=True, doc="bytes the client announced; checked on completion"),
    Column("state", String(16), nullable=False),
    Column("artifact", JSONDocument, nullable=True, doc="the stored artifact's reference, once completed"),
    Column("error_message", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, doc="the presigned URL stops working then"),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in UPLOAD_STATES) + ")", name="state_known"),
    CheckConstraint("kind IN ('object', 'array')", name="kind_known"),
    Index(None, "tenant", "created_at"),
    Index(None, "state", "expires_at"),
)
