"""gRPC adapter of the segmentation service: validate, open volumes lazily, run the blockwise core, store.

Every RPC follows the steps of :class:`services.common.rpc.StoreBackedServicer`: check the plain
fields (:mod:`.requests`), resolve the artifact refs (a ref may carry only a key), compute the
content-addressed prefix of the outputs and return the stored result if a previous call made it,
else open the inputs (:mod:`.volumes`: lazily, whatever their size), run the work in a worker
thread holding a compute slot while its progress streams, and store the outputs.

``SegmentBlocks`` and ``MergeSegmentBlocks`` are ``Segment`` in pieces, for a volume spread over
replicas: boundaries or fragments of some blocks (each block's core its own array, under a key of
the segmentation's inputs and options, so any replica reuses a block done once), then the merge
of all blocks. All three run the same stage functions (:meth:`SegmentationServicer._fill_values`,
:func:`.pipeline.watershed_fragments` / :func:`.pipeline.block_fragments`,
:meth:`SegmentationServicer._finish`), so the pieces give exactly what one ``Segment`` gives.
Both stitch the fragments that block faces cut (unless ``no_stitching``) the same way: each
block's watershed labels where its read meets its neighbours' (:func:`.pipeline.stitching_labels`;
kept in memory by ``Segment``, stored per block by ``SegmentBlocks``), the pairs decided by
:func:`.pipeline.stitch_pairs` and the fragments renamed as they are written.

Volumes are never loaded whole: ``Segment`` reads and writes block by block (:mod:`.pipeline`),
so only a block with its halo must fit in ``NEUROMESH_MAX_INPUT_BYTES``; ``TrainBoundaryModel``
reads its training and validation regions, each of which must fit. Outputs of a ``Segment`` that
a previous, interrupted call of the same request already finalized (affinities, fragments,
labels) are taken from the store instead of being computed again.

Errors: bad input is INVALID_ARGUMENT naming the field (a 2-D or 4-D volume, NaN intensities,
labels of another shape, a halo larger than the block, a file that is not a checkpoint), a
missing artifact or HDF5 dataset NOT_FOUND, a region larger than the service loads
RESOURCE_EXHAUSTED. A block that keeps failing (three attempts) fails the call with a message
naming the block and the status of its last error.

Example
-------
Started by ``python -m services.segmentation``; from lab software::

    stub = segmentation_pb2_grpc.SegmentationServiceStub(grpc.insecure_channel("127.0.0.1:50054"))
    for event in stub.Segment(segmentation_pb2.SegmentRequest(
            raw=segmentation_pb2.Volume(ref=raw_ref), classical=segmentation_pb2.ClassicalBoundaries(),
            voxel_size_nm=[8, 8, 8], thresholds=[0.4, 0.6])):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.segmentation.v1 import segmentation_pb2 as S
from neuromesh.segmentation.v1 import segmentation_pb2_grpc
from services.common.compute import ComputeLimiter
from services.common.errors import (AlreadyExists, Cancelled, FailedPrecondition, InvalidArgument, NeuroMeshError,
                                    NotFound, ResourceExhausted)
from services.common.metrics import neuromesh_counter, neuromesh_gauge, neuromesh_histogram
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.rpc import PNG, StoreBackedServicer
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import ARRAY_MEDIA_TYPE, ArtifactStore, choose_chunks

from . import pipeline, plots
from .core.blockwise import BlockFailedError, plan_blocks
from .core.training import (Augmentation, checkpoint_info, load_checkpoint, normalize_intensity, save_checkpoint,
                            train_boundary_model)
from .core.unet import check_input_shape
from .core.watershed import agglomerate
from .requests import (RequestError, SegmentOptions, box_slices, check_finite, check_patch_fits, check_same_shape,
                       check_seed_depth_halo, check_volume, fit_block, segment_options, train_options,
                       unet_config_message)
from services.common.volumes import Region, open_stored, open_volume

logger = logging.getLogger(__name__)

#: bump when an algorithm's output changes, so cached results are not reused across versions
#: 0.2.0: fragments cut by block faces are stitched by default (results of 0.1.0 were not)
SERVICE_VERSION = "0.2.0"
SERVICE_NAME = S.DESCRIPTOR.services_by_name["SegmentationService"].full_name
CHECKPOINT_MEDIA_TYPE = "application/vnd.neuromesh.boundary-unet"
JSON = "application/json"
#: blocks of the Score RPC (shrunk to fit NEUROMESH_MAX_INPUT_BYTES)
SCORE_BLOCK_SHAPE = (64, 512, 512)

STAGES = ("predict", "watershed", "agglomerate")
VOXELS = neuromesh_counter(
    "segmentation_voxels", "Voxels processed by Segment, by stage: predict (boundaries predicted, by a model or "
    "the classical map), watershed (fragments), agglomerate (labelled from the merge tree, once per threshold)",
    labelnames=("stage",))
BLOCK_SECONDS = neuromesh_histogram(
    "segmentation_block_duration_seconds", "Time to process one block of a Segment stage, in seconds",
    labelnames=("stage",), buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0))
BLOCKS_IN_PROGRESS = neuromesh_gauge("segmentation_blocks_in_progress", "Blocks of Segment stages being processed now")
for _stage in STAGES:  # every stage shows from the start, at 0
    VOXELS.labels(stage=_stage)
    BLOCK_SECONDS.labels(stage=_stage)


def _observe(stage: str, voxels: int, seconds: float) -> None:
    VOXELS.labels(stage=stage).inc(voxels)
    BLOCK_SECONDS.labels(stage=stage).observe(seconds)


def block_failure(exc: BlockFailedError) -> NeuroMeshError:
    """The error a call fails with when a block failed every attempt: the block's, named.

    The last error's status is kept (an unreachable store stays UNAVAILABLE, so callers retry),
    a cancellation stays a cancellation, anything else is INTERNAL; the message names the block.
    """
    cause = exc.__cause__
    if isinstance(cause, Cancelled):
        return cause
    metadata = {"block": exc.block.index, "core": exc.block.describe(), "attempts": exc.attempts}
    if isinstance(cause, NeuroMeshError):
        return type(cause)(str(exc), reason="BLOCK_FAILED", field=cause.field, metadata={**cause.metadata, **metadata})
    return NeuroMeshError(str(exc), reason="BLOCK_FAILED", metadata=metadata)


def _scores_message(scores) -> S.SegmentationScores:
    return S.SegmentationScores(voi_split=scores.voi_split, voi_merge=scores.voi_merge, voi=scores.voi,
                                adapted_rand_error=scores.adapted_rand_error, rand_precision=scores.rand_precision,
                                rand_recall=scores.rand_recall, cremi_score=scores.cremi_score,
                                n_voxels=scores.n_voxels)


def _table_json(table: dict[str, np.ndarray], *, threshold: float, voxel_size) -> dict[str, Any]:
    columns = {name: values.tolist() for name, values in table.items()}
    return {"threshold": threshold, "voxel_size_nm": list(voxel_size), "n_segments": len(columns["id"]),
            "columns": columns}


def _chunks(block_shape, shape, itemsize: int, channels: int = 0) -> tuple[int, ...]:
    """Chunks inside one block (so a block's write touches its own chunks), at most 8 MiB."""
    spatial = choose_chunks(tuple(min(b, s) for b, s in zip(block_shape, shape)), itemsize * max(channels, 1))
    return ((channels,) if channels else ()) + spatial


@dataclass
class _Reporter:
    """Maps a stage's own fraction to the call's overall fraction."""

    progress: Callable[..., None]
    bounds: dict[str, tuple[float, float]]

    def __call__(self, stage: str, start: float = 0.0, end: float = 1.0) -> Callable[[float, str], None]:
        """The reporter of ``stage``, or of the part [start, end) of it."""
        lo, hi = self.bounds[stage]
        lo, hi = lo + (hi - lo) * start, lo + (hi - lo) * end
        return lambda fraction, message: self.progress(fraction_done=lo + (hi - lo) * fraction, stage=stage,
                                                       message=message)

    def meter(self, stage: str, n_blocks: int, metric_stage: str | None = None) -> pipeline.StageMeter:
        return pipeline.StageMeter(metric_stage or stage, n_blocks, report=self(stage),
                                   observe=_observe if (metric_stage or stage) in STAGES else None,
                                   track=BLOCKS_IN_PROGRESS.track_inprogress)


# ------------------------------------------------------------------------------------------------
# the servicer


class SegmentationServicer(StoreBackedServicer, segmentation_pb2_grpc.SegmentationServiceServicer):
    """Segmentation RPCs over a shared :class:`ArtifactStore`."""

    # --- refs and volumes

    async def _resolve_any(self, ref: ArtifactRef, field: str) -> ArtifactRef:
        """The stored ref (array or object); NOT_FOUND naming ``field`` when it does not exist."""
        if not ref.key:
            raise InvalidArgument(f"{field} is required: an artifact reference with a key", field=f"{field}.key")
        try:
            return await asyncio.to_thread(self.store.resolve, ref)
        except NotFound as exc:
            raise NotFound(f"{field}: {exc.message}", reason=exc.reason, field=field, metadata=exc.metadata) from None

    async def _resolve_volume(self, volume: S.Volume, field: str) -> S.Volume:
        resolved = S.Volume(dataset=volume.dataset)
        resolved.ref.CopyFrom(await self._resolve_any(volume.ref, f"{field}.ref"))
        return resolved

    async def _open(self, volume: S.Volume, field: str, scratch: Path, stack: contextlib.ExitStack, *,
                    labels: bool = False, like: Any = None) -> Region:
        array = await asyncio.to_thread(open_volume, self.store, volume.ref, volume.dataset, field, scratch, stack,
                                        max_bytes=self.max_input_bytes)
        check_volume(array.shape, array.dtype, field, labels=labels)
        if like is not None:
            check_same_shape(array.shape, like.shape, field)
        return Region(array)

    async def _load_boundary_model(self, ref: ArtifactRef):
        if ref.media_type == ARRAY_MEDIA_TYPE:
            raise InvalidArgument(f"model s3://{ref.bucket}/{ref.key} is a Zarr array, not a checkpoint stored by "
                                  f"TrainBoundaryModel", reason="WRONG_ARTIFACT_KIND", field="model")
        if ref.size_bytes > self.max_input_bytes:
            raise ResourceExhausted(f"model holds {ref.size_bytes} bytes, more than NEUROMESH_MAX_INPUT_BYTES="
                                    f"{self.max_input_bytes}", field="model")
        data = await asyncio.to_thread(self.store.get_bytes, ref)

        def load():
            return load_checkpoint(data, device="auto"), checkpoint_info(data)
        try:
            return await asyncio.to_thread(load)
        except ValueError as exc:
            raise InvalidArgument(f"model s3://{ref.bucket}/{ref.key} is not a boundary-model checkpoint: {exc}",
                                  reason="NOT_A_MODEL", field="model") from None

    async def _stream(self, work: Callable[..., Any], response: type, outcome: list):
        """Run ``work`` holding a compute slot; yield ``response(progress=...)`` events; its result is
        appended to ``outcome`` (an async generator cannot return a value)."""
        try:
            async with self.limiter.slot():
                async with contextlib.aclosing(stream_progress(work)) as events:
                    async for event in events:
                        if event.progress is not None:
                            yield response(progress=event.progress)
                        else:
                            outcome.append(event.result)
        except BlockFailedError as exc:
            raise block_failure(exc) from exc

    # --- TrainBoundaryModel

    async def TrainBoundaryModel(self, request, context):
        options = train_options(request)
        resolved = S.TrainBoundaryModelRequest()
        resolved.CopyFrom(request)
        resolved.raw.CopyFrom(await self._resolve_volume(request.raw, "raw"))
        resolved.labels.CopyFrom(await self._resolve_volume(request.labels, "labels"))
        prefix = result_prefix("segmentation", "TrainBoundaryModel", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, S.TrainBoundaryModelResult)
        if stored is not None:
            yield S.TrainBoundaryModelResponse(result=stored)
            return

        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-segmentation-") as tmp:
            raw = await self._open(resolved.raw, "raw", Path(tmp), stack)
            labels = await self._open(resolved.labels, "labels", Path(tmp), stack, labels=True, like=raw)
            train_box = box_slices(request.train_region, raw.shape, "train_region")
            val_box = (box_slices(request.validation_region, raw.shape, "validation_region")
                       if request.HasField("validation_region") else None)
            for name, box in (("train_region", train_box), ("validation_region", val_box)):
                if box is None:
                    continue
                for volume_name, volume in (("raw", raw), ("labels", labels)):
                    region = Region(volume, box)
                    if region.nbytes > self.max_input_bytes:
                        raise ResourceExhausted(
                            f"{name} of {volume_name} holds {region.nbytes} bytes ({region.shape} {region.dtype}); "
                            f"training reads it into memory and this service loads at most "
                            f"NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}: choose a smaller {name}", field=name)
                if options.patch_shape is not None:
                    check_patch_fits(options.patch_shape, box, name)

            def work(progress):
                return self._train(progress, options, raw, labels, train_box, val_box, prefix, resolved)

            outcome: list = []
            async with contextlib.aclosing(self._stream(work, S.TrainBoundaryModelResponse, outcome)) as events:
                async for event in events:
                    yield event
        kept = await self.store_result(prefix, outcome[0], resolved, SERVICE_VERSION)
        yield S.TrainBoundaryModelResponse(result=kept)

    def _train(self, progress, options, raw: Region, labels: Region, train_box, val_box, prefix: str,
               resolved: S.TrainBoundaryModelRequest) -> S.TrainBoundaryModelResult:
        """Read the regions, train (checkpoints stored as they come), store the model: the result."""
        progress(fraction_done=0.0, stage="load", message="reading the training region")

        def read(box):
            raw_part = Region(raw, box)[...]
            check_finite(raw_part, "raw", "the region read")
            try:
                raw_part = normalize_intensity(raw_part)
            except ValueError as exc:
                raise RequestError(str(exc), field="raw", reason="INVALID_INTENSITIES") from None
            labels_part = Region(labels, box)[...]
            if not labels_part.any():
                raise RequestError("labels hold no labelled voxel in the region (all 0 = unlabelled)", field="labels")
            return raw_part, labels_part

        train_raw, train_labels = read(train_box)
        validation = read(val_box) if val_box is not None else None
        iterations = options.iterations
        checkpoints: list[S.Checkpoint] = []

        def train_report(fraction_done, stage="train", message=""):
            progress(fraction_done=0.02 + 0.92 * fraction_done, stage=stage, message=message)

        def store_checkpoint(data: bytes) -> None:
            info = checkpoint_info(data)
            digest = hashlib.sha256(data).hexdigest()[:12]
            # the digest in the key: a rerun after an interruption (other threads, a GPU) never conflicts
            key = f"{prefix}/checkpoints/iteration-{info['iteration']:07d}-{digest}.pt"
            ref = self.store.put_bytes(key, data, media_type=CHECKPOINT_MEDIA_TYPE, if_exists="return_existing")
            checkpoints.append(S.Checkpoint(iteration=info["iteration"], loss=info["loss"], ref=ref))
            train_report(info["iteration"] / iterations, stage="checkpoint",
                         message=f"checkpoint at iteration {info['iteration']} stored: s3://{ref.bucket}/{ref.key}")

        model, history = train_boundary_model(
            train_raw, train_labels, config=options.config, iterations=iterations, batch_size=options.batch_size,
            patch_shape=options.patch_shape, learning_rate=options.learning_rate, seed=options.seed, device="auto",
            report=train_report, checkpoint_every=options.checkpoint_every, checkpoint_fn=store_checkpoint,
            validation=validation, augmentation=None if options.augment else Augmentation.none())
        progress(fraction_done=0.95, stage="store", message="storing the model")
        losses = np.asarray(history["loss"], dtype=np.float64)
        best = int(history["best_iteration"])
        patch = [int(p) for p in history["patch_shape"]]
        metadata = {"patch_shape": patch, "iterations": iterations, "best_iteration": best,
                    "batch_size": options.batch_size, "learning_rate": options.learning_rate, "seed": options.seed,
                    "raw_sha256": resolved.raw.ref.sha256, "labels_sha256": resolved.labels.ref.sha256,
                    "train_region": [[s.start, s.stop] for s in train_box], "service_version": SERVICE_VERSION}
        data = save_checkpoint(model, iteration=best, loss=float(losses[best - 1]), metadata=metadata)
        model_ref = self.store.put_bytes(f"{prefix}/model-{hashlib.sha256(data).hexdigest()[:12]}.pt", data,
                                         media_type=CHECKPOINT_MEDIA_TYPE, if_exists="return_existing")
        tail = max(1, iterations // 10)
        result = S.TrainBoundaryModelResult(
            model=model_ref, checkpoints=checkpoints, best_iteration=best, final_loss=float(losses[-tail:].mean()),
            validation_iterations=history["validation_iteration"].tolist(),
            validation_losses=np.asarray(history["validation_loss"], dtype=float).tolist(), patch_shape=patch,
            network=unet_config_message(model.config), device=str(history["device"]))
        result.loss_curve.CopyFrom(self.store.put_array(f"{prefix}/loss_curve", losses, if_exists="return_existing"))
        figure = plots.loss_figure(losses, history["validation_iteration"], history["validation_loss"],
                                   title=f"boundary U-Net, {iterations} iterations (weights of iteration {best})")
        result.figure.CopyFrom(self.store.put_bytes(f"{prefix}/figure.png", figure, media_type=PNG,
                                                    if_exists="return_existing"))
        return result

    # --- Segment

    async def Segment(self, request, context):
        options = segment_options(request)
        source = request.WhichOneof("boundary_source")
        if source is None:
            raise InvalidArgument("a boundary source is required: model (a checkpoint from TrainBoundaryModel) or "
                                  "classical", field="boundary_source")
        resolved = S.SegmentRequest()
        resolved.CopyFrom(request)
        resolved.raw.CopyFrom(await self._resolve_volume(request.raw, "raw"))
        if source == "model":
            resolved.model.CopyFrom(await self._resolve_any(request.model, "model"))
        with_truth = request.HasField("ground_truth")
        if with_truth:
            resolved.ground_truth.CopyFrom(await self._resolve_volume(request.ground_truth, "ground_truth"))
        prefix = result_prefix("segmentation", "Segment", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, S.SegmentResult)
        if stored is not None:
            yield S.SegmentResponse(result=stored)
            return
        model, info = await self._load_boundary_model(resolved.model) if source == "model" else (None, None)
        if model is not None and options.patch_shape is not None:
            try:
                check_input_shape(options.patch_shape, config=model.config, name="patch_shape")
            except ValueError as exc:
                raise RequestError(f"{exc} (the model's U-Net)", field="patch_shape") from None

        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-segmentation-") as tmp:
            raw = await self._open(resolved.raw, "raw", Path(tmp), stack)
            truth = (await self._open(resolved.ground_truth, "ground_truth", Path(tmp), stack, labels=True, like=raw)
                     if with_truth else None)
            check_seed_depth_halo(options, raw.shape)
            channels = model.config.out_channels if model is not None else 1
            self._check_block_bytes(options, raw.shape, raw.dtype, channels, field="block_shape")
            patch = options.patch_shape or pipeline.checkpoint_patch_shape((info or {}).get("metadata", {}))

            def work(progress):
                return self._segment(progress, options, raw, truth, model, patch, prefix)

            outcome: list = []
            async with contextlib.aclosing(self._stream(work, S.SegmentResponse, outcome)) as events:
                async for event in events:
                    yield event
        kept = await self.store_result(prefix, outcome[0], resolved, SERVICE_VERSION)
        yield S.SegmentResponse(result=kept)

    # --- SegmentBlocks and MergeSegmentBlocks: Segment spread over replicas

    async def _segmentation_of(self, segment: S.SegmentRequest, *, with_truth: bool) -> tuple[SegmentOptions,
                                                                                               S.SegmentRequest]:
        """The options of the ``segment`` field (errors name ``segment.<field>``) and the request with its
        refs resolved; without ground truth, thresholds and min_segment_size unless ``with_truth``
        (the block stages do not read them, so they must not change where blocks are stored)."""
        try:
            options = segment_options(segment)
        except NeuroMeshError as exc:
            raise type(exc)(exc.message, reason=exc.reason, field=f"segment.{exc.field}" if exc.field else "segment",
                            metadata=exc.metadata) from None
        source = segment.WhichOneof("boundary_source")
        if source is None:
            raise InvalidArgument("a boundary source is required: segment.model (a checkpoint from "
                                  "TrainBoundaryModel) or segment.classical", field="segment.boundary_source")
        resolved = S.SegmentRequest()
        resolved.CopyFrom(segment)
        if not with_truth:
            for name in ("thresholds", "min_segment_size", "ground_truth"):
                resolved.ClearField(name)
        resolved.raw.CopyFrom(await self._resolve_volume(segment.raw, "segment.raw"))
        if source == "model":
            resolved.model.CopyFrom(await self._resolve_any(segment.model, "segment.model"))
        if with_truth and segment.HasField("ground_truth"):
            resolved.ground_truth.CopyFrom(await self._resolve_volume(segment.ground_truth, "segment.ground_truth"))
        return options, resolved

    @staticmethod
    def _check_seed_depth_halo(options: SegmentOptions, shape) -> None:
        """:func:`check_seed_depth_halo` with the field named within ``segment``."""
        try:
            check_seed_depth_halo(options, shape)
        except RequestError as exc:
            raise RequestError(exc.message, field=f"segment.{exc.field}") from None

    def _check_block_bytes(self, options: SegmentOptions, shape, dtype, channels: int, *,
                           field: str = "segment.block_shape") -> None:
        """RESOURCE_EXHAUSTED when one block with its halo would read more than the input limit."""
        halo_block = tuple(min(b + 2 * h, s) for b, h, s in zip(options.block_shape, options.halo, shape))
        block_bytes = math.prod(halo_block) * max(np.dtype(dtype).itemsize, 4) * max(channels, 1)
        if block_bytes > self.max_input_bytes:
            raise ResourceExhausted(f"a block with its halo, {halo_block}, reads {block_bytes} bytes at once, more "
                                    f"than NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}: choose a smaller "
                                    f"block_shape", field=field)

    async def _block_arrays(self, refs, field: str, blocks, kind: str) -> list[ArtifactRef]:
        """One stored array per block of the tiling, in block order: resolved (NOT_FOUND naming
        ``field[k]``) and checked against the block (its core's shape; float32 boundaries, with 3
        leading channels for affinities, or uint64 fragments)."""
        refs = list(refs)
        if len(refs) != len(blocks):
            raise InvalidArgument(f"{field} has {len(refs)} arrays but the tiling has {len(blocks)} blocks: give "
                                  f"every block's, in block order", field=field)
        resolved = await asyncio.gather(*(self._resolve_any(ref, f"{field}[{k}]") for k, ref in enumerate(refs)))
        labels = kind in ("fragments", "stitching")
        dtype = "uint64" if labels else "float32"
        leading: tuple[int, ...] | None = None
        for k, (ref, block) in enumerate(zip(resolved, blocks)):
            shape = tuple(int(n) for n in ref.shape)
            # stitching labels cover the block's read (core and halo), the rest its core
            want = tuple(s.stop - s.start for s in block.halo) if kind == "stitching" else block.shape
            if ref.media_type != ARRAY_MEDIA_TYPE or len(shape) < 3 or shape[-3:] != want \
                    or np.dtype(ref.dtype or "V1") != np.dtype(dtype):
                raise InvalidArgument(f"{field}[{k}] (s3://{ref.bucket}/{ref.key}) holds {ref.dtype or 'no array'} "
                                      f"{list(shape)}, not the {dtype} {kind} of block {block.describe()} of "
                                      f"shape {list(want)}: arrays of another tiling, or out of order?",
                                      field=f"{field}[{k}]")
            if labels and len(shape) != 3 or not labels and shape[:-3] not in ((), (3,)):
                raise InvalidArgument(f"{field}[{k}] has shape {list(shape)}: expected (z, y, x)"
                                      f"{'' if labels else ' or (3, z, y, x)'}", field=f"{field}[{k}]")
            if leading is None:
                leading = shape[:-3]
            elif shape[:-3] != leading:
                raise InvalidArgument(f"{field}[{k}] has shape {list(shape)} but {field}[0] has channels "
                                      f"{list(leading)}: every block's must be alike", field=f"{field}[{k}]")
        return list(resolved)

    def _block_array(self, key: str, shape, dtype, fill: Callable[[Any], Any]) -> ArtifactRef:
        """One block's array: the stored one when a call made it before (on any replica), else written.

        A replica killed while writing leaves an array that was never finalized; it is left alone (a
        writer may still be at it) and this block goes to a key of its own.
        """
        chunks = choose_chunks(tuple(shape[-3:]), np.dtype(dtype).itemsize * math.prod(shape[:-3]))
        chunks = tuple(shape[:-3]) + tuple(chunks)
        try:
            return self._array(key, shape, dtype, chunks, fill)[0]
        except FailedPrecondition as exc:
            if exc.reason != "ARTIFACT_INCOMPLETE":
                raise
            logger.warning("block array %s was never finalized; writing the block anew elsewhere", key)
            return self._array(f"{key}-{uuid.uuid4().hex[:12]}", shape, dtype, chunks, fill)[0]

    @staticmethod
    def _subset_meter(progress, stage: str, position: int, count: int) -> pipeline.StageMeter:
        """The meter of the ``position``-th of ``count`` blocks asked for (the core meters number
        blocks in the whole tiling)."""
        return pipeline.StageMeter(
            "predict" if stage == "boundaries" else "watershed", count, observe=_observe,
            track=BLOCKS_IN_PROGRESS.track_inprogress,
            report=lambda _fraction, message: progress(fraction_done=position / count,
                                                       stage="predict" if stage == "boundaries" else "watershed",
                                                       message=f"block {position + 1} of {count} asked: {message}"))

    async def SegmentBlocks(self, request, context):
        if request.stage not in (S.SEGMENT_BLOCKS_STAGE_BOUNDARIES, S.SEGMENT_BLOCKS_STAGE_FRAGMENTS):
            raise InvalidArgument("stage is required: SEGMENT_BLOCKS_STAGE_BOUNDARIES, then "
                                  "SEGMENT_BLOCKS_STAGE_FRAGMENTS", field="stage")
        fragments_stage = request.stage == S.SEGMENT_BLOCKS_STAGE_FRAGMENTS
        if not fragments_stage and len(request.block_boundaries):
            raise InvalidArgument("block_boundaries are read by the FRAGMENTS stage only; the BOUNDARIES stage "
                                  "computes them", field="block_boundaries")
        options, tiling = await self._segmentation_of(request.segment, with_truth=False)
        model = info = None
        if not fragments_stage and tiling.WhichOneof("boundary_source") == "model":
            model, info = await self._load_boundary_model(tiling.model)
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-segmentation-") as tmp:
            raw = await self._open(tiling.raw, "segment.raw", Path(tmp), stack)
            self._check_seed_depth_halo(options, raw.shape)
            blocks = plan_blocks(raw.shape, options.block_shape, options.halo)
            indices = pipeline.check_block_indices(request.block_indices, len(blocks))
            if fragments_stage:
                refs = await self._block_arrays(request.block_boundaries, "block_boundaries", blocks, "boundaries")
                self._check_block_bytes(options, raw.shape, np.float32, 3 if len(refs[0].shape) == 4 else 1)
                keyed = S.SegmentBlocksRequest(segment=tiling, stage=request.stage, block_boundaries=refs)
                prefix = result_prefix("segmentation", "SegmentBlocks-fragments", keyed, SERVICE_VERSION)

                def work(progress):
                    return self._block_fragments(progress, options, blocks, indices, refs, prefix)
            else:
                self._check_block_bytes(options, raw.shape, raw.dtype, model.config.out_channels if model else 1)
                patch = options.patch_shape or pipeline.checkpoint_patch_shape((info or {}).get("metadata", {}))
                prefix = result_prefix("segmentation", "SegmentBlocks-boundaries", tiling, SERVICE_VERSION)

                def work(progress):
                    return self._block_boundaries(progress, options, raw, model, patch, blocks, indices, prefix)

            outcome: list = []
            async with contextlib.aclosing(self._stream(work, S.SegmentBlocksResponse, outcome)) as events:
                async for event in events:
                    yield event
        outcome[0].MergeFrom(S.SegmentBlocksResult(stage=request.stage, block_indices=indices, n_blocks=len(blocks),
                                                block_shape=options.block_shape, halo=options.halo))
        yield S.SegmentBlocksResponse(result=outcome[0])

    def _block_boundaries(self, progress, options: SegmentOptions, raw: Region, model, patch, blocks, indices,
                          prefix: str) -> S.SegmentBlocksResult:
        """Stage 1 for the blocks asked, each block's core into an array of its own."""
        _, values_shape, channels = self._values_layout(model, raw.shape)
        value_blocks = self._values_tiling(options, raw.shape, model)
        result = S.SegmentBlocksResult()
        for position, k in enumerate(indices):
            block = value_blocks[k]
            meter = self._subset_meter(progress, "boundaries", position, len(indices))

            def fill(writer, block=block, meter=meter):
                self._fill_values(raw, model, options, patch, [block], pipeline.BlockSink(writer, block, raw.shape),
                                  meter)
            shape = ((channels,) if channels else ()) + block.shape
            result.boundaries.append(self._block_array(f"{prefix}/block-{k:06d}", shape, "float32", fill))
        progress(fraction_done=1.0, stage="store", message=f"{len(indices)} blocks stored")
        return result

    def _block_fragments(self, progress, options: SegmentOptions, blocks, indices, boundary_refs,
                         prefix: str) -> S.SegmentBlocksResult:
        """Stage 2 for the blocks asked, reading every block's boundaries as one volume."""
        values = pipeline.BlockMosaic(blocks, [open_stored(self.store, ref) for ref in boundary_refs], np.float32)
        watershed = self._watershed_options(options)
        result = S.SegmentBlocksResult()
        for position, k in enumerate(indices):
            meter = self._subset_meter(progress, "fragments", position, len(indices))
            read_shape = tuple(s.stop - s.start for s in blocks[k].halo)
            kept: dict[str, np.ndarray] = {}

            def fill(writer, k=k, meter=meter, kept=kept, read_shape=read_shape):
                # the stitching labels come from the same watershed run, kept until they are stored
                stitching = np.zeros(read_shape, np.uint64) if options.stitch else None
                pipeline.block_fragments(values, writer, blocks, k, meter=meter, stitching_out=stitching, **watershed)
                if stitching is not None:
                    kept["labels"] = stitching
            result.fragments.append(self._block_array(f"{prefix}/block-{k:06d}", blocks[k].shape, "uint64", fill))
            if options.stitch:
                def fill_stitching(writer, k=k, meter=meter, kept=kept, read_shape=read_shape):
                    if "labels" not in kept:      # the fragments were stored by an earlier call: rerun the block
                        labels = np.zeros(read_shape, np.uint64)
                        pipeline.block_fragments(values, np.zeros(blocks[k].shape, np.uint64), blocks, k,
                                                 meter=meter, stitching_out=labels, **watershed)
                        kept["labels"] = labels
                    writer[...] = kept.pop("labels")
                result.stitching.append(self._block_array(f"{prefix}/stitching-{k:06d}", read_shape, "uint64",
                                                          fill_stitching))
        progress(fraction_done=1.0, stage="store", message=f"{len(indices)} blocks stored")
        return result

    async def MergeSegmentBlocks(self, request, context):
        options, segment = await self._segmentation_of(request.segment, with_truth=True)
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-segmentation-") as tmp:
            raw = await self._open(segment.raw, "segment.raw", Path(tmp), stack)
            truth = (await self._open(segment.ground_truth, "segment.ground_truth", Path(tmp), stack, labels=True,
                                      like=raw) if segment.HasField("ground_truth") else None)
            self._check_seed_depth_halo(options, raw.shape)
            blocks = plan_blocks(raw.shape, options.block_shape, options.halo)
            boundary_refs = await self._block_arrays(request.block_boundaries, "block_boundaries", blocks, "boundaries")
            fragment_refs = await self._block_arrays(request.block_fragments, "block_fragments", blocks, "fragments")
            stitching_refs = []
            if options.stitch:
                if not len(request.block_stitching):
                    raise InvalidArgument("block_stitching is required to stitch the fragments cut by block faces: "
                                          "every block's stitching labels (SegmentBlocks' stitching), in block "
                                          "order; or set segment.no_stitching", field="block_stitching")
                stitching_refs = await self._block_arrays(request.block_stitching, "block_stitching", blocks,
                                                          "stitching")
            elif len(request.block_stitching):
                raise InvalidArgument("block_stitching is given but segment.no_stitching is set: leave one out",
                                      field="block_stitching")
            resolved = S.MergeSegmentBlocksRequest(segment=segment, block_boundaries=boundary_refs,
                                                   block_fragments=fragment_refs, block_stitching=stitching_refs)
            prefix = result_prefix("segmentation", "MergeSegmentBlocks", resolved, SERVICE_VERSION)
            stored = await self.stored_result(prefix, S.SegmentResult)
            if stored is not None:
                yield S.MergeSegmentBlocksResponse(result=stored)
                return
            source = "model" if segment.WhichOneof("boundary_source") == "model" else "classical"

            def work(progress):
                return self._merge_blocks(progress, options, raw, truth, blocks, boundary_refs, fragment_refs,
                                          stitching_refs, prefix, source)

            outcome: list = []
            async with contextlib.aclosing(self._stream(work, S.MergeSegmentBlocksResponse, outcome)) as events:
                async for event in events:
                    yield event
        kept = await self.store_result(prefix, outcome[0], resolved, SERVICE_VERSION)
        yield S.MergeSegmentBlocksResponse(result=kept)

    def _merge_blocks(self, progress, options: SegmentOptions, raw: Region, truth: Region | None, blocks,
                      boundary_refs, fragment_refs, stitching_refs, prefix: str, source: str) -> S.SegmentResult:
        """Gather the blocks' boundaries and fragments into whole-volume arrays, the fragments stitched
        on the way from the blocks' stitching labels (as Segment stitches), then :meth:`_finish`."""
        shape = raw.shape
        weights = {"gather": 1.0, "graph": 1.0, "agglomerate": 1.5 * len(options.thresholds), "figure": 0.2}
        report = _Reporter(progress, pipeline.stage_bounds(weights))
        result = S.SegmentResult(block_shape=options.block_shape, halo=options.halo, n_blocks=len(blocks))
        renamed = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        if stitching_refs:
            report("gather")(0.0, "stitching the fragments cut by block faces")
            stitching = [open_stored(self.store, ref) for ref in stitching_refs]
            renamed = pipeline.stitch_pairs(
                blocks, lambda i, j, box: stitching[i][pipeline._local(box, blocks[i].halo)], shape)
        gathered = []
        for part, (refs, dtype) in enumerate(((boundary_refs, np.float32), (fragment_refs, np.uint64))):
            arrays = [open_stored(self.store, ref) for ref in refs]
            channels = len(refs[0].shape) - 3
            tell = report("gather", part / 2, (part + 1) / 2)

            def fill(writer, arrays=arrays, channels=channels, tell=tell, dtype=dtype):
                for block, array in zip(blocks, arrays):
                    tell(block.linear_index / len(blocks), f"gathering block {block.linear_index + 1} of {len(blocks)}")
                    data = np.asarray(array[...])
                    if dtype == np.uint64:
                        data = pipeline.rename_fragments(data, *renamed)
                    writer[(slice(None),) * channels + block.core] = data
            if dtype == np.uint64:
                key, array_shape, chunks = f"{prefix}/fragments", shape, _chunks(options.block_shape, shape, 8)
            else:
                name = "affinities" if channels else "boundaries"
                key, array_shape = f"{prefix}/{name}", ((3,) if channels else ()) + shape
                chunks = _chunks(options.block_shape, shape, 4, 3 if channels else 0)
            ref, _ = self._array(key, array_shape, dtype, chunks, fill)
            gathered.append(ref)
        values_ref, fragments_ref = gathered
        getattr(result, "affinities" if len(values_ref.shape) == 4 else "boundaries").CopyFrom(values_ref)
        result.fragments.CopyFrom(fragments_ref)
        return self._finish(progress, report, options, raw, truth, open_stored(self.store, values_ref),
                            open_stored(self.store, fragments_ref), None, blocks, prefix, result, source)

    def _array(self, key: str, shape, dtype, chunks, fill: Callable[[Any], Any]) -> tuple[ArtifactRef, Any]:
        """The array at ``key``: written by ``fill(writer)`` (whose result is returned too), or, when a
        previous call of this request finalized it, the stored one (and None)."""
        shape = tuple(int(s) for s in shape)
        if self.store.exists(key):
            ref = self.store.stat(key)     # FailedPrecondition for an array whose writer died mid-way
            if tuple(ref.shape) == shape and np.dtype(ref.dtype) == np.dtype(dtype):
                logger.info("reusing stored %s", key)
                return ref, None
            raise AlreadyExists(f"s3://{ref.bucket}/{key} holds {ref.dtype} {list(ref.shape)}, not the "
                                f"{np.dtype(dtype)} {list(shape)} this call writes", metadata={"key": key})
        with self.store.create_array(key, shape, dtype, chunks=chunks) as writer:
            filled = fill(writer)
            return writer.finalize(), filled

    # --- the stages, shared by Segment, SegmentBlocks and MergeSegmentBlocks

    @staticmethod
    def _values_layout(model, shape) -> tuple[str, tuple[int, ...], int]:
        """What stage 1 writes: (result field, array shape, channels): affinities (3, z, y, x) of an
        affinity model, else a boundary map (z, y, x)."""
        if model is not None and model.config.target == "affinities":
            return "affinities", (3,) + tuple(shape), 3
        return "boundaries", tuple(shape), 0

    @staticmethod
    def _values_tiling(options: SegmentOptions, shape, model) -> list:
        """The blocks stage 1 runs over: the segmentation's, with the Gaussian's radius as halo for the
        classical map (same cores and numbers, so block k of one is block k of the other)."""
        if model is not None:
            return plan_blocks(shape, options.block_shape, options.halo)
        return pipeline.smoothing_blocks(shape, options.block_shape, options.classical_sigma_voxels())

    @staticmethod
    def _fill_values(raw, model, options: SegmentOptions, patch, blocks, out, meter) -> None:
        """Stage 1 over ``blocks`` (of :meth:`_values_tiling`) into ``out``."""
        if model is not None:
            pipeline.predict_boundaries(model, raw, out, blocks, patch_shape=patch, meter=meter)
        else:
            pipeline.classical_boundaries(raw, out, blocks, sigma_voxels=options.classical_sigma_voxels(),
                                          bright_membranes=options.bright_membranes, meter=meter)

    @staticmethod
    def _watershed_options(options: SegmentOptions) -> dict[str, Any]:
        return {"boundary_threshold": options.boundary_threshold, "min_seed_distance": options.min_seed_distance,
                "per_section": options.per_section, "voxel_size": options.voxel_size,
                "affinity_reduction": options.affinity_reduction, "max_seed_depth": options.max_seed_depth}

    def _segment(self, progress, options: SegmentOptions, raw: Region, truth: Region | None, model, patch,
                 prefix: str) -> S.SegmentResult:
        """Boundaries, fragments, then :meth:`_finish`: graph, merge tree, labels, tables, figure."""
        shape = raw.shape
        blocks = plan_blocks(shape, options.block_shape, options.halo)
        n_thresholds = len(options.thresholds)
        weights = {"load": 0.02, "predict": 4.0 if model is not None else 1.0, "watershed": 2.0, "graph": 1.0,
                   "agglomerate": 1.5 * n_thresholds, "figure": 0.2}
        report = _Reporter(progress, pipeline.stage_bounds(weights))
        report("load")(0.0, f"{len(blocks)} blocks of {options.block_shape} with halo {options.halo} over {shape}")
        result = S.SegmentResult(block_shape=options.block_shape, halo=options.halo, n_blocks=len(blocks))

        # 1. boundaries
        name, values_shape, channels = self._values_layout(model, shape)
        if model is not None:
            result.device = str(next(model.parameters()).device)
        value_blocks = self._values_tiling(options, shape, model)

        def fill_values(writer):
            self._fill_values(raw, model, options, patch, value_blocks, writer,
                              report.meter("predict", len(value_blocks)))
        values_ref, _ = self._array(f"{prefix}/{name}", values_shape, "float32",
                                    _chunks(options.block_shape, shape, 4, channels), fill_values)
        getattr(result, name).CopyFrom(values_ref)
        values = open_stored(self.store, values_ref)

        # 2. fragments
        def fill_fragments(writer):
            meter = report.meter("watershed", len(blocks))
            if not options.stitch:
                return pipeline.watershed_fragments(values, writer, blocks, meter=meter,
                                                    **self._watershed_options(options))
            # the store's writer cannot be read back: the unstitched fragments wait in a local file
            with tempfile.TemporaryDirectory(prefix="neuromesh-fragments-") as scratch_dir:
                scratch = np.lib.format.open_memmap(Path(scratch_dir) / "fragments.npy", mode="w+",
                                                    dtype=np.uint64, shape=shape)
                try:
                    return pipeline.stitched_fragments(values, writer, blocks, scratch, meter=meter,
                                                       **self._watershed_options(options))
                finally:
                    del scratch
        fragments_ref, ids = self._array(f"{prefix}/fragments", shape, "uint64",
                                         _chunks(options.block_shape, shape, 8), fill_fragments)
        result.fragments.CopyFrom(fragments_ref)
        return self._finish(progress, report, options, raw, truth, values, open_stored(self.store, fragments_ref), ids,
                            blocks, prefix, result, "model" if model is not None else "classical")

    def _finish(self, progress, report: _Reporter, options: SegmentOptions, raw: Region, truth: Region | None,
                values, fragments, ids, blocks, prefix: str, result: S.SegmentResult, source: str) -> S.SegmentResult:
        """Stages 3 to 5 over the whole volume's boundaries and fragments: the global graph, its merge
        tree, one labelled volume per threshold with its tables and scores, the figure. ``ids``: the
        sorted fragment ids when known (None: counted here)."""
        shape = raw.shape
        n_thresholds = len(options.thresholds)
        sizes, counted = None, ids is None or options.min_segment_size > 1
        if counted:       # fragment ids (of stored fragments) and sizes (for min_segment_size)
            ids, sizes = pipeline.fragment_sizes(fragments, blocks, report=report("graph", 0.0, 0.3))
        result.n_fragments = int(ids.size)

        # 3. the global graph and its merge tree
        graph = pipeline.fragment_graph(fragments, values, blocks, report=report("graph", 0.3 if counted else 0.0))
        tree = agglomerate(None, graph, fragment_ids=ids)

        # 4. one cut per threshold
        shown: dict[str, list[np.ndarray]] = {}
        z_shown = pipeline.section_indices(shape[0])
        for i, threshold in enumerate(options.thresholds):
            segment_ids = tree.segment_of(threshold)
            if options.min_segment_size > 1:
                segment_ids = pipeline.merge_small_segments(segment_ids, sizes, graph, ids, options.min_segment_size)
            lo, hi = report.bounds["agglomerate"]
            part = (hi - lo) / n_thresholds
            meter = pipeline.StageMeter(
                "agglomerate", len(blocks), observe=_observe, track=BLOCKS_IN_PROGRESS.track_inprogress,
                report=lambda f, m, i=i: progress(fraction_done=lo + part * (i + f), stage="agglomerate",
                                                  message=f"threshold {options.thresholds[i]}: {m}"))

            def fill_labels(writer, segment_ids=segment_ids, meter=meter):
                return pipeline.write_segmentation(fragments, tree, segment_ids, blocks, writer, ground_truth=truth,
                                                   voxel_size=options.voxel_size, meter=meter)
            labels_ref, tables = self._array(f"{prefix}/labels-{i}", shape, "uint64",
                                             _chunks(options.block_shape, shape, 8), fill_labels)
            if tables is None:                          # stored by an earlier call: tabulate it again
                tables = fill_labels(None)
            table, contingency = tables
            entry = S.ThresholdSegmentation(threshold=threshold, labels=labels_ref, n_segments=len(table["id"]))
            entry.segment_table.CopyFrom(self.store.put_json(
                f"{prefix}/segments-{i}.json", _table_json(table, threshold=threshold, voxel_size=options.voxel_size),
                if_exists="return_existing"))
            if contingency is not None:
                entry.scores.CopyFrom(_scores_message(pipeline.scores_from_contingency(*contingency)))
            result.segmentations.append(entry)
            if len(shown) < 3:
                reader = open_stored(self.store, labels_ref)
                shown[f"threshold {threshold:g}"] = [np.asarray(reader[z]) for z in z_shown]

        # 5. the figure
        report("figure")(0.0, "drawing sections")
        figure = plots.sections_figure([normalize_intensity(raw[z]) for z in z_shown],
                                       [pipeline.boundary_section(values, z) for z in z_shown], shown, z=z_shown,
                                       title=f"{source} boundaries, {int(ids.size)} fragments")
        result.figure.CopyFrom(self.store.put_bytes(f"{prefix}/figure.png", figure, media_type=PNG,
                                                    if_exists="return_existing"))
        progress(fraction_done=1.0, stage="store", message="stored")
        return result

    # --- Score

    async def Score(self, request, context):
        segmentation_volume = await self._resolve_volume(request.segmentation, "segmentation")
        truth_volume = await self._resolve_volume(request.ground_truth, "ground_truth")
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-segmentation-") as tmp:
            segmentation = await self._open(segmentation_volume, "segmentation", Path(tmp), stack, labels=True)
            truth = await self._open(truth_volume, "ground_truth", Path(tmp), stack, labels=True, like=segmentation)
            block = fit_block(SCORE_BLOCK_SHAPE, segmentation.shape,
                              segmentation.dtype.itemsize + truth.dtype.itemsize, self.max_input_bytes)
            blocks = plan_blocks(segmentation.shape, block)
            try:
                scores = await self.compute(pipeline.score_volumes, segmentation, truth, blocks)
            except BlockFailedError as exc:
                raise block_failure(exc) from exc
        return S.ScoreResponse(scores=_scores_message(scores))


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    limiter = ComputeLimiter(threads=settings.compute_threads, apply=True)
    servicer = SegmentationServicer(store, limiter=limiter, max_input_bytes=settings.max_input_bytes)
    return ServiceDefinition(name="segmentation", servicer=servicer,
                             add_to_server=segmentation_pb2_grpc.add_SegmentationServiceServicer_to_server,
                             service_full_name=SERVICE_NAME, version=SERVICE_VERSION)
