"""A Zarr v3 store (``zarr.abc.store.Store``) over the ``minio`` SDK, and the S3 error mapping.

Zarr talks to storage through an async key/value interface; this adapter answers it with the
same ``minio`` client the rest of NeuroMesh uses, so one client library reaches SeaweedFS in the
local stack and MinIO in deployments. The SDK is synchronous: every call runs in a thread pool
of this module (see ``_io_pool``), which lets zarr keep many chunk requests in flight at once.

The store is rooted at a key prefix, usually one array: zarr then asks for ``zarr.json`` and
``c/0/0/0`` and the adapter reads ``<prefix>/zarr.json`` and ``<prefix>/c/0/0/0``.

Example
-------
>>> import numpy as np, zarr
>>> from minio import Minio
>>> client = Minio("127.0.0.1:8333", "neuromesh", "neuromesh-secret", secure=False)  # doctest: +SKIP
>>> store = MinioZarrStore(client, "neuromesh", "scratch/volume")                    # doctest: +SKIP
>>> z = zarr.create_array(store, shape=(64, 64), chunks=(32, 32), dtype="uint8")     # doctest: +SKIP
>>> z[:] = 7; int(z[5, 5])                                                           # doctest: +SKIP
7
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest

from .errors import DataLoss, NeuroMeshError, NotFound, Unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from zarr.abc.store import ByteRequest
    from zarr.core.buffer import Buffer, BufferPrototype

T = TypeVar("T")

#: Threads for blocking SDK calls. They wait on the network, not the CPU, so there are more of
#: them than cores; zarr's own concurrency limit (``async.concurrency``, 10) bounds how many are
#: busy. A pool of our own keeps these waits from filling the default executor that zarr also
#: uses for codec work. Keep the HTTP connection pool of the client at least this large
#: (``store.make_minio_client`` does), or urllib3 drops and reopens connections.
IO_THREADS = 16
_io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="neuromesh-s3")

#: zarr metadata documents; everything else under an array prefix is a chunk
_METADATA_NAMES = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


@contextlib.contextmanager
def translate_s3_errors(bucket: str, key: str = "") -> Iterator[None]:
    """Turn ``minio``/``urllib3`` exceptions raised inside the block into NeuroMesh errors.

    ``NoSuchKey`` becomes ``NotFound(reason="ARTIFACT_NOT_FOUND")`` and ``NoSuchBucket``
    ``NotFound(reason="BUCKET_NOT_FOUND")``; network failures and 5xx answers (after the
    client's bounded retries) become ``Unavailable``, the one kind worth retrying.
    """
    where = s3_uri(bucket, key) if key else f"bucket {bucket!r}"
    meta = {"bucket": bucket, "key": key}
    try:
        yield
    except NeuroMeshError:
        raise
    except S3Error as exc:
        if exc.code == "NoSuchBucket":
            raise NotFound(f"bucket {bucket!r} does not exist", reason="BUCKET_NOT_FOUND",
                           metadata={"bucket": bucket}) from exc
        if exc.code in ("NoSuchKey", "NoSuchUpload"):
            raise NotFound(f"artifact {where} does not exist", reason="ARTIFACT_NOT_FOUND",
                           metadata=meta) from exc
        if exc.code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
            raise Unavailable(f"object store busy for {where}: {exc.code}", metadata=meta) from exc
        raise  # AccessDenied, InvalidRequest...: a configuration or programming error, not data state
    except (ServerError, InvalidResponseError) as exc:
        raise Unavailable(f"object store answered an error for {where}: {exc}", metadata=meta) from exc
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        # MaxRetryError (refused, unreachable, timed out after the retries), ProtocolError
        # (connection dropped mid-body: urllib3 enforces Content-Length, so a short read lands here)
        cause = getattr(exc, "reason", None) or exc  # MaxRetryError wraps the last failure
        raise Unavailable(f"object store unreachable for {where}: {cause}", metadata=meta) from exc


def _is_missing(exc: S3Error) -> bool:
    return exc.code in ("NoSuchKey", "NoSuchObject")


class MinioZarrStore(Store):
    """Zarr v3 store for the objects under ``prefix`` in ``bucket``, through a ``minio`` client.

    Parameters
    ----------
    client : minio.Minio
        Configured client; its urllib3 pool decides timeouts and retries.
    bucket : str
        Bucket holding the objects; it must exist.
    prefix : str
        Key prefix that is the root of this store (no leading or trailing ``/``); ``""`` for the
        bucket root.
    read_only : bool
        Refuse writes and deletes.
    require_chunks : bool
        Treat a missing chunk as data loss instead of a chunk of fill values. Zarr reads an
        absent chunk as "never written", which hides a lost object behind zeros; arrays that
        NeuroMesh finalized have every chunk stored, so readers set this.
    """

    supports_writes = True
    supports_deletes = True
    supports_listing = True

    def __init__(self, client: Minio, bucket: str, prefix: str = "", *, read_only: bool = False,
                 require_chunks: bool = False) -> None:
        super().__init__(read_only=read_only)
        if prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix must not start or end with '/': {prefix!r}")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.require_chunks = require_chunks

    # --- identity
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MinioZarrStore) and other.client is self.client
                and other.bucket == self.bucket and other.prefix == self.prefix
                and other.read_only == self.read_only)

    def __hash__(self) -> int:
        return hash((id(self.client), self.bucket, self.prefix, self.read_only))

    def __repr__(self) -> str:
        return f"MinioZarrStore({s3_uri(self.bucket, self.prefix)!r}, read_only={self.read_only})"

    def with_read_only(self, read_only: bool = False) -> MinioZarrStore:
        return type(self)(self.client, self.bucket, self.prefix, read_only=read_only,
                          require_chunks=self.require_chunks)

    # --- helpers
    def _object_name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, object_name: str) -> str:
        return object_name[len(self.prefix) + 1:] if self.prefix else object_name

    async def _call(self, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with translate_s3_errors(self.bucket, self._object_name(key)):
                return fn(*args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_io_pool, run)

    # --- reads
    def _get_sync(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        name = self._object_name(key)
        offset, length, headers = 0, 0, None
        if isinstance(byte_range, RangeByteRequest):
            if byte_range.end <= byte_range.start:
                return b""
            offset, length = byte_range.start, byte_range.end - byte_range.start
        elif isinstance(byte_range, OffsetByteRequest):
            offset = byte_range.offset
            if offset == 0:
                byte_range = None
        elif isinstance(byte_range, SuffixByteRequest):
            # the SDK has no suffix form; an explicit Range header is passed through as is
            headers = {"Range": f"bytes=-{byte_range.suffix}"}
        elif byte_range is not None:
            raise TypeError(f"unexpected byte range {byte_range!r}")
        try:
            response = self.client.get_object(self.bucket, name, offset=offset, length=length,
                                              request_headers=headers)
        except S3Error as exc:
            if _is_missing(exc):
                return None
            if exc.code == "InvalidRange":  # offset at or past the end of the object
                return b""
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        data = await self._call(key, self._get_sync, key, byte_range)
        if data is None:
            if self.require_chunks and key.rsplit("/", 1)[-1] not in _METADATA_NAMES:
                raise DataLoss(f"chunk {s3_uri(self.bucket, self._object_name(key))} is missing",
                               metadata={"bucket": self.bucket, "key": self._object_name(key)})
            return None
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]]) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    def _exists_sync(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, self._object_name(key))
        except S3Error as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def exists(self, key: str) -> bool:
        return await self._call(key, self._exists_sync, key)

    async def getsize(self, key: str) -> int:
        def size() -> int:
            try:
                return self.client.stat_object(self.bucket, self._object_name(key)).size or 0
            except S3Error as exc:
                if _is_missing(exc):
                    raise FileNotFoundError(key) from exc
                raise
        return await self._call(key, size)

    # --- writes
    def _put_sync(self, key: str, data: bytes) -> None:
        # part_size = the whole object: one PUT per chunk. The SDK's default splits anything
        # over 5 MiB into a multipart upload (3+ requests), which only costs latency here.
        self.client.put_object(self.bucket, self._object_name(key), io.BytesIO(data), len(data),
                               part_size=max(MIN_PART_SIZE, len(data)))

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()
        await self._call(key, self._put_sync, key, value.to_bytes())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        # check-then-put: S3 conditional writes (If-None-Match) are not exposed by the minio SDK.
        # Zarr uses this only for metadata defaults; artifact keys are guarded by ArtifactStore.
        if not await self.exists(key):
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        self._check_writable()
        await self._call(key, self.client.remove_object, self.bucket, self._object_name(key))

    # --- listing
    def _list_sync(self, prefix: str, recursive: bool) -> list[str]:
        full = self._object_name(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        return [obj.object_name for obj in
                self.client.list_objects(self.bucket, prefix=full, recursive=recursive)
                if obj.object_name is not None]

    async def list(self) -> AsyncIterator[str]:
        for name in await self._call("", self._list_sync, "", True):
            yield self._relative(name)

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for name in await self._call(prefix, self._list_sync, prefix, True):
            yield self._relative(name)

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        directory = f"{prefix}/" if prefix else ""
        for name in await self._call(prefix, self._list_sync, directory, False):
            child = self._relative(name)[len(directory):].rstrip("/")
            if child:
                yield child
