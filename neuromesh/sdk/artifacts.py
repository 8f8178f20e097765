"""Inputs up to the object store and results down from it, under content-addressed keys.

The services read their inputs from the object store and write their results there; calls carry
only references (``ArtifactRef``). :class:`Artifacts` is the SDK's side of that exchange, on the
same :class:`services.common.store.ArtifactStore` the services use (so digests, Zarr layout and
error handling agree):

* **Uploads are content-addressed.** A file, a byte string or a CSV table goes to
  ``inputs/<sha256 of its bytes>``; an N-d array, stored as a Zarr v3 array, to
  ``inputs/<sha256 of its C-order little-endian bytes>-<dtype>-<shape>`` (the bytes alone do not
  tell ``zeros(4, "float32")`` from ``zeros((2, 2), "float32")``). The sha256 in the key is the
  sha256 the store records in the ref. Before uploading, the key is looked up: when the object
  is there with that digest the upload is skipped (counted in :attr:`Artifacts.stats`), so
  re-running a notebook uploads nothing again.
* **Large files go in parts.** Files are streamed with bounded memory: the ``minio`` SDK sends a
  file larger than the store's part size (16 MiB) as an S3 multipart upload of 16 MiB parts,
  three in flight at once, and one plain PUT otherwise. Arrays go as Zarr chunks of at most
  8 MiB, up to 16 requests at once; an array larger than ``large_array_bytes`` (a memory-mapped
  ``.npy``, a ``zarr.Array``, an ``h5py`` dataset) is hashed and written slab by slab along its
  first axis, never whole in memory.
* **Downloads are checked.** Arrays are read through Zarr (every chunk's CRC32C checked; a
  sub-block reads only its chunks), objects against their sha256 and size.
* Errors of the store become the SDK's (:func:`neuromesh.sdk.errors.from_store_error`).

Example
-------
>>> import numpy as np
>>> array_key(array_sha256(np.arange(6, dtype="int64").reshape(2, 3)), "int64", (2, 3))
'inputs/f190072c5052f4f440d4a607c25f5bced487c420806c9aab4ca5b0653e72da61-int64-2x3'
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from services.common import errors as store_errors
from services.common.store import (ARRAY_DTYPES, JSON_MEDIA_TYPE, ArtifactStore, choose_chunks,
                                   make_minio_client)

from .errors import InvalidArgument, NeuroMeshError, PermissionDenied, Unauthenticated, from_store_error

__all__ = ["Artifacts", "UploadStats", "array_key", "array_sha256", "file_sha256", "input_key", "media_type_of"]

#: Prefix of every upload's key
INPUT_PREFIX = "inputs"
#: Arrays above this size are hashed and uploaded slab by slab instead of whole
LARGE_ARRAY_BYTES = 256 * 2**20
#: Bytes hashed or written per slab of a large array, and per read of a file being hashed
SLAB_BYTES = 64 * 2**20

CSV_MEDIA_TYPE = "text/csv"

#: Media types recorded for uploaded files, by suffix. Services tell formats from the content,
#: so these are for people browsing the bucket and for the gateway's listings.
MEDIA_TYPES = {
    ".nii": "application/x-nifti", ".nii.gz": "application/x-nifti", ".nwb": "application/x-nwb",
    ".tif": "image/tiff", ".tiff": "image/tiff", ".npy": "application/x-npy", ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5", ".csv": CSV_MEDIA_TYPE, ".tsv": "text/tab-separated-values",
    ".json": JSON_MEDIA_TYPE, ".png": "image/png", ".bval": "text/plain", ".bvec": "text/plain", ".txt": "text/plain",
    ".py": "text/x-python", ".trk": "application/x-trackvis", ".tck": "application/x-mrtrix-tck",
}


def media_type_of(path: str | os.PathLike[str]) -> str:
    """The media type recorded for a file, from its suffix.

    Examples
    --------
    >>> media_type_of("sub-01_dwi.nii.gz"), media_type_of("stack.TIF"), media_type_of("data.bin")
    ('application/x-nifti', 'image/tiff', 'application/octet-stream')
    """
    name = Path(path).name.lower()
    for suffix in sorted(MEDIA_TYPES, key=len, reverse=True):  # ".nii.gz" before ".gz"-less ".nii"
        if name.endswith(suffix):
            return MEDIA_TYPES[suffix]
    return "application/octet-stream"


# ------------------------------------------------------------------------------------------------
# digests and keys


def _native(dtype: np.dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


#: A slab may exceed the budget up to this size to cover whole chunks along the first axis
MAX_SLAB_BYTES = 2**30


def _slab_rows(shape: Sequence[int], itemsize: int, budget: int = SLAB_BYTES, align: int = 1) -> int:
    """Rows of the first axis per slab: about ``budget`` bytes, a multiple of ``align`` (the chunk
    rows) where a slab of ``align`` rows is not huge, so that no chunk is written twice.

    Examples
    --------
    >>> _slab_rows((1000, 16), 1, budget=1024, align=50), _slab_rows((1000, 16), 1, budget=1024, align=200)
    (50, 200)
    """
    row_bytes = max(1, math.prod(shape[1:]) * itemsize)
    rows = max(1, budget // row_bytes)
    if rows >= align:
        return rows - rows % align
    return align if align * row_bytes <= MAX_SLAB_BYTES else rows


def _slabs(array: Any, rows: int) -> Iterator[tuple[slice, np.ndarray]]:
    n = array.shape[0] if array.ndim else 1
    if array.ndim == 0:
        yield slice(None), np.asarray(array)
        return
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n)), np.asarray(array[start:start + rows])


def array_sha256(array: Any, *, slab_bytes: int = SLAB_BYTES) -> str:
    """The sha256 the store records for an array: of its C-order little-endian bytes.

    It depends only on the values, dtype and shape taken together as bytes, not on memory
    layout, byte order or chunking. Arrays that are not in memory (``np.memmap``, ``zarr.Array``,
    ``h5py.Dataset``) are read slab by slab along the first axis, the slabs' C-order bytes
    following one another as in the whole array's.

    Examples
    --------
    >>> import hashlib
    >>> a = np.arange(12, dtype=">f8").reshape(3, 4)           # big-endian
    >>> array_sha256(a) == hashlib.sha256(a.astype("<f8").tobytes()).hexdigest()
    True
    >>> array_sha256(np.asfortranarray(a)) == array_sha256(a)
    True
    """
    little = _native(array.dtype).newbyteorder("<")
    digest = hashlib.sha256()
    rows = _slab_rows(array.shape, little.itemsize, slab_bytes) if array.ndim else 1
    for _, slab in _slabs(array, rows):
        digest.update(memoryview(np.ascontiguousarray(slab, dtype=little)).cast("B"))
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 64 MiB blocks.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     _ = f.write(b"abc"); f.flush()
    ...     file_sha256(f.name)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(SLAB_BYTES):
            digest.update(block)
    return digest.hexdigest()


def input_key(sha256: str, prefix: str = INPUT_PREFIX) -> str:
    """Key of an uploaded object: ``inputs/<sha256>``.

    Examples
    --------
    >>> input_key(hashlib.sha256(b"abc").hexdigest())
    'inputs/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    return f"{prefix}/{sha256}"


def array_key(sha256: str, dtype: Any, shape: Sequence[int], prefix: str = INPUT_PREFIX) -> str:
    """Key of an uploaded array: ``inputs/<sha256>-<dtype>-<shape>``.

    Examples
    --------
    >>> array_key("ab" * 32, "float32", (1000, 64))[-20:]
    'abab-float32-1000x64'
    >>> array_key("ab" * 32, "bool", ())[-11:]
    'bool-scalar'
    """
    dims = "x".join(str(int(n)) for n in shape) or "scalar"
    return f"{prefix}/{sha256}-{_native(dtype).name}-{dims}"


@dataclass
class UploadStats:
    """What uploads did since the client started.

    Attributes
    ----------
    uploaded : int
        Artifacts sent to the store.
    skipped : int
        Artifacts already stored under their content key, not sent again.
    bytes_uploaded : int
        Bytes of the artifacts sent (arrays: their uncompressed size).

    Examples
    --------
    >>> UploadStats()
    UploadStats(uploaded=0, skipped=0, bytes_uploaded=0)
    """

    uploaded: int = 0
    skipped: int = 0
    bytes_uploaded: int = 0


@contextlib.contextmanager
def translated_store_errors() -> Iterator[None]:
    """Raise the SDK's exceptions for the store's (and for S3 credential refusals)."""
    try:
        yield
    except NeuroMeshError:
        raise
    except store_errors.NeuroMeshError as exc:
        raise from_store_error(exc) from None
    except Exception as exc:
        code = getattr(exc, "code", None)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise Unauthenticated(f"the object store refused the S3 credentials ({code}): check s3_access_key and "
                                  f"s3_secret_key (NEUROMESH_S3_ACCESS_KEY, NEUROMESH_S3_SECRET_KEY)",
                                  reason=code) from None
        if code == "AccessDenied":
            raise PermissionDenied(f"the object store denied access ({getattr(exc, 'message', exc)})",
                                   reason=code) from None
        raise


def _is_ref(value: Any) -> bool:
    return isinstance(value, ArtifactRef)


class Artifacts:
    """Uploads and downloads of one client, through the object store.

    Parameters
    ----------
    store : ArtifactStore
        The bucket the services read (``Client`` makes it from the S3 settings).
    prefix : str, default "inputs"
        Key prefix of uploads.
    large_array_bytes : int
        Arrays above this many bytes are hashed and uploaded slab by slab.

    Attributes
    ----------
    stats : UploadStats
        Uploads made and skipped.

    Examples
    --------
    >>> artifacts = Artifacts.connect("127.0.0.1:8333", "neuromesh", "neuromesh-secret", "neuromesh")  # doctest: +SKIP
    >>> ref = artifacts.upload_array(np.eye(3))                                   # doctest: +SKIP
    >>> ref.key.startswith("inputs/"), list(ref.shape)                            # doctest: +SKIP
    (True, [3, 3])
    >>> artifacts.upload_array(np.eye(3)) == ref; artifacts.stats.skipped         # doctest: +SKIP
    True
    1
    """

    def __init__(self, store: ArtifactStore, *, prefix: str = INPUT_PREFIX,
                 large_array_bytes: int = LARGE_ARRAY_BYTES) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.large_array_bytes = int(large_array_bytes)
        self.stats = UploadStats()

    @classmethod
    def connect(cls, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool = False,
                region: str | None = None, **options: Any) -> "Artifacts":
        """Artifacts of the bucket ``bucket`` at the S3 server ``endpoint`` (``host:port``).

        The client fails within seconds when the server is away (bounded connect and read
        timeouts, two retries), instead of the ``minio`` SDK's default of minutes.

        Examples
        --------
        >>> Artifacts.connect("127.0.0.1:8333", "neuromesh", "neuromesh-secret", "neuromesh").bucket
        'neuromesh'
        """
        client = make_minio_client(endpoint, access_key, secret_key, secure=secure, region=region)
        return cls(ArtifactStore(client, bucket), **options)

    @property
    def bucket(self) -> str:
        """The bucket of every artifact of this client."""
        return self.store.bucket

    def __repr__(self) -> str:
        return f"Artifacts(s3://{self.bucket}/{self.prefix}/)"

    # --- lookups -----------------------------------------------------------------------------

    def _stored(self, key: str) -> ArtifactRef | None:
        """The ref at ``key``, or None when nothing (finished) is there."""
        try:
            return self.store.stat(key)
        except store_errors.NotFound:
            return None

    def _reuse(self, key: str, sha256: str) -> ArtifactRef | None:
        with translated_store_errors():
            existing = self._stored(key)
        if existing is not None and existing.sha256 == sha256:
            self.stats.skipped += 1
            return existing
        return None

    def _counted(self, ref: ArtifactRef) -> ArtifactRef:
        self.stats.uploaded += 1
        self.stats.bytes_uploaded += int(ref.size_bytes)
        return ref

    def exists(self, key: str) -> bool:
        """Whether anything is stored at ``key``.

        Examples
        --------
        >>> artifacts.exists("inputs/" + "0" * 64)                  # doctest: +SKIP
        False
        """
        with translated_store_errors():
            return self.store.exists(key)

    def stat(self, ref_or_key: ArtifactRef | str) -> ArtifactRef:
        """The full ref of a stored artifact (digest, shape, size) read from the store.

        Examples
        --------
        >>> artifacts.stat(result.latents.ref).shape                 # doctest: +SKIP
        [3000, 3]
        """
        key = ref_or_key.key if _is_ref(ref_or_key) else ref_or_key
        with translated_store_errors():
            return self.store.stat(key)

    # --- uploads -----------------------------------------------------------------------------

    def upload_array(self, array: Any, *, field: str = "array") -> ArtifactRef:
        """Store an N-d array as a Zarr v3 array under its content key; the stored ref.

        Parameters
        ----------
        array : array_like
            A NumPy array (any layout, byte order), a list, or an array-like with ``shape``,
            ``dtype`` and slicing (``np.memmap``, ``zarr.Array``, ``h5py.Dataset``): those larger
            than ``large_array_bytes`` are read slab by slab. Numbers and bool only.
        field : str
            Argument name for error messages.

        Raises
        ------
        InvalidArgument
            A dtype the store cannot hold (strings, objects, structured).

        Examples
        --------
        >>> ref = artifacts.upload_array(np.random.default_rng(0).poisson(2.0, (3000, 40)))  # doctest: +SKIP
        >>> ref.dtype, list(ref.shape)                                                        # doctest: +SKIP
        ('int64', [3000, 40])
        """
        if not (hasattr(array, "shape") and hasattr(array, "dtype") and hasattr(array, "__getitem__")):
            try:
                array = np.asarray(array)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"{field} is not an array: {exc}", field=field) from None
        try:
            dtype = _native(array.dtype)
        except TypeError:
            raise InvalidArgument(f"{field} has dtype {array.dtype!r}, not a NumPy dtype", field=field) from None
        if dtype not in ARRAY_DTYPES:
            raise InvalidArgument(f"{field} has dtype {array.dtype}; arrays are stored with a numeric or bool dtype "
                                  f"({', '.join(sorted(t.name for t in ARRAY_DTYPES))})", field=field,
                                  reason="UNSUPPORTED_DTYPE")
        shape = tuple(int(n) for n in array.shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.large_array_bytes and len(shape) >= 1:
            return self._upload_large_array(array, shape, dtype)
        array = np.asarray(array)
        digest = array_sha256(array)
        key = array_key(digest, dtype, shape, self.prefix)
        existing = self._reuse(key, digest)
        if existing is not None:
            return existing
        with translated_store_errors():
            ref = self.store.put_array(key, array, if_exists="return_existing")
        return self._counted(ref)

    def _upload_large_array(self, array: Any, shape: tuple[int, ...], dtype: np.dtype) -> ArtifactRef:
        digest = array_sha256(array)
        key = array_key(digest, dtype, shape, self.prefix)
        existing = self._reuse(key, digest)
        if existing is not None:
            return existing
        chunks = choose_chunks(shape, dtype.itemsize)
        # slabs of whole chunk rows, so that no chunk is written twice (read-modify-write)
        rows = _slab_rows(shape, dtype.itemsize, SLAB_BYTES, align=chunks[0])
        with translated_store_errors():
            try:
                writer = self.store.create_array(key, shape, dtype, chunks=chunks)
            except store_errors.AlreadyExists:
                # another client is uploading the same content right now, or just did
                ref = self.store.stat(key)
                if ref.sha256 == digest:
                    self.stats.skipped += 1
                    return ref
                raise
            with writer:
                for region, slab in _slabs(array, rows):
                    writer[region] = slab
                ref = writer.finalize()
        return self._counted(ref)

    def upload_bytes(self, data: bytes, *, media_type: str = "application/octet-stream") -> ArtifactRef:
        """Store bytes as one object under ``inputs/<sha256>``; the stored ref.

        Examples
        --------
        >>> artifacts.upload_bytes(b"source,target\\n1,2\\n", media_type="text/csv").key[:7]   # doctest: +SKIP
        'inputs/'
        """
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        key = input_key(digest, self.prefix)
        existing = self._reuse(key, digest)
        if existing is not None:
            return existing
        with translated_store_errors():
            ref = self.store.put_bytes(key, data, media_type=media_type, if_exists="return_existing")
        return self._counted(ref)

    def upload_file(self, path: str | os.PathLike[str], *, media_type: str | None = None,
                    field: str = "path") -> ArtifactRef:
        """Upload a file by streaming it to ``inputs/<sha256 of its bytes>``; the stored ref.

        The file is hashed first (one read); if the store already holds it, nothing is sent.
        Otherwise the ``minio`` SDK uploads it with bounded memory, as one PUT up to 16 MiB and
        as a multipart upload of 16 MiB parts (three at once) above.

        Parameters
        ----------
        path : str or PathLike
        media_type : str, optional
            Default from the suffix (:func:`media_type_of`).
        field : str
            Argument name for error messages.

        Examples
        --------
        >>> ref = artifacts.upload_file("sub-01/dwi/sub-01_dwi.nii.gz")   # doctest: +SKIP
        >>> ref.media_type                                                 # doctest: +SKIP
        'application/x-nifti'
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise InvalidArgument(f"{field}: no file {str(path)!r}" + ("" if path.exists() else
                                  " (to name a stored artifact, pass 's3://bucket/key' or an ArtifactRef)"),
                                  field=field, reason="FILE_NOT_FOUND")
        digest = file_sha256(path)
        key = input_key(digest, self.prefix)
        existing = self._reuse(key, digest)
        if existing is not None:
            return existing
        with translated_store_errors():
            ref = self.store.put_file(key, path, media_type=media_type or media_type_of(path),
                                      if_exists="return_existing")
        return self._counted(ref)

    def upload_json(self, value: Any) -> ArtifactRef:
        """Store a JSON document (keys sorted, so equal values share one key).

        Examples
        --------
        >>> artifacts.upload_json({"bin_ms": 20}).media_type     # doctest: +SKIP
        'application/json'
        """
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"value is not JSON: {exc}", field="value") from None
        return self.upload_bytes(text.encode(), media_type=JSON_MEDIA_TYPE)

    def upload_table(self, table: Any, *, field: str = "table") -> ArtifactRef:
        """Store a table as CSV with a header row (the connectomics services' table format).

        Parameters
        ----------
        table : DataFrame, mapping of column -> values, sequence of row mappings, or path
            A pandas ``DataFrame`` (its index is not written), ``{"pre": [...], "post": [...]}``,
            ``[{"pre": 1, "post": 2}, ...]``, or the path of a CSV file (uploaded as it is).

        Examples
        --------
        >>> artifacts.upload_table({"pre": [1, 2], "post": [2, 3]}).media_type   # doctest: +SKIP
        'text/csv'
        """
        if isinstance(table, (str, os.PathLike)):
            return self.upload_file(table, media_type=CSV_MEDIA_TYPE, field=field)
        return self.upload_bytes(table_to_csv(table, field=field), media_type=CSV_MEDIA_TYPE)

    def upload_folder(self, path: str | os.PathLike[str], names: Sequence[str], *, field: str = "folder") -> str:
        """Upload some files of a folder under one content-addressed prefix; the prefix.

        The prefix is ``inputs/<sha256 of the manifest>``, the manifest listing each file's name
        and sha256, so the same files give the same prefix. Files of ``names`` that the folder
        lacks are left out.

        Examples
        --------
        >>> artifacts.upload_folder("ks_output", ["spike_times.npy", "spike_clusters.npy", "params.py"])  # doctest: +SKIP
        'inputs/6f1c...'
        """
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidArgument(f"{field}: no folder {str(folder)!r}", field=field, reason="FILE_NOT_FOUND")
        files = {name: folder / name for name in names if (folder / name).is_file()}
        if not files:
            raise InvalidArgument(f"{field}: {str(folder)!r} holds none of {', '.join(names)}", field=field)
        digests = {name: file_sha256(p) for name, p in files.items()}
        manifest = "".join(f"{name}\t{digests[name]}\n" for name in sorted(files)).encode()
        prefix = input_key(hashlib.sha256(manifest).hexdigest(), self.prefix)
        for name, file in files.items():
            key = f"{prefix}/{name}"
            if self._reuse(key, digests[name]) is None:
                with translated_store_errors():
                    self._counted(self.store.put_file(key, file, media_type=media_type_of(file),
                                                      if_exists="return_existing"))
        return prefix

    # --- downloads ---------------------------------------------------------------------------

    def _key(self, ref: ArtifactRef | str) -> ArtifactRef | str:
        if _is_ref(ref) and ref.bucket and ref.bucket != self.bucket:
            raise InvalidArgument(f"s3://{ref.bucket}/{ref.key} is in bucket {ref.bucket!r}, but this client reads "
                                  f"{self.bucket!r}", field="ref", reason="WRONG_BUCKET")
        return ref

    def get_array(self, ref: ArtifactRef | str, selection: Any = None, *, dtype: Any = None) -> np.ndarray:
        """An array artifact as a NumPy array: all of it, or ``selection`` (only its chunks are read).

        Parameters
        ----------
        ref : ArtifactRef or str
            The ref or its key.
        selection : tuple of slices and ints, optional
            Basic indexing with unit steps (``np.s_[0:100, :, 5]``).
        dtype : dtype, optional
            Expected dtype; a different stored dtype raises ``InvalidArgument``.

        Examples
        --------
        >>> artifacts.get_array(result.labels.ref, np.s_[10:20]).shape      # doctest: +SKIP
        (10, 256, 256)
        """
        with translated_store_errors():
            if selection is None:
                return self.store.get_array(self._key(ref), dtype=dtype)
            return self.store.read_block(self._key(ref), selection)

    def open_array(self, ref: ArtifactRef | str) -> Any:
        """A read-only ``zarr.Array`` of an array artifact, for volumes larger than memory.

        Examples
        --------
        >>> z = artifacts.open_array(result.labels.ref); z.chunks          # doctest: +SKIP
        (64, 128, 128)
        """
        with translated_store_errors():
            return self.store.open_array(self._key(ref))

    def get_bytes(self, ref: ArtifactRef | str) -> bytes:
        """An object's bytes, checked against its sha256 and size.

        Examples
        --------
        >>> artifacts.get_bytes(result.figure.ref)[:4]                     # doctest: +SKIP
        b'\\x89PNG'
        """
        with translated_store_errors():
            return self.store.get_bytes(self._key(ref))

    def get_json(self, ref: ArtifactRef | str) -> Any:
        """A JSON artifact, parsed.

        Examples
        --------
        >>> artifacts.get_json(result.report.ref)["scores"]["r2"]          # doctest: +SKIP
        [0.93, 0.95]
        """
        with translated_store_errors():
            return self.store.get_json(self._key(ref))

    def get_file(self, ref: ArtifactRef | str, path: str | os.PathLike[str]) -> Path:
        """Download an object to ``path`` (streamed; checked before it replaces ``path``).

        Examples
        --------
        >>> artifacts.get_file(result.streamlines_trk.ref, "tracts.trk")   # doctest: +SKIP
        PosixPath('tracts.trk')
        """
        path = Path(path).expanduser()
        with translated_store_errors():
            self.store.get_file(self._key(ref), path)
        return path

    def get_table(self, ref: ArtifactRef | str, *, as_frame: bool | None = None) -> Any:
        """A table artifact (CSV, or JSON ``{"columns": {...}}``) as a DataFrame or a dict of arrays.

        Parameters
        ----------
        as_frame : bool, optional
            True: a pandas ``DataFrame``; False: a dict of column -> NumPy array; None: a
            DataFrame when pandas is installed.

        Examples
        --------
        >>> edges = artifacts.get_table(result.edge_table.ref)              # doctest: +SKIP
        >>> list(edges.columns)                                              # doctest: +SKIP
        ['source', 'target', 'faces', 'area_nm2']
        """
        data = self.get_bytes(ref)
        return parse_table(data, as_frame=as_frame)

    # --- inputs of calls ---------------------------------------------------------------------

    def named_ref(self, value: Any, *, field: str) -> ArtifactRef | None:
        """The ref of an input that names a stored artifact (a ref, a result's artifact, an
        ``s3://`` URI), else None.

        Examples
        --------
        >>> artifacts.named_ref("s3://neuromesh/derived/x/counts", field="features").key   # doctest: +SKIP
        'derived/x/counts'
        >>> artifacts.named_ref(np.zeros(3), field="features") is None                       # doctest: +SKIP
        True
        """
        if _is_ref(value):
            if not value.key:
                raise InvalidArgument(f"{field} is an ArtifactRef without a key", field=field)
            return ArtifactRef(key=value.key, sha256=value.sha256, bucket=value.bucket)
        method = getattr(value, "__artifact_ref__", None)
        if callable(method):
            return self.named_ref(method(field), field=field)
        if isinstance(value, str) and value.startswith("s3://"):
            bucket, _, key = value[len("s3://"):].partition("/")
            if bucket != self.bucket or not key:
                raise InvalidArgument(f"{field}: {value!r} is not an artifact of this client's bucket "
                                      f"s3://{self.bucket}/", field=field, reason="WRONG_BUCKET")
            return ArtifactRef(key=key)
        return None

    def array_input(self, value: Any, *, field: str) -> ArtifactRef:
        """An array input of a call as a ref: uploaded unless it names a stored array.

        Accepts an ``ArtifactRef``, a result's artifact (``result.latents``), an ``s3://`` URI,
        the path of a ``.npy`` file (memory-mapped, uploaded as an array), or array-likes.

        Examples
        --------
        >>> artifacts.array_input(np.zeros((100, 4)), field="features").key[:7]   # doctest: +SKIP
        'inputs/'
        """
        if value is None:
            raise InvalidArgument(f"{field} is required", field=field)
        named = self.named_ref(value, field=field)
        if named is not None:
            return named
        if isinstance(value, (str, os.PathLike)):
            path = Path(value).expanduser()
            if path.suffix.lower() != ".npy":
                raise InvalidArgument(f"{field}: {str(path)!r} is not a .npy file; pass an array, a .npy path, or "
                                      f"a stored array ('s3://bucket/key', an ArtifactRef)", field=field)
            if not path.is_file():
                raise InvalidArgument(f"{field}: no file {str(path)!r}", field=field, reason="FILE_NOT_FOUND")
            try:
                value = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise InvalidArgument(f"{field}: {str(path)!r} is not a readable .npy array: {exc}",
                                      field=field) from None
        return self.upload_array(value, field=field)

    def file_input(self, value: Any, *, field: str, media_type: str | None = None) -> ArtifactRef:
        """A file input of a call as a ref: a path or bytes uploaded, a stored object named.

        Examples
        --------
        >>> artifacts.file_input("session.nwb", field="nwb").media_type       # doctest: +SKIP
        'application/x-nwb'
        """
        if value is None:
            raise InvalidArgument(f"{field} is required", field=field)
        named = self.named_ref(value, field=field)
        if named is not None:
            return named
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.upload_bytes(bytes(value), media_type=media_type or "application/octet-stream")
        if isinstance(value, (str, os.PathLike)):
            return self.upload_file(value, media_type=media_type, field=field)
        if hasattr(value, "read"):
            return self.upload_bytes(value.read(), media_type=media_type or "application/octet-stream")
        raise InvalidArgument(f"{field} must be a file path, bytes or a stored artifact, not {type(value).__name__}",
                              field=field)

    def volume_input(self, value: Any, *, field: str) -> ArtifactRef:
        """A 3-D volume input (segmentation, contact graphs): an array, a file, or a stored one.

        Files (``.tif``/``.tiff`` stacks, ``.npy``, ``.h5``/``.hdf5``) are uploaded as they are:
        the services read them lazily, memory-mapped where they can. Arrays are stored as Zarr.

        Examples
        --------
        >>> artifacts.volume_input("em/raw.tif", field="raw").media_type      # doctest: +SKIP
        'image/tiff'
        """
        if value is None:
            raise InvalidArgument(f"{field} is required", field=field)
        named = self.named_ref(value, field=field)
        if named is not None:
            return named
        if isinstance(value, (str, os.PathLike)):
            return self.upload_file(value, field=field)
        return self.upload_array(value, field=field)

    def table_input(self, value: Any, *, field: str) -> ArtifactRef:
        """A table input (CSV): uploaded with :meth:`upload_table` unless it names a stored one.

        Examples
        --------
        >>> artifacts.table_input({"pre": [1], "post": [2]}, field="synapses").media_type   # doctest: +SKIP
        'text/csv'
        """
        named = self.named_ref(value, field=field)
        if named is not None:
            return named
        return self.upload_table(value, field=field)


# ------------------------------------------------------------------------------------------------
# tables


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def table_to_csv(table: Any, *, field: str = "table") -> bytes:
    """CSV bytes (header row, ``\\n`` line ends) of a DataFrame, a column mapping or row mappings.

    Examples
    --------
    >>> table_to_csv({"pre": [1, 2], "post": np.array([2, 3])})
    b'pre,post\\n1,2\\n2,3\\n'
    >>> table_to_csv([{"source": 1, "target": 2, "weight": 0.5}])
    b'source,target,weight\\n1,2,0.5\\n'
    """
    if hasattr(table, "to_csv") and hasattr(table, "columns"):   # a pandas DataFrame
        return table.to_csv(index=False, lineterminator="\n").encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if isinstance(table, Mapping):
        names = [str(k) for k in table]
        columns = [np.asarray(v).ravel().tolist() if not isinstance(v, list) else v for v in table.values()]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise InvalidArgument(f"{field}: columns of different lengths "
                                  f"({', '.join(f'{n}: {len(c)}' for n, c in zip(names, columns))})", field=field)
        writer.writerow(names)
        writer.writerows(zip(*columns))
    elif isinstance(table, Sequence) and not isinstance(table, (str, bytes)) and all(
            isinstance(row, Mapping) for row in table):
        names = list(dict.fromkeys(str(k) for row in table for k in row))
        writer.writerow(names)
        for row in table:
            writer.writerow([_plain(row.get(n, "")) for n in names])
    else:
        raise InvalidArgument(f"{field} must be a DataFrame, a mapping of columns, a list of row mappings or a CSV "
                              f"path, not {type(table).__name__}", field=field)
    return out.getvalue().encode()


def _column(values: list[str]) -> np.ndarray:
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values])
        except ValueError:
            continue
    return np.array(values, dtype=object)


def parse_table(data: bytes, *, as_frame: bool | None = None) -> Any:
    """A CSV (or JSON ``{"columns": {name: values}}``) table as a DataFrame or a dict of arrays.

    Examples
    --------
    >>> columns = parse_table(b"source,target,area_nm2\\n1,2,64.0\\n1,3,128.5\\n", as_frame=False)
    >>> columns["target"], columns["area_nm2"]
    (array([2, 3]), array([ 64. , 128.5]))
    >>> parse_table(b'{"columns": {"id": [1, 2], "voxel_count": [10, 20]}}', as_frame=False)["voxel_count"]
    array([10, 20])
    """
    pandas = None
    if as_frame is None or as_frame:
        try:
            import pandas
        except ImportError:
            if as_frame:
                raise ImportError("as_frame=True needs pandas (pip install pandas)") from None
    text = data.decode("utf-8-sig")
    if text.lstrip().startswith("{"):
        document = json.loads(text)
        columns = document.get("columns", document)
        if pandas is not None:
            return pandas.DataFrame(columns)
        return {name: np.asarray(values) for name, values in columns.items()}
    if pandas is not None:
        return pandas.read_csv(io.StringIO(text))
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    return {name: _column([row[i] for row in body]) for i, name in enumerate(header)}


def write_temporary(suffix: str, writer) -> Path:
    """A temporary file made by ``writer(path)``; the caller deletes it."""
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="neuromesh-")
    os.close(fd)
    path = Path(name)
    try:
        writer(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
