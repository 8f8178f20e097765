"""The uploads table: uploads in flight through presigned URLs, one row each, tenant-scoped.

An upload moves ``pending`` (its URL handed out) -> ``completing`` (one completion request has
claimed it and is verifying and moving the bytes) -> ``completed`` (the artifact is stored; its
reference is on the row) or ``failed`` (digest or size mismatch, unreadable array: the message
says which). A pending upload whose URL has expired becomes ``expired`` when the gateway's
periodic sweep deletes what was put at its staging key. A completion that died half way (a
gateway killed mid-conversion) leaves ``completing``; after :data:`STALE_COMPLETION_S` another
completion may claim it again.

Every read and claim is conditioned on the tenant: another tenant's upload id is "not found".

Example
-------
>>> import tempfile, uuid
>>> from gateway.jobs.database import Database
>>> tmp = tempfile.TemporaryDirectory()
>>> db = Database(f"sqlite:///{tmp.name}/gw.db"); db.create_all()
>>> uploads = UploadStore(db)
>>> row = uploads.create("lab-a", key="tenants/lab-a/x.json", staging_key="_staging/uploads/1", kind="object",
...                      media_type="application/json", declared_sha256=None, declared_size=None, expires_in_s=60)
>>> uploads.claim("lab-a", row.id).state
'completing'
>>> uploads.get("lab-b", row.id)
Traceback (most recent call last):
...
gateway.artifacts.uploads.UploadNotFound: upload ... does not exist
>>> db.close(); tmp.cleanup()
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from sqlalchemy import insert, or_, select, update

from gateway.jobs.database import Database
from gateway.jobs.schema import uploads
from services.common.errors import FailedPrecondition, NotFound

STALE_COMPLETION_S = 600.0
"""A completion that has not finished after this long is taken for dead and may be claimed again."""


class UploadNotFound(NotFound):
    def __init__(self, upload_id: object) -> None:
        super().__init__(f"upload {upload_id} does not exist", reason="UPLOAD_NOT_FOUND",
                         metadata={"upload_id": upload_id})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class UploadRecord:
    """One row of the uploads table."""

    id: UUID
    tenant: str
    key: str
    staging_key: str
    kind: str
    media_type: str
    declared_sha256: str | None
    declared_size: int | None
    state: str
    artifact: dict[str, Any] | None
    error_message: str | None
    created_at: datetime
    expires_at: datetime
    updated_at: datetime


def _record(row: Any) -> UploadRecord:
    return UploadRecord(**{c.name: row[c.name] for c in uploads.columns})


def _as_uuid(value: UUID | str) -> UUID | None:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None


class UploadStore:
    """Rows of the ``uploads`` table in ``database`` (created by ``database.create_all()``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, tenant: str, *, key: str, staging_key: str, kind: str, media_type: str,
               declared_sha256: str | None, declared_size: int | None, expires_in_s: float,
               upload_id: UUID | None = None, now: datetime | None = None) -> UploadRecord:
        now = now or utcnow()
        values = dict(id=upload_id or uuid.uuid4(), tenant=tenant, key=key, staging_key=staging_key, kind=kind,
                      media_type=media_type, declared_sha256=declared_sha256, declared_size=declared_size,
                      state="pending", created_at=now, expires_at=now + timedelta(seconds=expires_in_s),
                      updated_at=now)
        with self.database.write() as conn:
            conn.execute(insert(uploads).values(**values))
        return self.get(tenant, values["id"])

    def get(self, tenant: str, upload_id: UUID | str) -> UploadRecord:
        uid = _as_uuid(upload_id)
        if uid is None:
            raise UploadNotFound(upload_id)
        with self.database.read() as conn:
            row = conn.execute(select(uploads).where(uploads.c.id == uid, uploads.c.tenant == tenant)).mappings().first()
        if row is None:
            raise UploadNotFound(upload_id)
        return _record(row)

    def claim(self, tenant: str, upload_id: UUID | str, *, now: datetime | None = None) -> UploadRecord:
        """Move a pending upload to ``completing`` for this caller; a completed one is returned as is.

        Raises
        ------
        FailedPrecondition
            Another completion is running, or the upload failed or expired.
        """
        now = now or utcnow()
        current = self.get(tenant, upload_id)
        if current.state == "completed":
            return current
        stale = now - timedelta(seconds=STALE_COMPLETION_S)
        with self.database.write() as conn:
            done = conn.execute(
                update(uploads).where(uploads.c.id == current.id, uploads.c.tenant == tenant,
                                      or_(uploads.c.state == "pending",
                                          (uploads.c.state == "completing") & (uploads.c.updated_at < stale)))
                .values(state="completing", updated_at=now)).rowcount
        record = self.get(tenant, current.id)
        if done or record.state == "completed":
            return record
        if record.state == "completing":
            raise FailedPrecondition(f"upload {record.id} is being completed by another request",
                                     reason="UPLOAD_COMPLETING")
        raise FailedPrecondition(f"upload {record.id} is {record.state}"
                                 + (f": {record.error_message}" if record.error_message else "")
                                 + "; start a new upload", reason=f"UPLOAD_{record.state.upper()}")

    def finish(self, tenant: str, upload_id: UUID, *, artifact: dict[str, Any] | None = None,
               error: str | None = None, now: datetime | None = None) -> UploadRecord:
        """Record how a claimed completion ended: ``completed`` with the artifact, or ``failed``."""
        now = now or utcnow()
        values: dict[str, Any] = {"updated_at": now}
        if error is None:
            values.update(state="completed", artifact=artifact, error_message=None)
        else:
            values.update(state="failed", error_message=error[:2000])
        with self.database.write() as conn:
            conn.execute(update(uploads).where(uploads.c.id == upload_id, uploads.c.tenant == tenant,
                                               uploads.c.state == "completing").values(**values))
        return self.get(tenant, upload_id)

    def release(self, tenant: str, upload_id: UUID, *, now: datetime | None = None) -> None:
        """Give a claimed upload back as pending (its bytes were not there yet: the client may PUT and retry)."""
        with self.database.write() as conn:
            conn.execute(update(uploads).where(uploads.c.id == upload_id, uploads.c.tenant == tenant,
                                               uploads.c.state == "completing")
                         .values(state="pending", updated_at=now or utcnow()))

    def expired(self, *, now: datetime | None = None, limit: int = 100) -> list[UploadRecord]:
        """Pending uploads whose URL has expired (for the sweep, across tenants)."""
        now = now or utcnow()
        with self.database.read() as conn:
            rows = conn.execute(select(uploads).where(uploads.c.state == "pending", uploads.c.expires_at < now)
                                .order_by(uploads.c.expires_at).limit(limit)).mappings().all()
        return [_record(r) for r in rows]

    def mark_expired(self, upload_id: UUID, *, now: datetime | None = None) -> bool:
        with self.database.write() as conn:
            return bool(conn.execute(update(uploads).where(uploads.c.id == upload_id, uploads.c.state == "pending")
                                     .values(state="expired", updated_at=now or utcnow())).rowcount)

    def count(self) -> int:
        """Rows in the table (tests check that a refused request wrote none)."""
        from sqlalchemy import func
        with self.database.read() as conn:
            return int(conn.execute(select(func.count()).select_from(uploads)).scalar_one())
