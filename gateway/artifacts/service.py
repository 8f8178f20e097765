"""Artifacts over HTTP: uploads through presigned URLs, their completion, metadata, listings, downloads.

Uploads are **one presigned PUT** per artifact (S3 allows 5 GiB in one PUT; the gateway does not
hand out multipart part URLs). The bytes go straight to the object store, to a staging key
outside every tenant's namespace; the gateway never carries them. Completion then

- reads the staged object once, streaming, to compute its SHA-256 (and checks it against the
  digest and size the client announced at creation or at completion, if any);
- for ``kind="object"``: copies it, server side, to the artifact's key with the digest as the
  object's ``x-amz-meta-sha256`` and the declared media type, which is what every service reads
  back (:class:`services.common.store.ArtifactStore`);
- for ``kind="array"``: takes the staged bytes as a NumPy ``.npy`` file (``allow_pickle=False``:
  an object array is refused), and writes it as a Zarr v3 array at the artifact's key, slab by
  slab from a memory-mapped local copy, so memory stays bounded; the array's digest is that of
  its C-order data, as for every array in the store;
- deletes the staged object. A failed completion (digest mismatch, not an array) deletes it
  too, so nothing unverified is ever visible under a tenant's key.

Artifacts are never overwritten: an upload to a key that is taken is refused when it is created,
and again when it completes (a race with another upload).

Example
-------
>>> service = ArtifactService(store, UploadStore(db), load_gateway_settings())          # doctest: +SKIP
>>> ticket = service.create_upload("lab-a", "sessions/s1/counts", kind="array",
...                                media_type="application/x-npy")                      # doctest: +SKIP
>>> httpx.put(ticket.url, content=npy_bytes)                                            # doctest: +SKIP
>>> service.complete_upload("lab-a", ticket.upload.id).ref.shape                        # doctest: +SKIP
[1000, 64]
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
from google.protobuf import json_format
from minio import Minio
from minio.commonconfig import REPLACE, CopySource

from gateway.artifacts.keys import tenant_key, tenant_root, user_key, validate_prefix
from gateway.artifacts.uploads import UploadRecord, UploadStore
from gateway.jobs.spec import ArtifactRef as SpecRef
from gateway.settings import GatewaySettings
from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from services.common.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NeuroMeshError,
                                    ResourceExhausted)
from services.common.store import ARRAY_MEDIA_TYPE, SHA256_METADATA, ArtifactStore
from services.common.zarr_minio import s3_uri, translate_s3_errors

logger = logging.getLogger(__name__)

STAGING_ROOT = "_staging/uploads"
"""Where presigned PUTs land: outside ``tenants/``, so nothing unverified is listed or usable."""
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
NPY_MEDIA_TYPE = "application/x-npy"
SLAB_BYTES = 64 * 2**20
"""An array upload is written to Zarr in slabs of about this size (bounded memory)."""
READ_BYTES = 2**20


@dataclass(frozen=True)
class UploadTicket:
    """A created upload: PUT the bytes to ``url`` (with ``headers``) before ``upload.expires_at``."""

    upload: UploadRecord
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class ObjectListing:
    """One entry of a listing: the tenant-relative key, whether it is an array, stored bytes, last change."""

    key: str
    kind: str
    size_bytes: int
    last_modified: datetime | None


def ref_to_dict(ref: ArtifactRef) -> dict[str, Any]:
    """An ArtifactRef as JSON (proto field names, int64 as numbers)."""
    out = json_format.MessageToDict(ref, preserving_proto_field_name=True)
    if "size_bytes" in out:
        out["size_bytes"] = int(out["size_bytes"])
    if "shape" in out:
        out["shape"] = [int(n) for n in out["shape"]]
    return out


def spec_ref(ref: ArtifactRef) -> SpecRef:
    """The job engine's reference (with its sha256) of a stored artifact."""
    return SpecRef(key=ref.key, sha256=ref.sha256, bucket=ref.bucket or None, etag=ref.etag or None,
                   media_type=ref.media_type or None, shape=tuple(int(n) for n in ref.shape) if ref.shape else None,
                   dtype=ref.dtype or None, size=int(ref.size_bytes) if ref.size_bytes else None)


def proto_ref(ref: SpecRef, default_bucket: str) -> ArtifactRef:
    """The proto ArtifactRef that a service receives for a job engine reference."""
    return ArtifactRef(bucket=ref.bucket or default_bucket, key=ref.key, etag=ref.etag or "", sha256=ref.sha256,
                       media_type=ref.media_type or "", shape=list(ref.shape or ()), dtype=ref.dtype or "",
                       size_bytes=ref.size or 0)


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"invalid cursor {cursor[:40]!r}: pass back the next_cursor of a previous page",
                              field="cursor") from None


class ArtifactService:
    """Uploads, metadata, listings and download URLs of tenants' artifacts in one bucket.

    Parameters
    ----------
    store : ArtifactStore
        The bucket the services share.
    uploads : UploadStore
        The uploads table (same database as the jobs).
    settings : GatewaySettings
        Limits and URL lifetimes; ``s3_public_endpoint`` makes presigned URLs for another host.

    Every method is blocking (S3 and SQL calls): the HTTP layer runs them in worker threads.
    """

    def __init__(self, store: ArtifactStore, uploads: UploadStore, settings: GatewaySettings, *,
                 s3_access_key: str = "", s3_secret_key: str = "", s3_region: str | None = None) -> None:
        self.store = store
        self.uploads = uploads
        self.settings = settings
        self.bucket = store.bucket
        if settings.s3_public_endpoint:
            # The region is given so that signing needs no request to a host this process may
            # not reach (the SDK would otherwise ask the endpoint for the bucket's location).
            self.presigner: Minio = Minio(settings.s3_public_endpoint, access_key=s3_access_key,
                                          secret_key=s3_secret_key, secure=settings.s3_public_secure,
                                          region=s3_region or "us-east-1")
        else:
            self.presigner = store.client

    # ------------------------------------------------------------------ uploads

    def create_upload(self, tenant: str, key: str, *, kind: str = "object", media_type: str | None = None,
                      size_bytes: int | None = None, sha256: str | None = None) -> UploadTicket:
        """Check the key and limits, record the upload, and sign a PUT URL to its staging key."""
        full_key = tenant_key(tenant, key)
        if kind not in ("object", "array"):
            raise InvalidArgument(f"kind must be 'object' or 'array', not {kind!r}", field="kind")
        media_type = media_type or (NPY_MEDIA_TYPE if kind == "array" else "application/octet-stream")
        if not MEDIA_TYPE.match(media_type):
            raise InvalidArgument(f"{media_type[:80]!r} is not a media type (type/subtype)", field="media_type")
        limit = self._limit(kind)
        if size_bytes is not None and size_bytes > limit:
            raise ResourceExhausted(f"an upload of {size_bytes} bytes is larger than the {limit} bytes allowed for "
                                    f"kind {kind!r}", reason="UPLOAD_TOO_LARGE", field="size_bytes")
        if self.store.exists(full_key):
            raise AlreadyExists(f"artifact {key!r} already exists; artifacts are never overwritten",
                                reason="ARTIFACT_EXISTS", field="key")
        upload_id = uuid.uuid4()
        staging_key = f"{STAGING_ROOT}/{upload_id}"
        expires = timedelta(seconds=self.settings.upload_url_expiry_s)
        with translate_s3_errors(self.bucket, staging_key):
            url = self.presigner.presigned_put_object(self.bucket, staging_key, expires=expires)
        record = self.uploads.create(tenant, key=full_key, staging_key=staging_key, kind=kind, media_type=media_type,
                                     declared_sha256=sha256, declared_size=size_bytes,
                                     expires_in_s=expires.total_seconds(), upload_id=upload_id)
        return UploadTicket(record, url, {})

    def _limit(self, kind: str) -> int:
        if kind == "array":
            return min(self.settings.max_array_upload_bytes, self.settings.max_upload_bytes)
        return self.settings.max_upload_bytes

    def complete_upload(self, tenant: str, upload_id: UUID | str, *, sha256: str | None = None) -> UploadRecord:
        """Verify the uploaded bytes and store them as the artifact; return the completed upload.

        Completing a completed upload returns it again (a client retrying after a lost answer).

        Raises
        ------
        FailedPrecondition
            Nothing was PUT yet (the upload stays pending: PUT, then complete again), or the upload
            failed or expired before.
        InvalidArgument
            The bytes do not have the announced sha256 or size, or an array upload is not a ``.npy``
            file of a storable dtype. The upload fails and its bytes are deleted.
        ResourceExhausted
            More bytes than allowed; the upload fails and its bytes are deleted.
        AlreadyExists
            Another upload stored the key first.
        """
        record = self.uploads.claim(tenant, upload_id)
        if record.state == "completed":
            return record
        try:
            head = self._head(record.staging_key)
            if head is None:
                self.uploads.release(tenant, record.id)
                raise FailedPrecondition(f"nothing has been uploaded for upload {record.id} yet: PUT the bytes to "
                                         "its URL, then complete it", reason="UPLOAD_EMPTY")
            artifact = self._store_upload(record, head.size or 0, sha256)
        except FailedPrecondition as exc:
            if exc.reason != "UPLOAD_EMPTY":
                self._fail(record, exc)
            raise
        except NeuroMeshError as exc:
            self._fail(record, exc)
            raise
        # Anything else (a crash) leaves the upload claimed: after the stale delay it may be completed again.
        return self.uploads.finish(tenant, record.id, artifact=ref_to_dict(artifact))

    def _fail(self, record: UploadRecord, exc: NeuroMeshError) -> None:
        # Unavailable means the store could not be reached: the bytes may still be fine, so the
        # upload is left claimed (retried after the stale delay) instead of failed and deleted.
        if exc.http_status == 503:
            return
        self._delete_quietly(record.staging_key)
        self.uploads.finish(record.tenant, record.id, error=exc.message)

    def _store_upload(self, record: UploadRecord, size: int, sha256: str | None) -> ArtifactRef:
        limit = self._limit(record.kind)
        if size > limit:
            raise ResourceExhausted(f"{size} bytes were uploaded; at most {limit} are allowed for kind "
                                    f"{record.kind!r}", reason="UPLOAD_TOO_LARGE")
        if record.declared_size is not None and size != record.declared_size:
            raise InvalidArgument(f"{size} bytes were uploaded, {record.declared_size} were announced",
                                  reason="SIZE_MISMATCH", field="size_bytes")
        expected = {d for d in (sha256, record.declared_sha256) if d}
        if len(expected) > 1:
            raise InvalidArgument("the sha256 given at completion differs from the one announced at creation",
                                  reason="SHA256_MISMATCH", field="sha256")
        if record.kind == "array":
            return self._store_array(record, expected)
        digest = self._sha256_of(record.staging_key)
        self._check_digest(digest, expected)
        shown = user_key(record.tenant, record.key) or record.key
        if self.store.exists(record.key):
            raise AlreadyExists(f"artifact {shown!r} was stored by another upload meanwhile", reason="ARTIFACT_EXISTS")
        with translate_s3_errors(self.bucket, record.key):
            self.store.client.copy_object(self.bucket, record.key, CopySource(self.bucket, record.staging_key),
                                          metadata={"Content-Type": record.media_type, SHA256_METADATA: digest},
                                          metadata_directive=REPLACE)
        self._delete_quietly(record.staging_key)
        ref = self.store.stat(record.key)
        if ref.sha256 != digest:
            raise NeuroMeshError(f"stored {s3_uri(self.bucket, record.key)} reads back without its sha256")
        return ref

    def _store_array(self, record: UploadRecord, expected: set[str]) -> ArtifactRef:
        with tempfile.TemporaryDirectory(prefix="neuromesh-upload-") as tmp:
            path = Path(tmp) / "upload.npy"
            digest = hashlib.sha256()
            with translate_s3_errors(self.bucket, record.staging_key), open(path, "wb") as out:
                response = self.store.client.get_object(self.bucket, record.staging_key)
                try:
                    for block in response.stream(READ_BYTES):
                        digest.update(block)
                        out.write(block)
                finally:
                    response.close()
                    response.release_conn()
            self._check_digest(digest.hexdigest(), expected)
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise InvalidArgument(f"an array upload must be a NumPy .npy file without pickled objects: {exc}",
                                      reason="NOT_AN_NPY_FILE") from None
            if not isinstance(array, np.ndarray):
                raise InvalidArgument("an array upload must be a .npy file (not .npz)", reason="NOT_AN_NPY_FILE")
            shown = user_key(record.tenant, record.key) or record.key
            if self.store.exists(record.key):
                raise AlreadyExists(f"artifact {shown!r} was stored by another upload meanwhile",
                                    reason="ARTIFACT_EXISTS")
            with self.store.create_array(record.key, array.shape, array.dtype) as writer:
                if array.ndim == 0 or array.size == 0:
                    writer[...] = np.asarray(array)
                else:
                    row_bytes = max(1, math.prod(array.shape[1:]) * array.dtype.itemsize)
                    step = max(1, SLAB_BYTES // row_bytes)
                    for start in range(0, array.shape[0], step):
                        writer[start:start + step] = np.ascontiguousarray(array[start:start + step])
                ref = writer.finalize()
            del array
        self._delete_quietly(record.staging_key)
        return ref

    def _check_digest(self, digest: str, expected: set[str]) -> None:
        if expected and digest not in expected:
            raise InvalidArgument(f"the uploaded bytes have sha256 {digest}, not the announced {next(iter(expected))}"
                                  " (corrupted or truncated in transit?)", reason="SHA256_MISMATCH", field="sha256")

    def _sha256_of(self, key: str) -> str:
        digest = hashlib.sha256()
        with translate_s3_errors(self.bucket, key):
            response = self.store.client.get_object(self.bucket, key)
            try:
                for block in response.stream(READ_BYTES):
                    digest.update(block)
            finally:
                response.close()
                response.release_conn()
        return digest.hexdigest()

    def _head(self, key: str):
        with translate_s3_errors(self.bucket, key):
            return self.store._head(key)

    def _delete_quietly(self, key: str) -> None:
        try:
            with translate_s3_errors(self.bucket, key):
                self.store.client.remove_object(self.bucket, key)
        except NeuroMeshError as exc:
            logger.warning("could not delete the staged upload %s: %s", key, exc.message)

    def sweep_expired(self) -> int:
        """Delete what was put for uploads whose URL expired uncompleted; return how many were swept."""
        swept = 0
        for record in self.uploads.expired():
            self._delete_quietly(record.staging_key)
            swept += self.uploads.mark_expired(record.id)
        return swept

    # ------------------------------------------------------------------ reading

    def stat(self, tenant: str, key: str) -> ArtifactRef:
        """The stored reference of the tenant's artifact ``key`` (404 when it has none at that key)."""
        return self.store.stat(tenant_key(tenant, key))

    def resolve_input(self, tenant: str, key: str, sha256: str | None, *, field: str) -> SpecRef:
        """The reference a job step gets for the tenant's artifact ``key``, digest checked.

        Raises
        ------
        NotFound
            The tenant has no artifact at ``key``.
        FailedPrecondition
            The artifact has no sha256 (not stored through the gateway or a service), its array was
            never finalized, or ``sha256`` was given and differs from the stored one.
        """
        try:
            ref = self.store.stat(tenant_key(tenant, key, field=field))
        except NeuroMeshError as exc:
            exc.field = exc.field if exc.field and exc.field != "key" else field
            raise
        if not ref.sha256:
            raise FailedPrecondition(f"artifact {key!r} has no recorded sha256 (it was not uploaded through the "
                                     "gateway); upload it again", reason="ARTIFACT_WITHOUT_DIGEST", field=field)
        if sha256 and sha256 != ref.sha256:
            raise FailedPrecondition(f"artifact {key!r} has sha256 {ref.sha256}, not the {sha256} given",
                                     reason="ARTIFACT_CHANGED", field=field)
        return spec_ref(ref)

    def list(self, tenant: str, prefix: str = "", *, limit: int = 100,
             cursor: str | None = None) -> tuple[list[ObjectListing], str | None]:
        """A page of the tenant's artifacts whose key starts with ``prefix``, sorted by key.

        An array (a Zarr prefix of many objects) is one entry. The listing scans at most
        ``max_listed_objects`` objects under the prefix; beyond that it asks for a narrower prefix.
        """
        validate_prefix(prefix)
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit must be between 1 and 1000, got {limit}", field="limit")
        after = _decode_cursor(cursor) if cursor else ""
        root = tenant_root(tenant)
        objects: dict[str, Any] = {}
        cap = self.settings.max_listed_objects
        with translate_s3_errors(self.bucket, root + prefix):
            for n, obj in enumerate(self.store.client.list_objects(self.bucket, prefix=root + prefix, recursive=True)):
                if n >= cap:
                    raise ResourceExhausted(f"more than {cap} objects under prefix {prefix!r}; list a narrower prefix",
                                            reason="LISTING_TOO_LARGE", field="prefix")
                if not obj.is_dir:
                    objects[obj.object_name] = obj
        arrays = {name[:-len("/zarr.json")] for name in objects if name.endswith("/zarr.json")}
        entries: dict[str, ObjectListing] = {}
        for name, obj in objects.items():
            parts = name.split("/")
            owner = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in arrays), None)
            key = owner or name
            relative = user_key(tenant, key)
            if relative is None:
                continue
            previous = entries.get(relative)
            size = (previous.size_bytes if previous else 0) + int(obj.size or 0)
            modified = max(filter(None, [previous.last_modified if previous else None, obj.last_modified]),
                           default=None)
            entries[relative] = ObjectListing(relative, "array" if owner else "object", size, modified)
        keys = sorted(k for k in entries if k > after)
        page = keys[:limit]
        next_cursor = _encode_cursor(page[-1]) if len(keys) > limit else None
        return [entries[k] for k in page], next_cursor

    def download_url(self, ref: ArtifactRef | SpecRef) -> tuple[str | None, datetime | None]:
        """A presigned GET URL of a single-object artifact and when it expires; (None, None) for an
        array (many objects: read it with zarr, or through a service)."""
        media_type = ref.media_type
        if media_type == ARRAY_MEDIA_TYPE:
            return None, None
        bucket = ref.bucket or self.bucket
        expires = timedelta(seconds=self.settings.download_url_expiry_s)
        with translate_s3_errors(bucket, ref.key):
            url = self.presigner.presigned_get_object(bucket, ref.key, expires=expires)
        return url, datetime.now(timezone.utc) + expires
