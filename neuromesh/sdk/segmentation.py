"""``client.segmentation``: neurons segmented in electron-microscopy volumes.

Volumes are 3-D, axes (z, y, x): NumPy arrays (stored as Zarr), TIFF stacks, ``.npy`` or HDF5
files (uploaded as they are and read lazily by the service), or stored arrays. The service trains
a 3-D U-Net on boundaries (:meth:`SegmentationClient.train_boundary_model`) or uses the classical
smoothed-intensity map, segments block by block (:meth:`~SegmentationClient.segment`), and
scores against ground truth (:meth:`~SegmentationClient.score`).

Example
-------
>>> with Client.local() as client:                                                   # doctest: +SKIP
...     seg = client.segmentation.segment("em/raw.tif", voxel_size_nm=(40, 4, 4), thresholds=[0.3, 0.5],
...                                       ground_truth="em/neurons.tif")
...     labels = seg.labels(0.5)                                # uint64 (z, y, x)
...     seg.segmentation(0.5).scores.cremi_score
...     seg.show()
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from neuromesh.segmentation.v1 import segmentation_pb2 as S
from neuromesh.segmentation.v1 import segmentation_pb2_grpc

from .errors import InvalidArgument
from .fields import box, enum_value, finite, integer, non_negative, number_list, positive
from .progress import ProgressCallback
from .results import SECTION_TYPES, Result, Section
from .service import ServiceClient

__all__ = ["BoundaryModel", "SegmentResult", "SegmentationClient", "SegmentationScoreResult",
           "ThresholdSegmentation", "volume"]


def _check_3d(value: Any, field: str) -> None:
    # in-memory and lazy arrays only (NumPy, zarr, h5py have ndim); refs and paths are checked by the service
    if hasattr(value, "ndim") and value.ndim != 3:
        raise InvalidArgument(f"{field} must be a 3-D volume (z, y, x), got shape {tuple(value.shape)}", field=field,
                              reason="SHAPE_MISMATCH")


def volume(artifacts: Any, value: Any, *, field: str, dataset: str = "") -> S.Volume:
    """A ``Volume`` message for a volume input (array, file path or stored), uploading it if needed.

    Examples
    --------
    >>> volume(client.artifacts, "stack.tif", field="raw").ref.media_type     # doctest: +SKIP
    'image/tiff'
    """
    _check_3d(value, field)
    if not isinstance(dataset, str):
        raise InvalidArgument(f"{field}_dataset must be a string (the HDF5 dataset path)", field=f"{field}.dataset")
    return S.Volume(ref=artifacts.volume_input(value, field=field), dataset=dataset)


def _message(value: Any, cls: type, field: str, enums: Mapping[str, Any] = {}) -> Any:
    """A sub-message from a message or a dict of its fields (enum values by short name)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be a dict of {cls.__name__} fields or a {cls.__name__}, not "
                              f"{type(value).__name__}", field=field)
    known = set(cls.DESCRIPTOR.fields_by_name)
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidArgument(f"{field} has no field {', '.join(map(repr, unknown))}; {cls.__name__} fields: "
                              f"{', '.join(cls.DESCRIPTOR.fields_by_name)}", field=f"{field}.{unknown[0]}")
    values = {k: (enum_value(enums[k], v, field=f"{field}.{k}") if k in enums else v) for k, v in value.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{field}: {exc}", field=field) from None


class ThresholdSegmentation(Section):
    """The segmentation at one threshold: ``threshold``, ``labels`` (uint64 Zarr), ``n_segments``,
    ``segment_table`` (JSON columns), ``scores`` with ground truth. As an input it stands for
    ``labels``.

    Examples
    --------
    >>> entry = seg.segmentations[0]                                 # doctest: +SKIP
    >>> entry.table("segment_table").sort_values("voxel_count").tail()  # doctest: +SKIP
    """


SECTION_TYPES[S.ThresholdSegmentation.DESCRIPTOR.full_name] = ThresholdSegmentation


class BoundaryModel(Result):
    """A trained boundary U-Net (result of TrainBoundaryModel): ``model`` (a checkpoint for
    :meth:`SegmentationClient.segment`), ``checkpoints``, ``best_iteration``, ``final_loss``,
    ``validation_iterations`` and ``validation_losses``, ``loss_curve``, ``patch_shape``,
    ``network``, ``device``, ``figure``, ``report``. As an input it stands for ``model``.

    Examples
    --------
    >>> trained.final_loss, trained.device                            # doctest: +SKIP
    (0.21, 'cpu')
    """

    _figure = "figure"


class SegmentResult(Result):
    """A segmented volume (result of Segment): ``fragments``, ``boundaries`` or ``affinities``,
    ``segmentations`` (one :class:`ThresholdSegmentation` per threshold), ``figure``, ``report``,
    ``block_shape``, ``halo``, ``n_blocks``, ``device``. As an input it stands for the labels
    of its only threshold.

    Examples
    --------
    >>> seg.labels().shape, seg.segmentation(0.5).n_segments          # doctest: +SKIP
    ((64, 256, 256), 311)
    """

    _figure = "figure"

    def segmentation(self, threshold: float | None = None) -> ThresholdSegmentation:
        """The segmentation at ``threshold`` (None: the only one).

        Examples
        --------
        >>> seg.segmentation(0.3).scores.voi                        # doctest: +SKIP
        0.92
        """
        entries = self.segmentations
        if threshold is None:
            if len(entries) != 1:
                raise InvalidArgument(f"this result has segmentations at thresholds "
                                      f"{[e.threshold for e in entries]}; name one", field="threshold")
            return entries[0]
        for entry in entries:
            if abs(entry.threshold - float(threshold)) < 1e-9:
                return entry
        raise InvalidArgument(f"no segmentation at threshold {threshold}; thresholds: "
                              f"{[e.threshold for e in entries]}", field="threshold")

    def labels(self, threshold: float | None = None, selection: Any = None) -> np.ndarray:
        """The label volume at ``threshold`` (None: the only one), or a block of it.

        Examples
        --------
        >>> seg.labels(0.5, np.s_[0:8]).dtype                        # doctest: +SKIP
        dtype('uint64')
        """
        return self.segmentation(threshold).labels.array(selection)

    def __artifact_ref__(self, field: str = ""):
        try:
            return self.segmentation(None).labels.ref
        except InvalidArgument:
            raise InvalidArgument(f"{field or 'an input'}: this result holds several segmentations; pass "
                                  f"result.segmentation(threshold)", field=field) from None


class SegmentBlocksResult(Result):
    """One stage of some blocks (result of SegmentBlocks): ``stage``, ``block_indices``, and per
    block, in that order, ``boundaries`` or ``fragments`` (stored arrays of each block's core),
    with the tiling's ``n_blocks``, ``block_shape`` and ``halo``. The fragments stage also gives
    ``stitching``: each block's labels over its read where it meets its neighbours, which
    :meth:`SegmentationClient.merge_segment_blocks` needs as ``block_stitching`` to join the
    fragments that block faces cut.

    Examples
    --------
    >>> part.block_indices, len(part.boundaries), part.n_blocks          # doctest: +SKIP
    (array([0, 1, 2, 3]), 4, 8)
    """


class SegmentationScoreResult(Result):
    """Scores of a segmentation against ground truth (answer of Score): ``scores`` with
    ``voi_split``, ``voi_merge``, ``voi``, ``adapted_rand_error``, ``rand_precision``,
    ``rand_recall``, ``cremi_score``, ``n_voxels``.

    Examples
    --------
    >>> client.segmentation.score(labels, truth).scores.cremi_score    # doctest: +SKIP
    0.31
    """


class SegmentationClient(ServiceClient):
    """The segmentation service (``neuromesh.segmentation.v1.SegmentationService``).

    Examples
    --------
    >>> client.segmentation                                          # doctest: +SKIP
    <SegmentationClient segmentation at 127.0.0.1:50054>
    """

    name = "segmentation"
    proto_service = "neuromesh.segmentation.v1.SegmentationService"
    stub_class = segmentation_pb2_grpc.SegmentationServiceStub

    def train_boundary_model(self, raw: Any, labels: Any, *, raw_dataset: str = "", labels_dataset: str = "",
                             train_region: Any = None, validation_region: Any = None, network: Any = None,
                             iterations: int = 0, batch_size: int = 0, patch_shape: Sequence[int] = (),
                             learning_rate: float = 0.0, seed: int = 0, checkpoint_every: int = 0,
                             no_augmentation: bool = False, progress: bool | None = None,
                             on_progress: ProgressCallback | None = None,
                             timeout: float | None = None) -> BoundaryModel:
        """Train a 3-D U-Net to predict boundaries (affinities or a boundary map) from raw EM.

        Streams progress (stages "load", "train", "checkpoint", "store"); Ctrl-C cancels the
        training at its next report and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        raw : array_like, path or stored volume
            EM intensities (z, y, x): integers (uint8 divided by 255) or floats in [0, 1].
        labels : array_like, path or stored volume
            Object ids of raw's shape; 0 = unlabelled.
        raw_dataset, labels_dataset : str
            HDF5 files only: the dataset path in the file ("volumes/raw").
        train_region, validation_region : slices, dict or Box, optional
            Boxes in voxels, e.g. ``np.s_[0:48, :, :]``; unset: train on the whole volume, and
            validate on none.
        network : dict or UNetConfig, optional
            Architecture: ``levels``, ``base_channels``, ``channel_multiplier``, ``anisotropic``,
            ``anisotropic_levels``, ``target`` ("affinities", "boundaries"), ``norm`` ("group",
            "instance"), ``upsampling`` ("transposed", "trilinear").
        iterations : int, default 0
            Optimiser steps; 0 means 2000.
        batch_size : int, default 0
            Patches per step; 0 means 2.
        patch_shape : three ints, optional
            Training patch (z, y, x); empty: up to 32 per axis.
        learning_rate : float, default 0
            Adam's; 0 means 0.001.
        seed : int, default 0
        checkpoint_every : int, default 0
            Iterations between stored checkpoints; 0 stores only the last.
        no_augmentation : bool, default False
            Turn off flips, transpositions, intensity jitter and missing sections.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        BoundaryModel

        Examples
        --------
        >>> unet = client.segmentation.train_boundary_model(
        ...     raw, truth, train_region=np.s_[0:48], validation_region=np.s_[48:64], iterations=500,
        ...     network={"levels": 3, "anisotropic": True, "target": "affinities"})       # doctest: +SKIP
        >>> seg = client.segmentation.segment(raw, model=unet)                           # doctest: +SKIP
        """
        _check_3d(raw, "raw")
        _check_3d(labels, "labels")
        request = S.TrainBoundaryModelRequest(
            iterations=integer(iterations, field="iterations"), batch_size=integer(batch_size, field="batch_size"),
            patch_shape=number_list(patch_shape, field="patch_shape", length=3, kind=int,
                                    check=lambda v, field: integer(v, field=field, minimum=1)),
            learning_rate=non_negative(learning_rate, field="learning_rate"),
            seed=integer(seed, field="seed", minimum=None),
            checkpoint_every=integer(checkpoint_every, field="checkpoint_every"),
            no_augmentation=bool(no_augmentation))
        for name, region in (("train_region", train_region), ("validation_region", validation_region)):
            message = box(region, field=name)
            if message is not None:
                getattr(request, name).CopyFrom(message)
        if network is not None:
            request.network.CopyFrom(_message(network, S.UNetConfig, "network", enums={
                "target": S.BoundaryTarget, "norm": S.Normalization, "upsampling": S.Upsampling}))
        request.raw.CopyFrom(volume(self.artifacts, raw, field="raw", dataset=raw_dataset))
        request.labels.CopyFrom(volume(self.artifacts, labels, field="labels", dataset=labels_dataset))
        return self._stream("TrainBoundaryModel", request, BoundaryModel, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def segment(self, raw: Any, *, model: Any = None, classical: Any = None, raw_dataset: str = "",
                voxel_size_nm: Sequence[float] = (), block_shape: Sequence[int] = (), halo: Sequence[int] = (),
                thresholds: Sequence[float] = (), min_segment_size: int = 0, ground_truth: Any = None,
                ground_truth_dataset: str = "", watershed: Any = None, patch_shape: Sequence[int] = (),
                progress: bool | None = None, on_progress: ProgressCallback | None = None,
                timeout: float | None = None) -> SegmentResult:
        """Segment a volume block by block: boundaries, seeded watershed, one agglomeration cut at
        each threshold; scored when ``ground_truth`` is given.

        Streams progress (stages "load", "predict", "watershed", "graph", "agglomerate",
        "figure", "store"); Ctrl-C cancels the run and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        raw : array_like, path (TIFF, .npy, HDF5) or stored volume
            EM intensities (z, y, x).
        model : BoundaryModel, checkpoint or stored model, optional
            Boundaries from a trained U-Net. Without it the classical map is used.
        classical : True or dict, optional
            The classical smoothed-intensity map and its options ``sigma_nm`` (0: one in-plane
            voxel) and ``bright_membranes``; the default when no model is given.
        raw_dataset : str
            HDF5 files only: the dataset path.
        voxel_size_nm : three floats, optional
            (z, y, x) in nm, > 0; empty: 1 nm isotropic.
        block_shape : three ints, optional
            Blocks of the processing; empty: (64, 256, 256).
        halo : three ints, optional
            Context on each side of a block; empty: (8, 16, 16).
        thresholds : floats in [0, 1], optional
            Where the merge tree is cut (higher merges less); empty: [0.5].
        min_segment_size : int, default 0
            Smaller segments merged into their largest-contact neighbour.
        ground_truth : array_like, path or stored volume, optional
            Labels of raw's shape (0 ignored) to score every segmentation against.
        ground_truth_dataset : str
            HDF5 only.
        watershed : dict or WatershedOptions, optional
            ``boundary_threshold``, ``min_seed_distance``, ``per_section``, ``affinity_reduction``
            ("min", "mean").
        patch_shape : three ints, optional
            With a model: the inference window; empty: its training patch.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        SegmentResult

        Examples
        --------
        >>> seg = client.segmentation.segment(raw, voxel_size_nm=(8, 8, 8), thresholds=[0.5],
        ...                                   min_segment_size=20, ground_truth=truth)           # doctest: +SKIP
        >>> seg.segmentation().scores.adapted_rand_error                                          # doctest: +SKIP
        0.08
        """
        request = self._segment_request(
            raw, model=model, classical=classical, raw_dataset=raw_dataset, voxel_size_nm=voxel_size_nm,
            block_shape=block_shape, halo=halo, thresholds=thresholds, min_segment_size=min_segment_size,
            ground_truth=ground_truth, ground_truth_dataset=ground_truth_dataset, watershed=watershed,
            patch_shape=patch_shape)
        return self._stream("Segment", request, SegmentResult, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def _segment_request(self, raw: Any, *, model: Any, classical: Any, raw_dataset: str,
                         voxel_size_nm: Sequence[float], block_shape: Sequence[int], halo: Sequence[int],
                         thresholds: Sequence[float], min_segment_size: int, ground_truth: Any,
                         ground_truth_dataset: str, watershed: Any, patch_shape: Sequence[int]) -> S.SegmentRequest:
        """The SegmentRequest of :meth:`segment`'s arguments, checked here and inputs uploaded."""
        if model is not None and classical not in (None, False):
            raise InvalidArgument("give either model (a trained U-Net) or classical boundaries, not both",
                                  field="classical")
        _check_3d(raw, "raw")
        if ground_truth is not None:
            _check_3d(ground_truth, "ground_truth")
            raw_shape = tuple(raw.shape) if hasattr(raw, "ndim") else None
            truth_shape = tuple(ground_truth.shape) if hasattr(ground_truth, "ndim") else None
            if raw_shape is not None and truth_shape is not None and raw_shape != truth_shape:
                raise InvalidArgument(f"ground_truth has shape {truth_shape}, raw {raw_shape}; they "
                                      f"must be equal", field="ground_truth", reason="SHAPE_MISMATCH")
        levels = number_list(thresholds, field="thresholds")
        for value in levels:
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"thresholds must be in [0, 1], got {value}", field="thresholds")
        if len(set(levels)) != len(levels):
            raise InvalidArgument(f"thresholds must be distinct, got {levels}", field="thresholds")
        request = S.SegmentRequest(
            voxel_size_nm=number_list(voxel_size_nm, field="voxel_size_nm", length=3, check=positive),
            block_shape=number_list(block_shape, field="block_shape", length=3, kind=int,
                                    check=lambda v, field: integer(v, field=field, minimum=1)),
            halo=number_list(halo, field="halo", length=3, kind=int, check=lambda v, field: integer(v, field=field)),
            thresholds=levels, min_segment_size=integer(min_segment_size, field="min_segment_size"),
            patch_shape=number_list(patch_shape, field="patch_shape", length=3, kind=int,
                                    check=lambda v, field: integer(v, field=field, minimum=1)))
        if watershed is not None:
            options = _message(watershed, S.WatershedOptions, "watershed",
                               enums={"affinity_reduction": S.AffinityReduction})
            if options.HasField("boundary_threshold"):
                finite(options.boundary_threshold, field="watershed.boundary_threshold")
            request.watershed.CopyFrom(options)
        if model is not None:
            request.model.CopyFrom(self.artifacts.file_input(model, field="model"))
        else:
            request.classical.CopyFrom(S.ClassicalBoundaries() if classical in (None, True, False) else
                                       _message(classical, S.ClassicalBoundaries, "classical"))
        request.raw.CopyFrom(volume(self.artifacts, raw, field="raw", dataset=raw_dataset))
        if ground_truth is not None:
            request.ground_truth.CopyFrom(volume(self.artifacts, ground_truth, field="ground_truth",
                                                 dataset=ground_truth_dataset))
        return request

    def segment_blocks(self, raw: Any, *, stage: str, block_indices: Sequence[int],
                       block_boundaries: Sequence[Any] = (), model: Any = None, classical: Any = None,
                       raw_dataset: str = "", voxel_size_nm: Sequence[float] = (), block_shape: Sequence[int] = (),
                       halo: Sequence[int] = (), watershed: Any = None, patch_shape: Sequence[int] = (),
                       progress: bool | None = None, on_progress: ProgressCallback | None = None,
                       timeout: float | None = None) -> "SegmentBlocksResult":
        """One stage of some blocks of :meth:`segment`'s tiling, for a segmentation spread over replicas.

        ``stage="boundaries"`` stores each block's core of the boundary map (or affinities);
        ``stage="fragments"`` its watershed fragments, numbered as the whole run numbers them, and
        needs ``block_boundaries``: every block's boundaries in block order (the ``boundaries``
        of the first stage's results, gathered). :meth:`merge_segment_blocks` then finishes the
        segmentation. The other arguments are :meth:`segment`'s and must be the same in every call
        of one segmentation.

        Examples
        --------
        >>> first = client.segmentation.segment_blocks(raw, stage="boundaries", block_indices=range(8),
        ...                                            block_shape=(32, 64, 64))                   # doctest: +SKIP
        >>> frags = client.segmentation.segment_blocks(raw, stage="fragments", block_indices=range(8),
        ...                                            block_boundaries=first.boundaries,
        ...                                            block_shape=(32, 64, 64))                   # doctest: +SKIP
        >>> seg = client.segmentation.merge_segment_blocks(raw, block_boundaries=first.boundaries,
        ...                                                block_fragments=frags.fragments,
        ...                                                block_shape=(32, 64, 64))              # doctest: +SKIP
        """
        stages = {"boundaries": S.SEGMENT_BLOCKS_STAGE_BOUNDARIES, "fragments": S.SEGMENT_BLOCKS_STAGE_FRAGMENTS}
        if stage not in stages:
            raise InvalidArgument(f"stage must be one of {sorted(stages)}, got {stage!r}", field="stage")
        indices = [integer(i, field="block_indices", minimum=0) for i in block_indices]
        if not indices:
            raise InvalidArgument("block_indices is empty: name the blocks to compute", field="block_indices")
        if stage == "fragments" and not block_boundaries:
            raise InvalidArgument("stage 'fragments' needs block_boundaries: every block's boundaries",
                                  field="block_boundaries")
        segment = self._segment_request(
            raw, model=model, classical=classical, raw_dataset=raw_dataset, voxel_size_nm=voxel_size_nm,
            block_shape=block_shape, halo=halo, thresholds=(), min_segment_size=0, ground_truth=None,
            ground_truth_dataset="", watershed=watershed, patch_shape=patch_shape)
        request = S.SegmentBlocksRequest(segment=segment, stage=stages[stage], block_indices=indices)
        request.block_boundaries.extend(self._refs(block_boundaries, "block_boundaries"))
        return self._stream("SegmentBlocks", request, SegmentBlocksResult, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def merge_segment_blocks(self, raw: Any, *, block_boundaries: Sequence[Any], block_fragments: Sequence[Any],
                             block_stitching: Sequence[Any] = (), model: Any = None, classical: Any = None, raw_dataset: str = "",
                             voxel_size_nm: Sequence[float] = (), block_shape: Sequence[int] = (),
                             halo: Sequence[int] = (), thresholds: Sequence[float] = (), min_segment_size: int = 0,
                             ground_truth: Any = None, ground_truth_dataset: str = "", watershed: Any = None,
                             patch_shape: Sequence[int] = (), progress: bool | None = None,
                             on_progress: ProgressCallback | None = None,
                             timeout: float | None = None) -> SegmentResult:
        """Finish a segmentation whose blocks :meth:`segment_blocks` computed: the graph, the
        agglomeration, one segmentation per threshold, tables, scores, figure. The same
        :class:`SegmentResult` as :meth:`segment` with the same arguments. ``block_stitching``: every
        block's ``stitching`` of the fragments stage, in block order (the service stitches by default
        and refuses a merge without them).

        Examples
        --------
        >>> seg = client.segmentation.merge_segment_blocks(raw, block_boundaries=first.boundaries,
        ...                                                block_fragments=frags.fragments,
        ...                                                block_stitching=frags.stitching,
        ...                                                thresholds=[0.5], block_shape=(32, 64, 64))  # doctest: +SKIP
        >>> seg.segmentation().n_segments                                                          # doctest: +SKIP
        311
        """
        segment = self._segment_request(
            raw, model=model, classical=classical, raw_dataset=raw_dataset, voxel_size_nm=voxel_size_nm,
            block_shape=block_shape, halo=halo, thresholds=thresholds, min_segment_size=min_segment_size,
            ground_truth=ground_truth, ground_truth_dataset=ground_truth_dataset, watershed=watershed,
            patch_shape=patch_shape)
        request = S.MergeSegmentBlocksRequest(segment=segment)
        request.block_boundaries.extend(self._refs(block_boundaries, "block_boundaries"))
        request.block_fragments.extend(self._refs(block_fragments, "block_fragments"))
        request.block_stitching.extend(self._refs(block_stitching, "block_stitching"))
        return self._stream("MergeSegmentBlocks", request, SegmentResult, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def _refs(self, values: Sequence[Any], field: str) -> list:
        """Stored arrays (Artifacts of earlier results, ArtifactRefs, ``s3://`` URIs) as refs; nothing is uploaded."""
        refs = []
        for i, value in enumerate(values):
            ref = self.artifacts.named_ref(value, field=f"{field}[{i}]")
            if ref is None:
                raise InvalidArgument(f"{field}[{i}] must be a stored array (an Artifact of an earlier result, "
                                      f"an ArtifactRef or an s3:// URI), got {type(value).__name__}", field=field)
            refs.append(ref)
        return refs

    def score(self, segmentation: Any, ground_truth: Any, *, segmentation_dataset: str = "",
              ground_truth_dataset: str = "", timeout: float | None = None) -> SegmentationScoreResult:
        """Score a segmentation against ground truth (VOI split and merge, adapted Rand, CREMI).

        Parameters
        ----------
        segmentation : array_like, path, SegmentResult, ThresholdSegmentation or stored volume
        ground_truth : array_like, path or stored volume
            Same shape; 0 = unlabelled (ignored).
        segmentation_dataset, ground_truth_dataset : str
            HDF5 only.
        timeout : float, optional

        Returns
        -------
        SegmentationScoreResult

        Examples
        --------
        >>> client.segmentation.score(seg.segmentation(0.5), truth).scores.voi     # doctest: +SKIP
        0.74
        """
        request = S.ScoreRequest(
            segmentation=volume(self.artifacts, segmentation, field="segmentation", dataset=segmentation_dataset),
            ground_truth=volume(self.artifacts, ground_truth, field="ground_truth", dataset=ground_truth_dataset))
        return self._unary("Score", request, SegmentationScoreResult, timeout)
