"""Results of calls: the answer's numbers at once, its stored artifacts read only when asked for.

A service answers with a message of numbers and ``ArtifactRef``s. The SDK wraps it:

* :class:`Result` (a subclass per RPC) and :class:`Section` (a part of one: the scores, one
  segmentation, a trace) expose every field of the message as an attribute, converted for
  scientific Python: repeated numbers as NumPy arrays, maps as dicts, enums by name, sub-messages
  as sections, unset optional fields and sub-messages as None, and refs as :class:`Artifact`;
* an :class:`Artifact` downloads nothing until asked: ``.array()`` (``np.asarray(artifact)``
  works too), ``.bytes()``, ``.json()``, ``.table()``, ``.save(path)``, ``.show()``;
* shortcuts by field name: ``result.array("latents")``, ``result.figure_png()``,
  ``result.table("edge_table")``, ``result.json("report")``, ``result.show()`` in a notebook;
  a name may be a dotted path with indices, ``"segmentations[0].labels"``;
* a result passed as the input of another call stands for its main artifact: the counts of a
  binned recording, the binned counts of a simulation, the model of a training, the labels of
  a segmentation.

Example
-------
>>> from neuromesh.common.v1.artifact_pb2 import ArtifactRef
>>> from neuromesh.reduction.v1 import reduction_pb2 as R
>>> message = R.FitResult(latents=ArtifactRef(bucket="neuromesh", key="derived/fit/latents", shape=[300, 3],
...                                           dtype="float32", media_type="application/vnd.zarr.v3"),
...                       scores=R.ReductionScores(explained_variance_ratio=[0.5, 0.2, 0.1]))
>>> result = Result(message, artifacts=None)
>>> result.scores.explained_variance_ratio
array([0.5, 0.2, 0.1])
>>> result.latents
Artifact('s3://neuromesh/derived/fit/latents', shape=(300, 3), dtype=float32)
>>> result.model is None
True
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
from google.protobuf.descriptor import FieldDescriptor

from neuromesh.common.v1.artifact_pb2 import ArtifactRef

from .errors import InvalidArgument, NotFound

__all__ = ["Artifact", "Result", "Section"]

ARRAY_MEDIA_TYPE = "application/vnd.zarr.v3"
PNG_MEDIA_TYPE = "image/png"

_REF_NAME = ArtifactRef.DESCRIPTOR.full_name
_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d+)\])?$")

#: What a result message stands for when passed as an input of another call (a field path)
INPUT_FIELDS = {
    "neuromesh.decoding.v1.BinRecordingResponse": "counts",
    "neuromesh.decoding.v1.TrainResult": "model",
    "neuromesh.decoding.v1.PredictResponse": "predictions",
    "neuromesh.reduction.v1.FitResult": "model",
    "neuromesh.reduction.v1.TransformResponse": "latents",
    "neuromesh.simulation.v1.SimulateResult": "binned_counts",
    "neuromesh.segmentation.v1.TrainBoundaryModelResult": "model",
    "neuromesh.segmentation.v1.Checkpoint": "ref",
    "neuromesh.segmentation.v1.ThresholdSegmentation": "labels",
    "neuromesh.connectomics.v1.ConnectivityMatrix": "matrix",
}


def _display_png(data: bytes) -> None:
    try:
        from IPython.display import Image, display
    except ImportError:
        raise ImportError("show() displays figures in IPython and Jupyter; elsewhere write figure_png() to a "
                          "file (result.save('figure', 'figure.png'))") from None
    display(Image(data=data, format="png"))


class Artifact:
    """One stored artifact, read from the object store only when asked.

    Parameters
    ----------
    ref : ArtifactRef
        Where it is and what it is (media type; shape and dtype for arrays).
    artifacts : Artifacts
        The client's store access.
    name : str
        The result field it came from, for messages.

    Examples
    --------
    >>> latents = result.latents                               # doctest: +SKIP
    >>> latents.shape, latents.dtype                            # no download yet   # doctest: +SKIP
    ((3000, 3), dtype('float32'))
    >>> x = latents.array()                                     # the whole array   # doctest: +SKIP
    >>> first = latents.array(np.s_[:100])                      # only the chunks of the first 100 rows   # doctest: +SKIP
    >>> np.asarray(latents).mean(axis=0)                        # doctest: +SKIP
    array([ 1.2e-08, -3.1e-09,  4.4e-09], dtype=float32)
    """

    def __init__(self, ref: ArtifactRef, artifacts: Any, name: str = "") -> None:
        self.ref = ref
        self._artifacts = artifacts
        self.name = name

    # --- what it is, without a download

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.ref.bucket}/{self.ref.key}"

    @property
    def media_type(self) -> str:
        return self.ref.media_type

    @property
    def sha256(self) -> str:
        return self.ref.sha256

    @property
    def size_bytes(self) -> int:
        return int(self.ref.size_bytes)

    @property
    def is_array(self) -> bool:
        return self.ref.media_type == ARRAY_MEDIA_TYPE

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The array's shape; None for files."""
        return tuple(int(n) for n in self.ref.shape) if self.is_array else None

    @property
    def dtype(self) -> np.dtype | None:
        """The array's dtype; None for files."""
        return np.dtype(self.ref.dtype) if self.is_array and self.ref.dtype else None

    def __repr__(self) -> str:
        if self.is_array:
            return f"Artifact({self.uri!r}, shape={self.shape}, dtype={self.dtype})"
        return f"Artifact({self.uri!r}, media_type={self.media_type!r}, size_bytes={self.size_bytes})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Artifact) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash((self.ref.bucket, self.ref.key, self.ref.sha256))

    def __artifact_ref__(self, field: str = "") -> ArtifactRef:
        return self.ref

    # --- reads

    def _need(self) -> Any:
        if self._artifacts is None:
            raise NotFound(f"{self.uri} cannot be read: this result is not bound to a client's store")
        return self._artifacts

    def array(self, selection: Any = None, *, dtype: Any = None) -> np.ndarray:
        """The array, or ``array[selection]`` reading only the chunks it touches.

        Parameters
        ----------
        selection : tuple of slices and ints, optional
            Basic indexing, unit steps (``np.s_[0:10, :, 5]``).
        dtype : dtype, optional
            Expected dtype (checked).

        Examples
        --------
        >>> labels = result.segmentations[0].labels.array(np.s_[0:16])   # doctest: +SKIP
        """
        if not self.is_array:
            raise InvalidArgument(f"{self.uri} is {self.media_type or 'a file'}, not a Zarr array; use .bytes(), "
                                  f".json() or .table()", field=self.name)
        return self._need().get_array(self.ref, selection, dtype=dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.array()
        return array if dtype is None else array.astype(dtype, copy=False)

    def open(self) -> Any:
        """A read-only ``zarr.Array``, for arrays larger than memory (reads chunk by chunk).

        Examples
        --------
        >>> z = result.segmentations[0].labels.open(); z[0:64].max()     # doctest: +SKIP
        """
        return self._need().open_array(self.ref)

    def bytes(self) -> bytes:
        """The object's bytes (checked against its sha256).

        Examples
        --------
        >>> png = result.figure.bytes()                                   # doctest: +SKIP
        """
        return self._need().get_bytes(self.ref)

    def text(self) -> str:
        """The object as UTF-8 text.

        Examples
        --------
        >>> print(result.graphml.text()[:38])                              # doctest: +SKIP
        <?xml version='1.0' encoding='utf-8'?>
        """
        return self.bytes().decode("utf-8")

    def json(self) -> Any:
        """A JSON object, parsed.

        Examples
        --------
        >>> result.report.json()["request"]                               # doctest: +SKIP
        """
        return self._need().get_json(self.ref)

    def table(self, *, as_frame: bool | None = None) -> Any:
        """A table (CSV, or JSON columns) as a pandas DataFrame, or a dict of arrays.

        Examples
        --------
        >>> result.edge_table.table().head()                              # doctest: +SKIP
        """
        return self._need().get_table(self.ref, as_frame=as_frame)

    def save(self, path: str | Path) -> Path:
        """Write the artifact to ``path``: files as they are, arrays as ``.npy``.

        Examples
        --------
        >>> result.streamlines_trk.save("tracts.trk")                     # doctest: +SKIP
        PosixPath('tracts.trk')
        """
        path = Path(path).expanduser()
        if self.is_array:
            np.save(path, self.array(), allow_pickle=False)
            return path
        return self._need().get_file(self.ref, path)

    def show(self) -> None:
        """Display a PNG figure in IPython or Jupyter.

        Examples
        --------
        >>> result.figure.show()                                           # doctest: +SKIP
        """
        if self.media_type != PNG_MEDIA_TYPE:
            raise InvalidArgument(f"{self.uri} is {self.media_type}, not a PNG figure", field=self.name)
        _display_png(self.bytes())

    def _repr_png_(self) -> bytes | None:
        # Jupyter shows a figure artifact as the image when it is the cell's value
        return self.bytes() if self.media_type == PNG_MEDIA_TYPE and self._artifacts is not None else None


class Section:
    """A message of a result (or the whole result), fields as attributes, artifacts lazy.

    Parameters
    ----------
    message : protobuf message
    artifacts : Artifacts or None
        Store access for the artifacts (None: numbers only).
    service, method : str
        The call it came from.

    Examples
    --------
    >>> from neuromesh.segmentation.v1 import segmentation_pb2 as S
    >>> section = Section(S.SegmentationScores(voi_split=0.1, voi_merge=0.3), artifacts=None)
    >>> round(section.voi_split + section.voi_merge, 3), section.to_dict()["voi_merge"]
    (0.4, 0.3)
    """

    _figure: ClassVar[str | None] = None

    def __init__(self, message: Any, artifacts: Any, *, service: str = "", method: str = "") -> None:
        self._message = message
        self._artifacts = artifacts
        self._service = service
        self._method = method

    @property
    def message(self) -> Any:
        """The protobuf message as the service sent it."""
        return self._message

    # --- fields as attributes

    def _field(self, name: str) -> FieldDescriptor:
        descriptor = self._message.DESCRIPTOR.fields_by_name.get(name)
        if descriptor is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}; fields: "
                                 f"{', '.join(self._message.DESCRIPTOR.fields_by_name)}")
        return descriptor

    def _convert(self, descriptor: FieldDescriptor, value: Any, path: str) -> Any:
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if descriptor.message_type.full_name == _REF_NAME:
                return Artifact(value, self._artifacts, path)
            return _section_for(value, self._artifacts, self._service, self._method)
        if descriptor.type == FieldDescriptor.TYPE_ENUM:
            return descriptor.enum_type.values_by_number[value].name if value in \
                descriptor.enum_type.values_by_number else value
        return value

    def _value(self, name: str) -> Any:
        descriptor = self._field(name)
        value = getattr(self._message, name)
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            value_field = descriptor.message_type.fields_by_name["value"]
            return {k: self._convert(value_field, v, f"{name}[{k}]") for k, v in value.items()}
        if descriptor.is_repeated:
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE or descriptor.type == FieldDescriptor.TYPE_ENUM:
                return [self._convert(descriptor, v, f"{name}[{i}]") for i, v in enumerate(value)]
            if descriptor.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                return list(value)
            if descriptor.type == FieldDescriptor.TYPE_BOOL:
                return np.array(value, dtype=bool)
            if descriptor.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
                return np.array(value, dtype=np.float64)
            return np.array(value, dtype=np.int64)
        if descriptor.has_presence and not self._message.HasField(name):
            return None
        return self._convert(descriptor, value, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._value(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._message.DESCRIPTOR.fields_by_name))

    def field_names(self) -> list[str]:
        """The names of the message's fields.

        Examples
        --------
        >>> from neuromesh.segmentation.v1 import segmentation_pb2 as S
        >>> Section(S.Box(z_stop=4), None).field_names()[:2]
        ['z_start', 'z_stop']
        """
        return list(self._message.DESCRIPTOR.fields_by_name)

    # --- paths to artifacts

    def _resolve(self, path: str) -> Any:
        node: Any = self
        for step in path.split("."):
            match = _STEP.match(step)
            if match is None or not isinstance(node, Section):
                raise InvalidArgument(f"{path!r} is not a field path of {type(self).__name__} (like 'latents' or "
                                      f"'segmentations[0].labels')", field="name")
            name, index = match.group(1), match.group(2)
            try:
                node = node._value(name)
            except AttributeError as exc:
                raise InvalidArgument(str(exc), field="name") from None
            if index is not None:
                if not isinstance(node, list):
                    raise InvalidArgument(f"{name} in {path!r} is not a list", field="name")
                try:
                    node = node[int(index)]
                except IndexError:
                    raise InvalidArgument(f"{name} has {len(node)} entries; {path!r} asks for [{index}]",
                                          field="name") from None
        return node

    def artifact(self, path: str) -> Artifact:
        """The artifact at a field path; ``NotFound`` when that field is unset in this result.

        Examples
        --------
        >>> result.artifact("segmentations[0].labels").shape          # doctest: +SKIP
        (64, 256, 256)
        """
        node = self._resolve(path)
        if node is None or (isinstance(node, Artifact) and not node.key):
            raise NotFound(f"this {type(self).__name__} has no {path} (the field is unset)", field=path)
        if not isinstance(node, Artifact):
            raise InvalidArgument(f"{path!r} of {type(self).__name__} is not an artifact", field="name")
        return node

    def refs(self) -> dict[str, Artifact]:
        """Every artifact the message (and its sections) holds, by field path.

        Examples
        --------
        >>> sorted(result.refs())[:3]                                  # doctest: +SKIP
        ['figure', 'model', 'predictions']
        """
        return dict(self._walk(""))

    def _walk(self, prefix: str) -> Iterator[tuple[str, Artifact]]:
        for descriptor, _ in self._message.ListFields():
            name = descriptor.name
            value = self._value(name)
            items = value.items() if isinstance(value, dict) else (
                enumerate(value) if isinstance(value, list) else [(None, value)])
            for index, item in items:
                path = f"{prefix}{name}" + ("" if index is None else f"[{index}]")
                if isinstance(item, Artifact) and item.key:
                    yield path, item
                elif isinstance(item, Section):
                    yield from item._walk(path + ".")

    # --- shortcuts

    def array(self, name: str, selection: Any = None) -> np.ndarray:
        """Download the array at field path ``name`` (or ``array[selection]``).

        Examples
        --------
        >>> latents = result.array("latents")                         # doctest: +SKIP
        """
        return self.artifact(name).array(selection)

    def bytes(self, name: str) -> bytes:
        """Download the object at field path ``name``.

        Examples
        --------
        >>> graphml = result.bytes("graphml")                         # doctest: +SKIP
        """
        return self.artifact(name).bytes()

    def json(self, name: str = "report") -> Any:
        """Download and parse the JSON at field path ``name`` (the stored report by default).

        Examples
        --------
        >>> result.json()["scores"]                                   # doctest: +SKIP
        """
        return self.artifact(name).json()

    def table(self, name: str, *, as_frame: bool | None = None) -> Any:
        """Download the table at field path ``name``: a DataFrame (pandas) or a dict of arrays.

        Examples
        --------
        >>> result.table("edge_table", as_frame=False)["area_nm2"]      # doctest: +SKIP
        """
        return self.artifact(name).table(as_frame=as_frame)

    def _figure_path(self, name: str | None) -> str:
        if name is not None:
            return name
        if self._figure is not None:
            return self._figure
        for path, artifact in self._walk(""):
            if artifact.media_type == PNG_MEDIA_TYPE:
                return path
        raise NotFound(f"this {type(self).__name__} has no figure")

    def figure_png(self, name: str | None = None) -> bytes:
        """The PNG bytes of a figure: ``name``, or the result's main figure.

        Examples
        --------
        >>> open("raster.png", "wb").write(result.figure_png())       # doctest: +SKIP
        """
        return self.artifact(self._figure_path(name)).bytes()

    def show(self, name: str | None = None) -> None:
        """Display a figure (the main one by default) in IPython or Jupyter.

        Examples
        --------
        >>> result.show("trajectories_figure")                       # doctest: +SKIP
        """
        _display_png(self.figure_png(name))

    def save(self, name: str, path: str | Path) -> Path:
        """Write the artifact at field path ``name`` to ``path`` (arrays as ``.npy``).

        Examples
        --------
        >>> result.save("fa", "sub-01_fa.nii.gz")                     # doctest: +SKIP
        PosixPath('sub-01_fa.nii.gz')
        """
        return self.artifact(name).save(path)

    def to_dict(self) -> dict[str, Any]:
        """The message as plain Python: numbers, lists, dicts, artifacts as ``s3://`` URIs.

        Examples
        --------
        >>> from neuromesh.decoding.v1 import decoding_pb2 as D
        >>> Section(D.EvaluationScores(r2=[0.9, 0.8], n_tested=100), None).to_dict()
        {'r2': [0.9, 0.8], 'n_tested': 100}
        """
        out: dict[str, Any] = {}
        for descriptor, _ in self._message.ListFields():
            out[descriptor.name] = _plain(self._value(descriptor.name))
        return out

    # --- as an input of another call

    def __artifact_ref__(self, field: str = "") -> ArtifactRef:
        path = INPUT_FIELDS.get(self._message.DESCRIPTOR.full_name)
        if path is None:
            raise InvalidArgument(f"{field or 'an input'}: a {type(self).__name__} does not stand for one artifact; "
                                  f"pass one of its artifacts ({', '.join(sorted(self.refs())) or 'none'})",
                                  field=field)
        return self.artifact(path).ref

    def __repr__(self) -> str:
        shown = []
        for descriptor, _ in self._message.ListFields():
            value = self._value(descriptor.name)
            if isinstance(value, (int, float, str, bool)) and not isinstance(value, Artifact):
                shown.append(f"{descriptor.name}={value!r}" if not isinstance(value, float) else
                             f"{descriptor.name}={value:.6g}")
        artifacts = sorted(self.refs())
        body = ", ".join(shown[:8] + (["..."] if len(shown) > 8 else []))
        if artifacts:
            body += (", " if body else "") + f"artifacts: {', '.join(artifacts[:8])}" + (
                ", ..." if len(artifacts) > 8 else "")
        return f"{type(self).__name__}({body})"


def _plain(value: Any) -> Any:
    if isinstance(value, Artifact):
        return value.uri
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: Section classes by message type, filled by the service modules (e.g. the segmentation's
#: ThresholdSegmentation, whose labels get a shortcut)
SECTION_TYPES: dict[str, type[Section]] = {}


def _section_for(message: Any, artifacts: Any, service: str, method: str) -> Section:
    cls = SECTION_TYPES.get(message.DESCRIPTOR.full_name, Section)
    return cls(message, artifacts, service=service, method=method)


class Result(Section):
    """The answer of one call. Subclasses per RPC add shortcuts and name their main figure.

    Examples
    --------
    >>> result = client.simulation.simulate(network, duration_ms=1000)   # doctest: +SKIP
    >>> result.n_spikes, result.populations[0].rate_hz                   # doctest: +SKIP
    (48213, 12.1)
    >>> result.show()                                                    # doctest: +SKIP
    """

    @property
    def call(self) -> str:
        """``service.Method`` of the call that answered.

        Examples
        --------
        >>> Result(ArtifactRef(), None, service="decoding", method="Train").call
        'decoding.Train'
        """
        return f"{self._service}.{self._method}"
