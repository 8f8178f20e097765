"""The artifact store: N-d arrays as Zarr v3, JSON, bytes and files in one S3 bucket.

Services exchange :class:`ArtifactRef` messages, never bulk data; this module writes and reads
what those references point to. It speaks S3 through the ``minio`` SDK, so the same code runs
against SeaweedFS (local stack, tests) and MinIO (deployments).

Rules every artifact follows:

- **Never overwritten.** A put to a key that holds anything (an object, or objects under
  ``key/`` such as an array's chunks) raises :class:`AlreadyExists`. Content-addressed keys use
  ``if_exists="return_existing"``: a re-run that produces the same content gets the stored ref.
- **Digests.** Every ref carries a sha256 of the content: for arrays, of the C-order
  little-endian bytes of the whole array (independent of chunking, so two stores of one array
  agree); for bytes, JSON and files, of the object's bytes, also stored as the S3 user metadata
  ``x-amz-meta-sha256`` and checked on every get.
- **Errors say what and where.** Missing bucket or key → :class:`NotFound` (reasons
  ``BUCKET_NOT_FOUND``/``ARTIFACT_NOT_FOUND``), wrong dtype → :class:`InvalidArgument`, corrupt
  or truncated data → :class:`DataLoss`, unreachable store → :class:`Unavailable` within
  seconds (bounded timeouts and retries), each naming ``s3://bucket/key``.

Example
-------
>>> import numpy as np
>>> from services.common.settings import load_settings
>>> store = ArtifactStore.from_settings(load_settings())               # doctest: +SKIP
>>> store.ensure_bucket()                                              # doctest: +SKIP
>>> ref = store.put_array("demo/rates", np.eye(3, dtype="float32"))    # doctest: +SKIP
>>> ref.media_type, list(ref.shape), ref.dtype                         # doctest: +SKIP
('application/vnd.zarr.v3', [3, 3], 'float32')
>>> store.read_block(ref, (slice(0, 2), slice(1, 3)))                  # doctest: +SKIP
array([[0., 0.],
       [1., 0.]], dtype=float32)
>>> store.put_json("demo/params.json", {"bin_ms": 20}).sha256[:12]     # doctest: +SKIP
'7b69d4302af7'
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import math
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

import numpy as np
import urllib3
import zarr
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.helpers import MAX_MULTIPART_COUNT
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.errors import ArrayNotFoundError

from neuromesh.common.v1.artifact_pb2 import ArtifactRef

from .errors import (AlreadyExists, DataLoss, FailedPrecondition, InvalidArgument, NeuroMeshError,
                     NotFound)
from .zarr_minio import IO_THREADS, MinioZarrStore, s3_uri, translate_s3_errors

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["ARRAY_MEDIA_TYPE", "BYTES_MEDIA_TYPE", "JSON_MEDIA_TYPE", "ArrayWriter", "ArtifactStore",
           "choose_chunks", "make_minio_client", "normalize_selection", "validate_key"]

ARRAY_MEDIA_TYPE = "application/vnd.zarr.v3"
JSON_MEDIA_TYPE = "application/json"
BYTES_MEDIA_TYPE = "application/octet-stream"

#: dtypes an array artifact may have: fixed-size numbers and bool, which Zarr v3, napari and
#: Neuroglancer all read. Strings, objects and structured dtypes are refused by name.
ARRAY_DTYPES = frozenset(np.dtype(t) for t in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128"))

#: Automatic chunks hold at most this many bytes. Measured with bench/store_throughput.py
#: --chunk-mib on the 2-core bench machine, 256 MiB float32, store/raw read (write) ratio:
#: 2 MiB 0.71 (1.00), 4 MiB 0.87 (0.92), 8 MiB 0.95-1.06 (0.81-0.93), 16 MiB 1.07 (0.87).
#: Bigger chunks mean fewer requests and less per-request work, but a sub-block read fetches
#: whole chunks, so 8 MiB (128^3 float32) is where reads caught up with the raw SDK.
TARGET_CHUNK_BYTES = 8 * 2**20

#: Chunk codecs after the ``bytes`` serializer, by dtype kind. Every chain ends with a CRC32C
#: checksum: it lets a reader trust a single chunk (``read_block``), detecting a truncated or
#: corrupt chunk without hashing the whole array, for ~10% of the decode time (SSE4.2).
#: Compression, measured on 128 MiB arrays (bench/README.md, "codec choice"): integer labels
#: (segmentations, masks, counts) shrink 159x with zstd level 1 and write 4x, read 1.9x
#: faster; float data (recordings, rates) shrinks 1.08x and reads 16% slower, so floats are
#: stored uncompressed. blosc-lz4 was as fast as zstd on labels but kept them 3.4x larger.
INTEGER_COMPRESSORS = (ZstdCodec(level=1), Crc32cCodec())
FLOAT_COMPRESSORS = (Crc32cCodec(),)

#: zarr attribute holding NeuroMesh's own fields; an array without it was never finalized
ATTRIBUTE_NAMESPACE = "neuromesh"
#: S3 user metadata key of the content digest (sent as ``x-amz-meta-sha256``)
SHA256_METADATA = "sha256"

#: Part size of multipart uploads of files (grown for files over 160 GiB: S3 allows 10000 parts)
FILE_PART_BYTES = 16 * 2**20
#: Read-back granularity when an array's digest must be computed from storage
HASH_READ_BYTES = 64 * 2**20

IfExists = Literal["error", "return_existing"]


# --------------------------------------------------------------------------------------------
# pure helpers: keys, chunks, selections


def validate_key(key: str, *, field: str = "key") -> str:
    """Return ``key`` if it is a valid artifact key, else raise :class:`InvalidArgument`.

    A key is a ``/``-separated relative path: not empty, no leading or trailing ``/``, no empty,
    ``.`` or ``..`` segment, no control characters or backslashes, at most 900 bytes of UTF-8
    (S3 allows 1024; an array's chunk names need the rest).

    >>> validate_key("results/3f2a/rates")
    'results/3f2a/rates'
    >>> validate_key("../etc/passwd")
    Traceback (most recent call last):
    ...
    services.common.errors.InvalidArgument: invalid key '../etc/passwd': '.' and '..' segments are not allowed
    """
    def bad(why: str) -> InvalidArgument:
        return InvalidArgument(f"invalid key {key!r}: {why}", reason="INVALID_KEY", field=field,
                               metadata={"key": key})

    if not isinstance(key, str) or not key:
        raise bad("a key is a non-empty string")
    if key.startswith("/") or key.endswith("/"):
        raise bad("a key must not start or end with '/'")
    segments = key.split("/")
    if any(s in (".", "..") for s in segments):
        raise bad("'.' and '..' segments are not allowed")
    if any(not s for s in segments):
        raise bad("empty segments ('//') are not allowed")
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise bad("backslashes and control characters are not allowed")
    if len(key.encode()) > 900:
        raise bad(f"{len(key.encode())} bytes long; at most 900")
    return key


def choose_chunks(shape: tuple[int, ...], itemsize: int, *,
                  target_bytes: int = TARGET_CHUNK_BYTES) -> tuple[int, ...]:
    """Chunk shape of at most ``target_bytes`` for an array of ``shape``.

    Halves the longest axis (the first on ties) until the chunk fits. Halving with ceiling
    division keeps edge chunks nearly full (little padding stored), leads to near-cubic chunks
    for volumes (sub-block reads touch few chunks) and to full rows for tall tables such as
    time x channels (a time window reads whole chunks).

    >>> choose_chunks((512, 512, 512), 4)
    (128, 128, 128)
    >>> choose_chunks((10_000_000, 384), 4)
    (4883, 384)
    >>> choose_chunks((3, 0), 8)
    (3, 1)
    """
    chunks = [max(1, int(n)) for n in shape]
    while chunks and math.prod(chunks) * itemsize > target_bytes:
        axis = int(np.argmax(chunks))
        if chunks[axis] == 1:
            break
        chunks[axis] = -(-chunks[axis] // 2)
    return tuple(chunks)


def normalize_selection(selection: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """Basic-indexing ``selection`` as one unit-step slice per axis, and the result's shape.

    Accepts what NumPy basic indexing accepts except steps other than 1: ints (negative ones
    count from the end, and drop their axis from the result), slices, one ``Ellipsis``; missing
    trailing axes are taken whole. Slices are clipped to the array like NumPy clips them.

    >>> normalize_selection((slice(2, None), -1), (10, 4))
    ((slice(2, 10, None), slice(3, 4, None)), (8,))
    """
    items = selection if isinstance(selection, tuple) else (selection,)
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise InvalidArgument("a selection may hold at most one Ellipsis (...)", field="selection")
    if ellipses:
        at = ellipses[0]
        fill = len(shape) - (len(items) - 1)
        items = items[:at] + (slice(None),) * max(fill, 0) + items[at + 1:]
    if len(items) > len(shape):
        raise InvalidArgument(f"selection {selection!r} has {len(items)} indices for an array of "
                              f"shape {shape}", field="selection")
    items = items + (slice(None),) * (len(shape) - len(items))
    slices, out_shape = [], []
    for axis, (item, n) in enumerate(zip(items, shape)):
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                raise InvalidArgument(f"selection {selection!r}: only step 1 is supported (axis {axis})",
                                      field="selection")
            stop = max(start, stop)
            slices.append(slice(start, stop))
            out_shape.append(stop - start)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            index = int(item) + n if item < 0 else int(item)
            if not 0 <= index < n:
                raise InvalidArgument(f"index {int(item)} is out of bounds for axis {axis} of size {n}",
                                      field="selection")
            slices.append(slice(index, index + 1))
        else:
            raise InvalidArgument(f"selection {selection!r}: axis {axis} index {item!r} is not an int or "
                                  f"a slice", field="selection")
    return tuple(slices), tuple(out_shape)


def _c_order_pieces(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int,
                    budget_bytes: int) -> Iterator[tuple[slice, ...]]:
    """Boxes that tile the array in C order, each contiguous in the flat C-order layout.

    Concatenating the pieces' bytes gives the array's C-order bytes, so a digest can be fed
    piece by piece with bounded memory. Pieces span whole trailing axes; along the first axis
    that does not fit the budget whole, they are cut on chunk boundaries where possible so
    each chunk is fetched once.
    """
    if 0 in shape:
        return
    ndim = len(shape)
    if ndim == 0:
        yield ()
        return
    # first axis whose trailing block (one index of it, everything after) fits the budget
    axis = next((k for k in range(ndim) if math.prod(shape[k + 1:]) * itemsize <= budget_bytes), ndim - 1)
    row_bytes = math.prod(shape[axis + 1:]) * itemsize
    step = max(1, budget_bytes // row_bytes)
    if step >= chunks[axis]:
        step -= step % chunks[axis]
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield (tuple(slice(i, i + 1) for i in outer) + (slice(start, min(start + step, shape[axis])),)
                   + tuple(slice(0, n) for n in shape[axis + 1:]))


def _contiguous_span(region: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[int, int] | None:
    """[start, stop) of ``region`` in the flat C-order index, or None when it is not one run."""
    axis = next((k for k, s in enumerate(region) if s.stop - s.start != 1), len(region) - 1)
    if axis < 0:  # 0-d
        return 0, 1
    if any(s.start != 0 or s.stop != n for s, n in zip(region[axis + 1:], shape[axis + 1:])):
        return None
    start = int(np.ravel_multi_index([s.start for s in region], shape))
    return start, start + math.prod(s.stop - s.start for s in region)


def _array_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InvalidArgument(f"{dtype!r} is not a dtype", field="dtype") from exc
    if dt.newbyteorder("=") not in ARRAY_DTYPES:
        raise InvalidArgument(f"dtype {dt} cannot be stored as an array artifact; use one of "
                              f"{sorted(str(t) for t in ARRAY_DTYPES)}", field="dtype")
    return dt.newbyteorder("=")


def _little_endian_bytes(block: np.ndarray) -> memoryview:
    """The C-order little-endian bytes of ``block`` (a C-contiguous array), without a copy on x86/ARM."""
    return memoryview(block.astype(block.dtype.newbyteorder("<"), copy=False)).cast("B")


# --------------------------------------------------------------------------------------------
# client


def make_minio_client(endpoint: str, access_key: str, secret_key: str, *, secure: bool = False,
                      region: str | None = None, connect_timeout_s: float = 2.0,
                      read_timeout_s: float = 20.0, retries: int = 2) -> Minio:
    """A ``minio`` client whose requests fail within seconds when the server is away.

    The SDK's default pool waits 5 minutes to connect and retries 5 times; a service would hang
    on a missing object store. Here a refused or unroutable endpoint fails after at most
    ``(retries + 1) * connect_timeout_s`` plus short backoffs, and a server that stops
    answering mid-request after ``(retries + 1) * read_timeout_s``. ``read_timeout_s`` bounds
    each wait for bytes, not a whole transfer, so large objects are unaffected. The pool holds
    as many connections as the Zarr adapter runs requests at once.
    """
    retry = urllib3.Retry(total=retries, connect=retries, read=retries, backoff_factor=0.2,
                          status_forcelist=(500, 502, 503, 504))
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
                               maxsize=IO_THREADS, retries=retry)
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                 http_client=http)


# --------------------------------------------------------------------------------------------
# the store


class ArtifactStore:
    """Artifacts in one bucket: arrays (Zarr v3), JSON, bytes and files, each with a sha256.

    Parameters
    ----------
    client : minio.Minio
        A configured client; :func:`make_minio_client` gives one with bounded timeouts.
    bucket : str
        The bucket holding the artifacts; :meth:`ensure_bucket` creates it.

    Examples
    --------
    >>> store = ArtifactStore(make_minio_client("127.0.0.1:8333", "neuromesh", "neuromesh-secret"),
    ...                       "neuromesh")                                     # doctest: +SKIP
    >>> ref = store.put_bytes("jobs/42/log.txt", b"done\\n", media_type="text/plain")  # doctest: +SKIP
    >>> store.get_bytes(ref)                                                  # doctest: +SKIP
    b'done\\n'
    """

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> ArtifactStore:
        """The store of a process's settings; ``client_options`` go to :func:`make_minio_client`."""
        client = make_minio_client(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                                   secure=settings.s3_secure, region=settings.s3_region, **client_options)
        return cls(client, settings.bucket)

    def __repr__(self) -> str:
        return f"ArtifactStore({s3_uri(self.bucket, '')!r})"

    # --- bucket

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist; safe to call from several processes at once."""
        with translate_s3_errors(self.bucket):
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    # --- arrays

    def put_array(self, key: str, array: np.ndarray, *, chunks: tuple[int, ...] | None = None,
                  if_exists: IfExists = "error") -> ArtifactRef:
        """Store an in-memory array as a Zarr v3 array at ``key``.

        Parameters
        ----------
        key : str
            Artifact key; the array's objects live under ``key/``.
        array : array_like
            Any dtype of ``ARRAY_DTYPES``; any memory layout.
        chunks : tuple of int, optional
            Chunk shape; by default :func:`choose_chunks` (at most 8 MiB per chunk).
        if_exists : {"error", "return_existing"}
            What to do when ``key`` is taken: raise :class:`AlreadyExists`, or, for
            content-addressed keys, return the stored array's ref if its sha256 equals this
            array's (and raise :class:`AlreadyExists` if it differs).

        Returns
        -------
        ArtifactRef
            With ``media_type="application/vnd.zarr.v3"``, shape, dtype, ``size_bytes`` (the
            uncompressed data size) and sha256 of the C-order bytes.

        Examples
        --------
        >>> ref = store.put_array("sims/7/v_m", np.zeros((1000, 64), "float64"))  # doctest: +SKIP
        >>> list(ref.shape), ref.dtype, ref.size_bytes                             # doctest: +SKIP
        ([1000, 64], 'float64', 512000)
        """
        validate_key(key)
        array = np.asarray(array)
        dtype = _array_dtype(array.dtype)
        existing = self._claim(key, if_exists, lambda: hashlib.sha256(
            _little_endian_bytes(np.ascontiguousarray(array, dtype=dtype))).hexdigest())
        if existing is not None:
            return existing
        writer = self._new_array(key, array.shape, dtype, chunks)
        try:
            writer[...] = array
            return writer.finalize()
        except BaseException:
            writer.abort()
            raise

    def create_array(self, key: str, shape: tuple[int, ...], dtype: Any, *,
                     chunks: tuple[int, ...] | None = None) -> ArrayWriter:
        """Start an array written block by block, for volumes larger than memory.

        Write blocks with ``writer[selection] = block`` (basic indexing, any order, blocks
        need not align with chunks), then call :meth:`ArrayWriter.finalize` for the ref. Until
        then the array is incomplete: readers get :class:`FailedPrecondition`. Used as a
        context manager, the writer deletes what it wrote if the block exits before
        ``finalize()``.

        Examples
        --------
        >>> with store.create_array("em/seg", (1024, 4096, 4096), "uint64") as w:   # doctest: +SKIP
        ...     for z in range(0, 1024, 64):
        ...         w[z:z + 64] = segment(z)          # 64 x 4096 x 4096 at a time
        ...     ref = w.finalize()
        """
        validate_key(key)
        dt = _array_dtype(dtype)
        self._check_absent(key)
        return self._new_array(key, shape, dt, chunks)

    def _new_array(self, key: str, shape: tuple[int, ...], dt: np.dtype,
                   chunks: tuple[int, ...] | None) -> ArrayWriter:
        try:
            shape = tuple(int(n) for n in shape)
        except TypeError as exc:
            raise InvalidArgument(f"shape {shape!r} is not a tuple of ints", field="shape") from exc
        if any(n < 0 for n in shape):
            raise InvalidArgument(f"shape {shape} has a negative length", field="shape")
        chunks = choose_chunks(shape, dt.itemsize) if chunks is None else tuple(int(c) for c in chunks)
        if len(chunks) != len(shape) or any(c < 1 for c in chunks):
            raise InvalidArgument(f"chunks {chunks} do not fit shape {shape}: one positive length per axis",
                                  field="chunks")
        with translate_s3_errors(self.bucket, key):
            array = zarr.create_array(
                MinioZarrStore(self.client, self.bucket, key), shape=shape, dtype=dt, chunks=chunks,
                compressors=INTEGER_COMPRESSORS if dt.kind in "biu" else FLOAT_COMPRESSORS, filters=None,
                fill_value=False if dt == np.bool_ else 0,
                # every chunk is stored, even all-zero ones, so that readers can treat a missing
                # chunk object as data loss instead of as "fill value" (MinioZarrStore.require_chunks)
                config={"write_empty_chunks": True}, zarr_format=3)
        return ArrayWriter(self, key, array)

    def open_array(self, ref_or_key: ArtifactRef | str, *, dtype: Any = None) -> zarr.Array:
        """The stored array as a read-only ``zarr.Array``, for streaming through big volumes.

        Reading a missing or corrupt chunk raises :class:`DataLoss` (a zarr read alone would
        return zeros for a missing chunk). ``dtype``, if given, must equal the stored dtype.

        Examples
        --------
        >>> z = store.open_array("em/seg")            # doctest: +SKIP
        >>> z.shape, z.chunks                         # doctest: +SKIP
        ((1024, 4096, 4096), (64, 128, 128))
        """
        return self._open(ref_or_key, dtype)[1]

    def _open(self, ref_or_key: ArtifactRef | str, dtype: Any) -> tuple[str, zarr.Array]:
        key, ref = self._resolve(ref_or_key)
        store = MinioZarrStore(self.client, self.bucket, key, read_only=True, require_chunks=True)
        try:
            with translate_s3_errors(self.bucket, key):
                array = zarr.open_array(store, mode="r", zarr_format=3)
        except ArrayNotFoundError:
            self._raise_not_found(key)
        digest = array.attrs.get(ATTRIBUTE_NAMESPACE, {}).get("sha256")
        if not digest:
            raise self._incomplete(key)
        if ref is not None and ref.sha256 and ref.sha256 != digest:
            raise DataLoss(f"array {s3_uri(self.bucket, key)} has sha256 {digest}, not the {ref.sha256} "
                           f"of the ref", metadata={"bucket": self.bucket, "key": key})
        if dtype is not None and _array_dtype(dtype) != array.dtype:
            raise InvalidArgument(f"array {s3_uri(self.bucket, key)} holds {array.dtype}, not the expected "
                                  f"{np.dtype(dtype)}", reason="DTYPE_MISMATCH", field="dtype",
                                  metadata={"key": key, "expected": np.dtype(dtype), "actual": array.dtype})
        return key, array

    def get_array(self, ref_or_key: ArtifactRef | str, *, dtype: Any = None,
                  verify_sha256: bool = False) -> np.ndarray:
        """Read a whole array into memory.

        Every chunk is checked against its CRC32C as it is decoded; ``verify_sha256=True`` also
        hashes the result against the stored digest (costs a pass over the data at ~1.5 GB/s).

        Raises
        ------
        NotFound
            No array at the key (``ARTIFACT_NOT_FOUND``) or no bucket (``BUCKET_NOT_FOUND``).
        InvalidArgument
            ``dtype`` given and different from the stored dtype (both named).
        DataLoss
            A chunk is missing, truncated or corrupt, or the digest differs.

        Examples
        --------
        >>> rates = store.get_array(ref, dtype="float32")  # doctest: +SKIP
        """
        key, array = self._open(ref_or_key, dtype)
        data = self._read(key, array, ...)
        if verify_sha256:
            digest = hashlib.sha256(_little_endian_bytes(data)).hexdigest()
            expected = array.attrs[ATTRIBUTE_NAMESPACE]["sha256"]
            if digest != expected:
                raise DataLoss(f"array {s3_uri(self.bucket, key)} reads back with sha256 {digest}, stored "
                               f"{expected}", metadata={"bucket": self.bucket, "key": key})
        return data

    def read_block(self, ref_or_key: ArtifactRef | str, selection: Any) -> np.ndarray:
        """Read ``array[selection]`` fetching only the chunks the selection touches.

        ``selection`` is basic indexing with unit steps: a tuple of slices and ints, as for
        NumPy; the result equals ``get_array(ref)[selection]``.

        Examples
        --------
        >>> block = store.read_block("em/raw", (slice(0, 64), slice(512, 1024), slice(512, 1024)))  # doctest: +SKIP
        """
        key, array = self._open(ref_or_key, None)
        return self._read(key, array, selection)

    def _read(self, key: str, array: zarr.Array, selection: Any) -> np.ndarray:
        region, out_shape = normalize_selection(selection, array.shape)
        try:
            with translate_s3_errors(self.bucket, key):
                out = np.asarray(array[region])
        except ValueError as exc:  # the selection was validated above: this is a chunk failing to decode
            raise DataLoss(f"array {s3_uri(self.bucket, key)} has a corrupt or truncated chunk: {exc}",
                           metadata={"bucket": self.bucket, "key": key}) from exc
        return out.reshape(out_shape)

    # --- objects: bytes, JSON, files

    def put_bytes(self, key: str, data: bytes, *, media_type: str = BYTES_MEDIA_TYPE,
                  if_exists: IfExists = "error") -> ArtifactRef:
        """Store ``data`` as one object; its sha256 goes into the object's metadata.

        Examples
        --------
        >>> ref = store.put_bytes("models/ab/state.pt", buf, media_type="application/x-pytorch")  # doctest: +SKIP
        """
        validate_key(key)
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        existing = self._claim(key, if_exists, lambda: digest)
        if existing is not None:
            return existing
        with translate_s3_errors(self.bucket, key):
            result = self.client.put_object(self.bucket, key, io.BytesIO(data), len(data),
                                            content_type=media_type, metadata={SHA256_METADATA: digest})
        return ArtifactRef(bucket=self.bucket, key=key, etag=result.etag or "", sha256=digest,
                           media_type=media_type, size_bytes=len(data))

    def get_bytes(self, ref_or_key: ArtifactRef | str) -> bytes:
        """The object's bytes, checked against its sha256 and size.

        The digest checked is the ref's when a ref is given (it travels with the request, so it
        also catches an object replaced behind the store's back), else the object's metadata.

        Raises
        ------
        DataLoss
            The bytes do not match the digest or the size (truncated or corrupt object).
        """
        key, ref = self._resolve(ref_or_key)
        with translate_s3_errors(self.bucket, key):
            response = self._get_object(key)
            try:
                data = response.read()
                metadata_digest = response.headers.get(f"x-amz-meta-{SHA256_METADATA}", "")
            finally:
                response.close()
                response.release_conn()
        self._check_content(key, ref, metadata_digest, hashlib.sha256(data).hexdigest(), len(data))
        return data

    def put_json(self, key: str, value: Any, *, if_exists: IfExists = "error") -> ArtifactRef:
        """Store a JSON document (keys sorted, compact: equal values give equal digests).

        NaN and infinities are refused (they are not JSON).

        Examples
        --------
        >>> store.put_json("jobs/42/params.json", {"bin_ms": 20, "lags": [0, 1]}).media_type  # doctest: +SKIP
        'application/json'
        """
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"value for {key!r} is not JSON: {exc}", field="value") from exc
        return self.put_bytes(key, text.encode(), media_type=JSON_MEDIA_TYPE, if_exists=if_exists)

    def get_json(self, ref_or_key: ArtifactRef | str) -> Any:
        """The JSON document at the key, checked like :meth:`get_bytes`."""
        key, _ = self._resolve(ref_or_key)
        data = self.get_bytes(ref_or_key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise DataLoss(f"object {s3_uri(self.bucket, key)} is not valid JSON: {exc}",
                           metadata={"bucket": self.bucket, "key": key}) from exc

    def put_file(self, key: str, path: str | os.PathLike[str], *, media_type: str = BYTES_MEDIA_TYPE,
                 if_exists: IfExists = "error") -> ArtifactRef:
        """Upload a file by streaming it (multipart, parts in parallel); memory stays bounded.

        The file is read twice: once to hash it (S3 metadata is sent before the content), once
        to upload.

        Examples
        --------
        >>> ref = store.put_file("inputs/ses-01.nwb", "/data/ses-01.nwb",
        ...                      media_type="application/x-nwb")     # doctest: +SKIP
        """
        validate_key(key)
        path = Path(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(FILE_PART_BYTES):
                digest.update(block)
        size = path.stat().st_size
        existing = self._claim(key, if_exists, digest.hexdigest)
        if existing is not None:
            return existing
        part_size = max(FILE_PART_BYTES, math.ceil(size / MAX_MULTIPART_COUNT / 2**20) * 2**20)
        with translate_s3_errors(self.bucket, key), open(path, "rb") as f:
            result = self.client.put_object(self.bucket, key, f, size, content_type=media_type,
                                            metadata={SHA256_METADATA: digest.hexdigest()},
                                            part_size=part_size)
        return ArtifactRef(bucket=self.bucket, key=key, etag=result.etag or "", sha256=digest.hexdigest(),
                           media_type=media_type, size_bytes=size)

    def get_file(self, ref_or_key: ArtifactRef | str, path: str | os.PathLike[str]) -> ArtifactRef:
        """Download an object to ``path`` by streaming, checking size and sha256.

        The bytes go to a temporary file beside ``path`` that replaces it only once verified,
        so a failed download never leaves a partial file at ``path``.
        """
        key, ref = self._resolve(ref_or_key)
        path = Path(path)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, translate_s3_errors(self.bucket, key):
                response = self._get_object(key)
                try:
                    for block in response.stream(2**20):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
                    headers = response.headers
                finally:
                    response.close()
                    response.release_conn()
            self._check_content(key, ref, headers.get(f"x-amz-meta-{SHA256_METADATA}", ""),
                                digest.hexdigest(), size)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return ArtifactRef(bucket=self.bucket, key=key, etag=headers.get("etag", "").strip('"'),
                           sha256=digest.hexdigest(), media_type=headers.get("content-type", BYTES_MEDIA_TYPE),
                           size_bytes=size)

    # --- keys

    def exists(self, key: str) -> bool:
        """True if ``key`` is taken: an object, an array (finalized or not), or any object under
        ``key/``. A put to a taken key raises :class:`AlreadyExists`."""
        validate_key(key)
        with translate_s3_errors(self.bucket, key):
            return (self._head(key) is not None or self._head(f"{key}/zarr.json") is not None
                    or self._has_children(key))

    def stat(self, key: str) -> ArtifactRef:
        """The ref of the artifact at ``key`` (object or array), read from the store.

        Raises
        ------
        NotFound
            Nothing at ``key``.
        FailedPrecondition
            An array at ``key`` that was never finalized (``ARTIFACT_INCOMPLETE``).
        """
        validate_key(key)
        ref = self._existing_ref(key)
        if ref is None:
            self._raise_not_found(key)
        return ref

    def resolve(self, ref_or_key: ArtifactRef | str) -> ArtifactRef:
        """The full ref of what a caller points at, read from the store.

        Callers may name an input by key alone (or a ref missing its digest); services need
        the stored sha256 for content-addressed result keys. A ref that carries a sha256 or a
        size must agree with the stored artifact, so a stale ref is caught before any work.

        Raises
        ------
        NotFound
            Nothing at the key, or no bucket.
        DataLoss
            The ref's sha256 or size differs from the stored artifact's (``ARTIFACT_CHANGED``).

        Examples
        --------
        >>> full = store.resolve(ArtifactRef(key="inputs/spike-times"))   # doctest: +SKIP
        >>> len(full.sha256)                                               # doctest: +SKIP
        64
        """
        key, ref = self._resolve(ref_or_key)
        stored = self.stat(key)
        if ref is not None:
            for field in ("sha256", "size_bytes"):
                given, actual = getattr(ref, field), getattr(stored, field)
                if given and actual and given != actual:
                    raise DataLoss(f"artifact {s3_uri(self.bucket, key)} has {field} {actual}, the ref says "
                                   f"{given} (it changed, or the ref is stale)", reason="ARTIFACT_CHANGED",
                                   metadata={"bucket": self.bucket, "key": key, "field": field})
        return stored

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Sorted keys of the artifacts whose key starts with ``prefix``; an array is one key.

        Examples
        --------
        >>> store.list("jobs/42/")                          # doctest: +SKIP
        ['jobs/42/params.json', 'jobs/42/rates']
        """
        if prefix:
            validate_key(prefix.rstrip("/"), field="prefix")
        with translate_s3_errors(self.bucket, prefix):
            names = [o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        arrays = {n[:-len("/zarr.json")] for n in names if n.endswith("/zarr.json")}
        keys = set()
        for name in names:
            # an object inside an array (its zarr.json or a chunk) stands for the array's key
            parts = name.split("/")
            owner = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in arrays), None)
            keys.add(owner or name)
        return sorted(keys)

    def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL that lets a plain HTTP ``PUT`` upload one object to ``key`` (large inputs
        go straight to the store). The key must be free when the URL is made.

        An object uploaded this way carries no sha256 metadata; :meth:`get_bytes` then checks
        only what a ref given to it holds.
        """
        validate_key(key)
        self._check_absent(key)
        with translate_s3_errors(self.bucket, key):
            return self.client.presigned_put_object(self.bucket, key, expires=expires)

    def presigned_get_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL that lets a plain HTTP ``GET`` download the object at ``key`` (not an array:
        arrays are many objects; open them with zarr)."""
        ref = self.stat(key)
        if ref.media_type == ARRAY_MEDIA_TYPE:
            raise InvalidArgument(f"{s3_uri(self.bucket, key)} is a Zarr array of many objects; it has no "
                                  f"single download URL", field="key")
        with translate_s3_errors(self.bucket, key):
            return self.client.presigned_get_object(self.bucket, key, expires=expires)

    # --- internals

    def _resolve(self, ref_or_key: ArtifactRef | str) -> tuple[str, ArtifactRef | None]:
        if isinstance(ref_or_key, ArtifactRef):
            if ref_or_key.bucket and ref_or_key.bucket != self.bucket:
                raise InvalidArgument(f"ref points to bucket {ref_or_key.bucket!r}; this store holds "
                                      f"{self.bucket!r}", field="bucket")
            return validate_key(ref_or_key.key), ref_or_key
        return validate_key(ref_or_key), None

    def _get_object(self, key: str):
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                self._raise_not_found(key)
            raise

    def _head(self, key: str):
        try:
            return self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise

    def _has_children(self, key: str) -> bool:
        # recursive: a delimiter listing also shows the empty directories SeaweedFS keeps
        # after deletes, so an aborted array would look like it still holds its key
        objects = self.client.list_objects(self.bucket, prefix=f"{key}/", recursive=True)
        return next(iter(objects), None) is not None

    def _raise_not_found(self, key: str) -> None:
        # a HEAD answers a bare 404 that the SDK reads as NoSuchKey even when the bucket is
        # missing; one more request, on the error path only, tells the two apart
        with translate_s3_errors(self.bucket, key):
            bucket_exists = self.client.bucket_exists(self.bucket)
        if not bucket_exists:
            raise NotFound(f"bucket {self.bucket!r} does not exist", reason="BUCKET_NOT_FOUND",
                           metadata={"bucket": self.bucket})
        raise NotFound(f"artifact {s3_uri(self.bucket, key)} does not exist", reason="ARTIFACT_NOT_FOUND",
                       metadata={"bucket": self.bucket, "key": key})

    def _check_absent(self, key: str) -> None:
        # Check-then-write: the minio SDK exposes no conditional PUT (If-None-Match). Two
        # writers racing on one key both pass; for content-addressed keys they write the
        # same bytes, and job-scoped keys have one writer.
        if self.exists(key):
            raise AlreadyExists(f"artifact {s3_uri(self.bucket, key)} already exists; artifacts are never "
                                f"overwritten", metadata={"bucket": self.bucket, "key": key})

    def _array_metadata(self, key: str) -> dict[str, Any]:
        with translate_s3_errors(self.bucket, key):
            try:
                response = self.client.get_object(self.bucket, f"{key}/zarr.json")
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    self._raise_not_found(key)
                raise
            try:
                raw = response.read()
                etag = response.headers.get("etag", "").strip('"')
            finally:
                response.close()
                response.release_conn()
        try:
            meta = json.loads(raw)
            meta.setdefault("attributes", {})
            meta["etag"] = etag
            return meta
        except ValueError as exc:
            raise DataLoss(f"array {s3_uri(self.bucket, key)} has corrupt metadata: {exc}",
                           metadata={"bucket": self.bucket, "key": key}) from exc

    def _array_ref(self, key: str) -> ArtifactRef:
        meta = self._array_metadata(key)
        digest = meta["attributes"].get(ATTRIBUTE_NAMESPACE, {}).get("sha256", "")
        if not digest:
            raise self._incomplete(key)
        shape = [int(n) for n in meta["shape"]]
        dtype = np.dtype(str(meta["data_type"]))
        return ArtifactRef(bucket=self.bucket, key=key, etag=meta["etag"], sha256=digest,
                           media_type=ARRAY_MEDIA_TYPE, shape=shape, dtype=str(dtype),
                           size_bytes=math.prod(shape) * dtype.itemsize)

    def _incomplete(self, key: str) -> FailedPrecondition:
        return FailedPrecondition(f"array {s3_uri(self.bucket, key)} was never finalized (its writer is still "
                                  f"running, or failed without cleaning up)", reason="ARTIFACT_INCOMPLETE",
                                  metadata={"bucket": self.bucket, "key": key})

    def _existing_ref(self, key: str) -> ArtifactRef | None:
        """The ref of what is at ``key``, None if nothing; AlreadyExists if taken otherwise."""
        with translate_s3_errors(self.bucket, key):
            head = self._head(key)
            if head is not None:
                return ArtifactRef(bucket=self.bucket, key=key, etag=head.etag or "",
                                   sha256=head.metadata.get(f"x-amz-meta-{SHA256_METADATA}", ""),
                                   media_type=head.content_type or BYTES_MEDIA_TYPE, size_bytes=head.size or 0)
            if self._head(f"{key}/zarr.json") is not None:
                return self._array_ref(key)
            if self._has_children(key):
                raise AlreadyExists(f"{s3_uri(self.bucket, key)} is a prefix of other artifacts, not an "
                                    f"artifact", metadata={"bucket": self.bucket, "key": key})
        return None

    def _claim(self, key: str, if_exists: IfExists, digest: Callable[[], str]) -> ArtifactRef | None:
        """Before a put: None if ``key`` is free; the stored ref for ``return_existing`` when its
        sha256 equals ``digest()`` (computed only then); else :class:`AlreadyExists`."""
        if if_exists == "error":
            self._check_absent(key)
            return None
        if if_exists != "return_existing":
            raise InvalidArgument(f"if_exists must be 'error' or 'return_existing', not {if_exists!r}",
                                  field="if_exists")
        existing = self._existing_ref(key)
        if existing is None:
            return None
        new = digest()
        if existing.sha256 == new:
            return existing
        raise AlreadyExists(f"artifact {s3_uri(self.bucket, key)} exists with sha256 "
                            f"{existing.sha256 or '(none)'}, not {new}", reason="ARTIFACT_CONFLICT",
                            metadata={"bucket": self.bucket, "key": key, "existing_sha256": existing.sha256,
                                      "new_sha256": new})

    def _check_content(self, key: str, ref: ArtifactRef | None, metadata_digest: str, digest: str,
                       size: int) -> None:
        meta = {"bucket": self.bucket, "key": key}
        if ref is not None and ref.size_bytes and ref.size_bytes != size:
            raise DataLoss(f"object {s3_uri(self.bucket, key)} has {size} bytes, the ref says {ref.size_bytes}",
                           metadata=meta)
        expected = (ref.sha256 if ref is not None and ref.sha256 else "") or metadata_digest
        if expected and expected != digest:
            raise DataLoss(f"object {s3_uri(self.bucket, key)} has sha256 {digest}, expected {expected} "
                           f"(truncated or corrupt)", metadata=meta)


class ArrayWriter:
    """Writes one array artifact block by block; :meth:`finalize` seals it with its sha256.

    Made by :meth:`ArtifactStore.create_array`. The sha256 is of the C-order bytes of the whole
    array. Blocks that arrive in C order (e.g. slabs ``w[z0:z1] = ...`` with increasing ``z0``)
    are hashed while they are written; if they come in another order, ``finalize`` reads the
    array back once to hash it. Every chunk must be covered by some block: ``finalize`` names
    the first region never written (a forgotten last block is the usual bug of block loops).
    Parts of the array covered twice hold the last write. Write from one thread at a time: the
    digest and the coverage count are not locked.
    """

    def __init__(self, store: ArtifactStore, key: str, array: zarr.Array) -> None:
        self._store = store
        self.key = key
        self._array = array
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype: np.dtype = np.dtype(array.dtype)
        self.chunks: tuple[int, ...] = tuple(array.chunks)
        self._digest = hashlib.sha256()
        self._hashed_to = 0           # flat C-order index up to which blocks were hashed in order
        self._in_order = True
        grid = tuple(-(-n // c) for n, c in zip(self.shape, self.chunks))
        self._written = np.zeros(grid, dtype=np.int64)   # elements written per chunk
        self._ref: ArtifactRef | None = None
        self._aborted = False

    def __enter__(self) -> ArrayWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._ref is None:
            self.abort()

    def __setitem__(self, selection: Any, block: Any) -> None:
        if self._ref is not None or self._aborted:
            raise FailedPrecondition(f"array {s3_uri(self._store.bucket, self.key)} is already "
                                     f"{'finalized' if self._ref is not None else 'aborted'}")
        region, out_shape = normalize_selection(selection, self.shape)
        where = s3_uri(self._store.bucket, self.key)
        if isinstance(block, (bool, int, float, complex)):
            # a Python number takes the array's dtype if its value fits (NumPy 2 rules)
            try:
                block = np.asarray(block, dtype=self.dtype)
            except (OverflowError, TypeError, ValueError) as exc:
                raise InvalidArgument(f"cannot write {block!r} into the {self.dtype} array {where}: {exc}",
                                      field="block") from exc
        block = np.asarray(block)
        if not np.can_cast(block.dtype, self.dtype, casting="same_kind"):
            raise InvalidArgument(f"cannot write a {block.dtype} block into the {self.dtype} array {where}",
                                  field="block")
        try:
            block = np.broadcast_to(block, out_shape)
        except ValueError as exc:
            raise InvalidArgument(f"block of shape {block.shape} does not fit selection of shape {out_shape}",
                                  field="block") from exc
        region_shape = tuple(s.stop - s.start for s in region)
        data = np.ascontiguousarray(block, dtype=self.dtype).reshape(region_shape)
        if data.size == 0:
            return
        with translate_s3_errors(self._store.bucket, self.key):
            self._array[region] = data
        self._count(region)
        span = _contiguous_span(region, self.shape)
        if self._in_order and span is not None and span[0] == self._hashed_to:
            self._digest.update(_little_endian_bytes(data))
            self._hashed_to = span[1]
        else:
            self._in_order = False

    def _count(self, region: tuple[slice, ...]) -> None:
        """Add the elements ``region`` puts into each chunk to ``self._written``."""
        per_axis, grid_slices = [], []
        for s, c in zip(region, self.chunks):
            first, last = s.start // c, (s.stop - 1) // c
            edges = np.arange(first, last + 2) * c
            per_axis.append(np.minimum(edges[1:], s.stop) - np.maximum(edges[:-1], s.start))
            grid_slices.append(slice(first, last + 1))
        counts = np.ones((), dtype=np.int64)
        for lengths in per_axis:
            counts = np.multiply.outer(counts, lengths)
        self._written[tuple(grid_slices)] += counts

    def _unwritten_region(self) -> tuple[slice, ...] | None:
        """The first chunk region (C order) that blocks did not fully cover, if any."""
        full = np.ones((), dtype=np.int64)
        for n, c, g in zip(self.shape, self.chunks, self._written.shape):
            full = np.multiply.outer(full, np.minimum(np.arange(1, g + 1) * c, n) - np.arange(g) * c)
        missing = np.argwhere(self._written < full)
        if not len(missing):
            return None
        first = missing[0]
        return tuple(slice(int(i) * c, min((int(i) + 1) * c, n)) for i, c, n in zip(first, self.chunks, self.shape))

    def finalize(self) -> ArtifactRef:
        """Seal the array: record its sha256 in the zarr attributes and return its ref.

        Raises
        ------
        FailedPrecondition
            Some chunk was not fully written (``ARRAY_INCOMPLETE``); the message names the
            first such region. Write it and call ``finalize`` again.
        """
        if self._ref is not None:
            return self._ref
        bucket = self._store.bucket
        region = self._unwritten_region()
        if region is not None:
            where = ", ".join(f"{s.start}:{s.stop}" for s in region)
            raise FailedPrecondition(f"array {s3_uri(bucket, self.key)} is not fully written: region "
                                     f"[{where}] (and maybe more) was never written", reason="ARRAY_INCOMPLETE",
                                     metadata={"bucket": bucket, "key": self.key})
        if not (self._in_order and self._hashed_to == math.prod(self.shape)):
            self._digest = self._hash_from_store()
        digest = self._digest.hexdigest()
        with translate_s3_errors(bucket, self.key):
            self._array.update_attributes({ATTRIBUTE_NAMESPACE: {"sha256": digest}})
        self._ref = self._store._array_ref(self.key)
        return self._ref

    def _hash_from_store(self) -> Any:
        reader = zarr.open_array(MinioZarrStore(self._store.client, self._store.bucket, self.key, read_only=True,
                                                require_chunks=True), mode="r", zarr_format=3)
        digest = hashlib.sha256()
        for piece in _c_order_pieces(self.shape, self.chunks, self.dtype.itemsize, HASH_READ_BYTES):
            with translate_s3_errors(self._store.bucket, self.key):
                digest.update(_little_endian_bytes(np.ascontiguousarray(reader[piece])))
        return digest

    def abort(self) -> None:
        """Delete everything written under the key, freeing it for another attempt."""
        if self._ref is not None or self._aborted:
            return
        self._aborted = True
        store = self._store
        with translate_s3_errors(store.bucket, self.key):
            names = [o.object_name for o in store.client.list_objects(store.bucket, prefix=f"{self.key}/",
                                                                       recursive=True)]
            failures = list(store.client.remove_objects(store.bucket, (DeleteObject(n) for n in names)))
        if failures:
            raise NeuroMeshError(f"could not delete {len(failures)} objects of the aborted array "
                                 f"{s3_uri(store.bucket, self.key)}: {failures[0]}")
