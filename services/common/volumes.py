"""Volumes read lazily from the object store: Zarr arrays, .npy files, TIFF stacks, HDF5 datasets.

Every format opens as an object with ``shape``, ``dtype`` and slice reads (``volume[z0:z1, y0:y1,
x0:x1]``, a leading ``...`` allowed), which is all the blockwise core needs, so a volume larger
than memory is only ever read a block at a time:

* a **Zarr v3 array** of the store is opened with :meth:`ArtifactStore.open_array` (each read
  fetches only the chunks it touches);
* a **single object** is downloaded to a scratch folder (disk, not memory) and recognised by its
  first bytes: NumPy ``.npy`` (memory-mapped), **TIFF** (memory-mapped when stored uncompressed
  and contiguous, else read one page, that is one z section, at a time), **HDF5** (the dataset
  named by ``Volume.dataset``, read by h5py slice by slice).

:class:`Region` restricts any of them to a box without reading anything.

Example
-------
>>> import numpy as np
>>> region = Region(np.arange(24).reshape(2, 3, 4), (slice(1, 2), slice(0, 3), slice(1, 3)))
>>> region.shape, region[..., 1:].tolist()
((1, 3, 2), [[[14], [18], [22]]])
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from services.common.errors import DataLoss, NotFound, RequestError, ResourceExhausted
from services.common.store import ARRAY_MEDIA_TYPE, ArtifactStore, normalize_selection


__all__ = ["Region", "StoredArray", "TiffStack", "open_stored", "open_volume", "sniff_format"]

_MAGIC = ((b"\x93NUMPY", "npy"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"),
          (b"MM\x00+", "tiff"), (b"\x89HDF\r\n\x1a\n", "hdf5"))


class Region:
    """A box of a sliceable volume, itself sliceable; reads go to the underlying volume."""

    def __init__(self, base: Any, box: tuple[slice, ...] | None = None) -> None:
        self.base = base
        shape = tuple(int(s) for s in base.shape)
        self.box = tuple(slice(0, n) for n in shape) if box is None else tuple(box)
        self.shape = tuple(s.stop - s.start for s in self.box)
        self.dtype = np.dtype(base.dtype)
        self.ndim = len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, selection: Any) -> np.ndarray:
        region, out_shape = normalize_selection(selection, self.shape)
        shifted = tuple(slice(b.start + r.start, b.start + r.stop) for b, r in zip(self.box, region))
        return np.asarray(self.base[shifted]).reshape(out_shape)

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)


class StoredArray:
    """A Zarr array of the store, read by slices; a chunk that fails to decode is DATA_LOSS.

    (zarr raises ValueError for a chunk whose checksum fails, which would otherwise pass for bad
    input; :meth:`ArtifactStore.read_block` makes the same translation.)
    """

    def __init__(self, array, bucket: str, key: str) -> None:
        self.array, self.bucket, self.key = array, bucket, key
        self.shape = tuple(int(s) for s in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.chunks = tuple(array.chunks)
        self.ndim = len(self.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[selection])
        except ValueError as exc:
            raise DataLoss(f"array s3://{self.bucket}/{self.key} has a corrupt or truncated chunk: {exc}",
                           metadata={"bucket": self.bucket, "key": self.key}) from exc


def open_stored(store: ArtifactStore, ref: ArtifactRef) -> StoredArray:
    """A finalized array of the store, opened for lazy slice reads."""
    return StoredArray(store.open_array(ref), store.bucket, ref.key)


class TiffStack:
    """A TIFF stack read lazily: memory-mapped when possible, else one page (z section) at a time."""

    def __init__(self, path: Path, field: str, max_bytes: int | None = None) -> None:
        import tifffile

        try:
            self._tiff = tifffile.TiffFile(path)
            series = self._tiff.series[0]
        except Exception as exc:  # a malformed file: bad input, not a server fault
            raise RequestError(f"{field} is not a readable TIFF file: {exc}", field=field) from None
        self.shape = tuple(int(s) for s in series.shape)
        self.dtype = np.dtype(series.dtype)
        self._memmap = None
        with contextlib.suppress(Exception):  # compressed or fragmented: no memory map
            self._memmap = tifffile.memmap(path, mode="r")
        self._pages = None
        pages = list(series.pages)
        if self._memmap is None and len(self.shape) == 3 and len(pages) == self.shape[0]:
            self._pages = pages
        self._series = series
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if self._memmap is None and self._pages is None and max_bytes is not None and nbytes > max_bytes:
            self.close()
            raise ResourceExhausted(f"{field} is a TIFF whose {nbytes} bytes are compressed in one piece (not one "
                                    f"page per z section), so it can only be read whole, and this service loads at "
                                    f"most NEUROMESH_MAX_INPUT_BYTES={max_bytes}: store it as a Zarr array or one "
                                    f"page per section", field=field)

    def __getitem__(self, selection: Any) -> np.ndarray:
        if self._memmap is not None:
            return np.asarray(self._memmap[selection])
        if self._pages is None:       # a single page holding the stack: read it once
            self._memmap = self._series.asarray()
            return np.asarray(self._memmap[selection])
        region, out_shape = normalize_selection(selection, self.shape)
        sections = [self._pages[z].asarray()[region[1], region[2]] for z in range(region[0].start, region[0].stop)]
        data = np.stack(sections) if sections else np.zeros((0,) + tuple(s.stop - s.start for s in region[1:]),
                                                              self.dtype)
        return data.reshape(out_shape)

    def close(self) -> None:
        self._tiff.close()


def sniff_format(path: Path) -> str | None:
    """``"npy"``, ``"tiff"`` or ``"hdf5"`` from a file's first bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(8)
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _hdf5_datasets(handle) -> list[str]:
    import h5py

    names: list[str] = []
    handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def open_volume(store: ArtifactStore, ref: ArtifactRef, dataset: str, field: str, scratch: Path,
                stack: contextlib.ExitStack, *, max_bytes: int | None = None) -> Any:
    """The volume ``ref`` points at, opened for lazy slice reads (blocking I/O: call it in a thread).

    Parameters
    ----------
    ref : ArtifactRef
        Resolved (its media type tells a Zarr array from a single object).
    dataset : str
        The HDF5 dataset path; must be empty for other formats.
    field : str
        The request field, for messages (``"raw"``, ``"ground_truth"``).
    scratch : Path
        Folder that downloaded files go to.
    stack : contextlib.ExitStack
        Open files are registered on it, to be closed when the call ends.
    max_bytes : int, optional
        A format that can only be read whole (a TIFF compressed in one piece) is refused
        (RESOURCE_EXHAUSTED) above this size; every other format is read by slices.
    """
    if ref.media_type == ARRAY_MEDIA_TYPE:
        if dataset:
            raise RequestError(f"{field}.dataset names an HDF5 dataset, but {field} is a Zarr array",
                               field=f"{field}.dataset")
        return open_stored(store, ref)
    path = scratch / f"{field}.volume"
    store.get_file(ref, path)
    kind = sniff_format(path)
    if kind is None:
        raise RequestError(f"{field} s3://{ref.bucket}/{ref.key} is neither a Zarr array nor a .npy, TIFF or HDF5 "
                           f"file", reason="UNKNOWN_FORMAT", field=field)
    if kind != "hdf5" and dataset:
        raise RequestError(f"{field}.dataset is for HDF5 files; {field} is a {kind} file", field=f"{field}.dataset")
    if kind == "npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise RequestError(f"{field} is not a readable .npy array: {exc}", field=field) from None
    if kind == "tiff":
        tiff = TiffStack(path, field, max_bytes)
        stack.callback(tiff.close)
        return tiff
    import h5py

    handle = stack.enter_context(h5py.File(path, "r"))
    if not dataset:
        raise RequestError(f"{field} is an HDF5 file: set {field}.dataset to one of its datasets "
                           f"{_hdf5_datasets(handle)[:20]}", field=f"{field}.dataset")
    node = handle.get(dataset)
    if node is None or not isinstance(node, h5py.Dataset):
        raise NotFound(f"{field}.dataset {dataset!r} is not a dataset of the HDF5 file s3://{ref.bucket}/{ref.key}; "
                       f"it has {_hdf5_datasets(handle)[:20]}", reason="DATASET_NOT_FOUND", field=f"{field}.dataset")
    return node
