"""gRPC adapter of the connectomics service: validate, load, run the core in a worker thread, store.

Every RPC follows :class:`services.common.rpc.StoreBackedServicer`: check the plain fields
(:mod:`.requests`), resolve the artifact refs, compute the content-addressed prefix of the outputs
and return the stored result when a previous call made it, else load the inputs, run the core
(:mod:`.core`) holding a compute slot while progress streams, and store the outputs.

* ``DiffusionConnectome`` reads NIfTI and bval/bvec objects whole (each at most
  ``NEUROMESH_MAX_INPUT_BYTES``), tracks in worker processes, writes FA/MD/mask NIfTI, TRK and
  TCK, the matrices, tables, GraphML and figures.
* ``ContactGraph`` reads the label volume block by block (:mod:`services.common.volumes`), so a
  segmentation larger than memory is graphed all the same.
* ``SimulatedConnectome`` reads a Simulate result's spikes and synapse table.
* ``AnalyzeGraph`` computes graph measures of an edge table or a matrix.

Errors: bad input is INVALID_ARGUMENT naming the field (DWI and b-values of different lengths, a
parcellation of another shape, a non-finite affine, a segmentation that is not integer, a
malformed table); a missing artifact NOT_FOUND; a graph too large for a measure, or an input
larger than the service loads, RESOURCE_EXHAUSTED.

Example
-------
Started by ``python -m services.connectomics``; from lab software::

    stub = connectomics_pb2_grpc.ConnectomicsServiceStub(grpc.insecure_channel("127.0.0.1:50055"))
    for event in stub.ContactGraph(connectomics_pb2.ContactGraphRequest(
            segmentation=segmentation_pb2.Volume(ref=labels_ref), voxel_size_nm=[8, 8, 8])):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.connectomics.v1 import connectomics_pb2_grpc
from services.common.compute import ComputeLimiter
from services.common.errors import InvalidArgument, NeuroMeshError, NotFound, RequestError, ResourceExhausted
from services.common.metrics import neuromesh_counter
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.rpc import PNG, StoreBackedServicer
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.common.volumes import open_volume

from . import plots
from .core import diffusion, graph_measures
from .core.dmri import dmri_connectome
from .core.tractography import TrackingTooLargeError
from .core.contacts import contact_graph, synapse_graph
from .core.graph_io import (adjacency_from_edges, edge_table_csv, graphml_bytes, matrix_edge_table,
                            read_edge_table, read_synapse_table)
from .core.simulated import (MAX_DENSE_NEURONS, functional_connectivity, group_matrix, spike_count_matrix, structural_matrix,
                             structure_function_agreement)
from .requests import MeasuresOptions, contact_options, measures_options, simulated_options, tracking_options

logger = logging.getLogger(__name__)

#: bump when an algorithm's output changes, so cached results are not reused across versions
SERVICE_VERSION = "0.1.0"
SERVICE_NAME = C.DESCRIPTOR.services_by_name["ConnectomicsService"].full_name
CSV = "text/csv"
GRAPHML = "application/graphml+xml"
NIFTI = "application/x-nifti"
TRK = "application/x-trackvis"
TCK = "application/x-mrtrix-tck"
#: segments shown in the contact heatmap: the largest ones
HEATMAP_SEGMENTS = 40

VOXELS = neuromesh_counter("connectomics_voxels", "Voxels of EM segmentations graphed by ContactGraph")
STREAMLINES = neuromesh_counter("connectomics_streamlines", "Streamlines tracked by DiffusionConnectome")
EDGES = neuromesh_counter("connectomics_edges", "Edges of the graphs built, by kind: contact, synapse, "
                          "region, neuron", labelnames=("kind",))
for _kind in ("contact", "synapse", "region", "neuron"):
    EDGES.labels(kind=_kind)


def nifti_bytes(volume: np.ndarray, affine: np.ndarray) -> bytes:
    """A gzip-compressed NIfTI-1 file of ``volume`` on ``affine`` (what FSL, MRtrix and nibabel read)."""
    import nibabel

    image = nibabel.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)


#: words in the dMRI core's messages that tell which request field is wrong
_DIFFUSION_FIELDS = (("parcellation", "parcellation"), ("bval", "bvals"), ("bvec", "bvecs"), ("affine", "dwi"),
                     ("mask", "mask"), ("seed", "seed_fa_threshold"), ("dwi", "dwi"), ("step", "step_size_mm"),
                     ("angle", "max_angle_deg"), ("length", "min_length_mm"))


def _diffusion_field(message: str) -> str:
    lowered = message.lower()
    return next((field for word, field in _DIFFUSION_FIELDS if word in lowered), "dwi")


class GraphTooLarge(ResourceExhausted):
    default_reason = "GRAPH_TOO_LARGE"


def _measure_error(exc: ValueError, where: str) -> NeuroMeshError:
    if isinstance(exc, graph_measures.GraphTooLargeError):
        return GraphTooLarge(str(exc), field=where)
    return RequestError(str(exc), field=where)


class ConnectomicsServicer(StoreBackedServicer, connectomics_pb2_grpc.ConnectomicsServiceServicer):
    """Connectomics RPCs over a shared :class:`ArtifactStore`."""

    # --- shared steps

    async def _resolve_object(self, ref: ArtifactRef, field: str) -> ArtifactRef:
        return await self.resolve(ref, field, array=False)

    async def _resolve_any(self, ref: ArtifactRef, field: str) -> ArtifactRef:
        """The stored ref, array or object (a volume may be either); NOT_FOUND naming ``field``."""
        if not ref.key:
            raise InvalidArgument(f"{field} is required: an artifact reference with a key", field=f"{field}.key")
        try:
            return await asyncio.to_thread(self.store.resolve, ref)
        except NotFound as exc:
            raise NotFound(f"{field}: {exc.message}", reason=exc.reason, field=field, metadata=exc.metadata) from None

    async def _stream(self, work: Callable[..., Any], wrap: Callable[[Any], Any]):
        """Run ``work(progress)`` holding a compute slot; yield ``(wrap(progress), None)``, then ``(None, result)``."""
        async with self.limiter.slot():
            async with contextlib.aclosing(stream_progress(work)) as events:
                async for event in events:
                    if event.progress is not None:
                        yield wrap(event.progress), None
                    else:
                        yield None, event.result

    def _put(self, key: str, data: bytes, media_type: str) -> ArtifactRef:
        return self.store.put_bytes(key, data, media_type=media_type, if_exists="return_existing")

    def _measures(self, adjacency, *, node_ids, directed: bool, options: MeasuresOptions, prefix: str,
                  where: str) -> tuple[C.GraphMeasures | None, dict[str, np.ndarray]]:
        """Graph measures of ``adjacency`` stored under ``prefix``: the message and the node columns.

        None for a graph without edges (a segmentation whose segments never touch): its measures are
        undefined, and that is no error of the request."""
        # graph measures are defined without self-loops: streamlines that start and end in one
        # region (the diagonal of a connectivity matrix) are no edge of the region graph
        if hasattr(adjacency, "nnz"):
            adjacency = adjacency.tolil(copy=True)
            adjacency.setdiag(0)
            adjacency = adjacency.tocsr()
            adjacency.eliminate_zeros()
        else:
            adjacency = np.array(adjacency, dtype=np.float64)
            np.fill_diagonal(adjacency, 0.0)
        empty = adjacency.nnz == 0 if hasattr(adjacency, "nnz") else not np.any(adjacency)
        if options.skip or empty:
            return None, {}
        try:
            summary = graph_measures.graph_summary(adjacency, directed=directed, measures=options.measures,
                                                   n_random=options.n_random, seed=options.seed,
                                                   resolution=options.resolution)
        except ValueError as exc:
            raise _measure_error(exc, where) from None
        n = int(summary["n_nodes"])
        scalars, columns, rich_club = {}, {"id": np.asarray(node_ids)}, {}
        for key, value in summary.items():
            if key.startswith("rich_club"):
                rich_club[key] = np.asarray(value)
            elif isinstance(value, np.ndarray) and value.shape == (n,):
                columns[key] = value
            elif isinstance(value, (bool, int, float, np.integer, np.floating)) and key not in ("n_nodes", "n_edges"):
                scalars[key] = float(value)
        message = C.GraphMeasures(n_nodes=n, n_edges=int(summary["n_edges"]), directed=bool(summary["directed"]),
                                  measures=list(options.measures), scalars=scalars)
        message.node_table.CopyFrom(self._put(f"{prefix}/nodes.csv", edge_table_csv(columns), CSV))
        if rich_club:
            message.rich_club.CopyFrom(self._put(f"{prefix}/rich_club.csv", edge_table_csv(rich_club), CSV))
        return message, columns

    # --- DiffusionConnectome

    async def DiffusionConnectome(self, request, context):
        options = tracking_options(request)
        resolved = C.DiffusionConnectomeRequest()
        resolved.CopyFrom(request)
        names = ["dwi", "bvals", "bvecs", "parcellation"] + (["mask"] if request.mask.key else [])
        for name in names:
            getattr(resolved, name).CopyFrom(await self._resolve_object(getattr(request, name), name))
        prefix = result_prefix("connectomics", "DiffusionConnectome", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, C.DiffusionConnectomeResult)
        if stored is not None:
            yield C.DiffusionConnectomeResponse(result=stored)
            return
        data = {name: await asyncio.to_thread(self.store.get_bytes, getattr(resolved, name)) for name in names}

        def work(progress):
            return self._diffusion(progress, data, options, prefix)
        outcome = None
        async with contextlib.aclosing(self._stream(work, lambda p: C.DiffusionConnectomeResponse(progress=p))) \
                as events:
            async for event, result in events:
                if event is not None:
                    yield event
                else:
                    outcome = result
        yield C.DiffusionConnectomeResponse(result=await self.store_result(prefix, outcome, resolved, SERVICE_VERSION))

    def _diffusion(self, progress, data: dict[str, bytes], options, prefix: str) -> C.DiffusionConnectomeResult:
        """Read the NIfTI and text inputs, run the dMRI core, store the maps, tractogram, matrices, figures."""
        progress(fraction_done=0.0, stage="load", message="reading the DWI, gradients and parcellation")

        def read(reader, name, **kwargs):
            try:
                return reader(data[name], name=name, **kwargs)
            except ValueError as exc:
                raise RequestError(str(exc), field=name) from None
        dwi, affine = read(diffusion.read_nifti, "dwi")
        bvals, bvecs = read(diffusion.read_bvals, "bvals"), read(diffusion.read_bvecs, "bvecs")
        parcellation, parcellation_affine = read(diffusion.read_nifti, "parcellation")
        mask = read(diffusion.read_nifti, "mask")[0] if "mask" in data else None
        if not np.all(np.isfinite(affine)):
            raise RequestError("dwi: the affine holds NaN or infinite values", field="dwi")
        if parcellation.shape[:3] == dwi.shape[:3] and np.all(np.isfinite(parcellation_affine)) and \
                not np.allclose(parcellation_affine, affine, atol=1e-2):
            raise RequestError("parcellation: its affine differs from the DWI's: the labels must lie on the DWI's "
                               "voxel grid (resample them first)", field="parcellation")
        spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)) if np.all(np.isfinite(affine)) else [1.0]
        step = options.step_size_mm or float(min(spacing)) / 2
        started = time.perf_counter()

        def tracked(done, total):
            progress(fraction_done=0.1 + 0.75 * done / max(total, 1), stage="track",
                     message=f"{done} of {total} seeds tracked")
        progress(fraction_done=0.02, stage="fit", message=f"brain mask, DTI and {options.model.upper()} fit")
        try:
            result = dmri_connectome(
                dwi, bvals, bvecs, affine, parcellation, mask=mask, model=options.model, tracking=options.tracking,
                seeds_per_voxel=options.seeds_per_voxel, step_size_mm=step, max_angle_deg=options.max_angle_deg,
                fa_threshold=options.stop_fa_threshold, seed_fa_threshold=options.seed_fa_threshold,
                min_length_mm=options.min_length_mm or 0.0, max_length_mm=options.max_length_mm or 250.0,
                n_processes=options.processes, seed=options.seed, progress=tracked,
                shard=(options.shard_index, options.shard_count) if options.shard_count else None)
        except TrackingTooLargeError as exc:
            raise ResourceExhausted(str(exc), reason="TRACKING_TOO_LARGE", field="seeds_per_voxel") from None
        except ValueError as exc:
            raise RequestError(str(exc), field=_diffusion_field(str(exc))) from None
        STREAMLINES.inc(result.n_tracked)
        EDGES.labels(kind="region").inc(int(np.count_nonzero(np.triu(result.matrices["count"], 1))))
        tracking_s = result.seconds.get("tracking", time.perf_counter() - started)

        progress(fraction_done=0.86, stage="store", message="storing maps and streamlines")
        out = C.DiffusionConnectomeResult(
            n_seeds=result.n_seeds, n_streamlines=result.n_tracked, n_filtered=result.n_too_short + result.n_too_long,
            n_connecting=result.n_connecting, tracking_seconds=tracking_s,
            streamlines_per_second=result.n_tracked / tracking_s if tracking_s > 0 else 0.0)
        for name, volume, dtype in (("fa", result.fa, np.float32), ("md", result.md, np.float32),
                                    ("mask", result.mask, np.uint8)):
            getattr(out, name).CopyFrom(self._put(f"{prefix}/{name}.nii.gz", nifti_bytes(volume.astype(dtype),
                                                                                         result.affine), NIFTI))
        out.streamlines_trk.CopyFrom(self._put(f"{prefix}/streamlines.trk", result.save_streamlines(format="trk"), TRK))
        out.streamlines_tck.CopyFrom(self._put(f"{prefix}/streamlines.tck", result.save_streamlines(format="tck"), TCK))
        labels = result.labels.astype(np.int64)
        out.region_labels.CopyFrom(self.store.put_array(f"{prefix}/region_labels", labels, if_exists="return_existing"))
        out.region_volumes.CopyFrom(self.store.put_array(f"{prefix}/region_volumes",
                                                         result.region_volumes_mm3.astype(np.float64),
                                                         if_exists="return_existing"))
        for name in ("count", "volume", "length"):
            matrix = np.asarray(result.matrices[name], dtype=np.float64)
            entry = out.matrices.add(normalization=name)
            entry.matrix.CopyFrom(self.store.put_array(f"{prefix}/matrix_{name}", matrix, if_exists="return_existing"))
            entry.edge_table.CopyFrom(self._put(f"{prefix}/edges_{name}.csv", edge_table_csv(
                matrix_edge_table(matrix, labels, directed=False)), CSV))
        volume_matrix = np.asarray(result.matrices["volume"], dtype=np.float64)
        nodes = {"id": labels, "volume_mm3": result.region_volumes_mm3.astype(np.float64)}
        out.graphml.CopyFrom(self._put(f"{prefix}/connectome.graphml", graphml_bytes(
            matrix_edge_table(volume_matrix, labels, directed=False), directed=False, nodes=nodes), GRAPHML))
        out.heatmap.CopyFrom(self._put(f"{prefix}/connectivity.png", plots.heatmaps_figure(
            {name: result.matrices[name] for name in ("count", "volume", "length")}, labels=labels.tolist(),
            title=f"{result.n_connecting} of {result.n_tracked} streamlines join two regions "
                  f"({result.model.upper()}, {result.tracking})"), PNG))
        out.fa_figure.CopyFrom(self._put(f"{prefix}/fa.png", plots.fa_figure(
            result.fa, result.mask, title=f"FA, brain mask outlined; {result.n_seeds} seeds"), PNG))
        progress(fraction_done=0.92, stage="measures", message="graph measures of the volume-normalised matrix")
        measures, _ = self._measures(volume_matrix, node_ids=labels, directed=False, options=options.measures,
                                     prefix=f"{prefix}/measures", where="measures")
        if measures is not None:
            out.measures.CopyFrom(measures)
        progress(fraction_done=1.0, stage="store", message="stored")
        return out

    # --- ContactGraph

    async def ContactGraph(self, request, context):
        options = contact_options(request)
        resolved = C.ContactGraphRequest()
        resolved.CopyFrom(request)
        resolved.segmentation.ref.CopyFrom(await self._resolve_any(request.segmentation.ref, "segmentation.ref"))
        with_synapses = bool(request.synapses.key)
        if with_synapses:
            resolved.synapses.CopyFrom(await self._resolve_object(request.synapses, "synapses"))
        prefix = result_prefix("connectomics", "ContactGraph", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, C.ContactGraphResult)
        if stored is not None:
            yield C.ContactGraphResponse(result=stored)
            return
        synapse_data = await asyncio.to_thread(self.store.get_bytes, resolved.synapses) if with_synapses else None
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="neuromesh-connectomics-") as tmp:
            labels = await asyncio.to_thread(open_volume, self.store, resolved.segmentation.ref,
                                             resolved.segmentation.dataset, "segmentation", Path(tmp), stack,
                                             max_bytes=self.max_input_bytes)
            # a block and its extra layer, read as uint64 labels
            block_bytes = int(np.prod([min(b + 1, s) for b, s in zip(options.block_shape, labels.shape)])) * 8
            if block_bytes > self.max_input_bytes:
                raise ResourceExhausted(f"a block of {options.block_shape} reads {block_bytes} bytes at once, more "
                                        f"than NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}: choose a smaller "
                                        f"block_shape", field="block_shape")

            def work(progress):
                return self._contact_graph(progress, labels, options, synapse_data, prefix)
            outcome = None
            async with contextlib.aclosing(self._stream(work, lambda p: C.ContactGraphResponse(progress=p))) as events:
                async for event, result in events:
                    if event is not None:
                        yield event
                    else:
                        outcome = result
        yield C.ContactGraphResponse(result=await self.store_result(prefix, outcome, resolved, SERVICE_VERSION))

    def _contact_graph(self, progress, labels, options, synapse_data: bytes | None, prefix: str) -> C.ContactGraphResult:
        progress(fraction_done=0.0, stage="contacts", message=f"graphing {tuple(labels.shape)} in blocks of "
                                                              f"{options.block_shape}")

        def blocks_done(done, total):
            progress(fraction_done=0.8 * done / total, stage="contacts", message=f"block {done} of {total}")
        try:
            graph = contact_graph(labels, voxel_size=options.voxel_size, block_shape=options.block_shape,
                                  progress=blocks_done)
        except ValueError as exc:
            raise RequestError(str(exc), field="segmentation") from None
        VOXELS.inc(int(np.prod(graph.shape)))
        keep = graph.faces >= options.min_contact_faces
        edges = {"source": graph.edge_a[keep], "target": graph.edge_b[keep], "faces": graph.faces[keep],
                 "area_nm2": graph.area[keep]}
        EDGES.labels(kind="contact").inc(int(keep.sum()))
        voxel_volume = float(np.prod(options.voxel_size))
        nodes = {"id": graph.node_ids, "voxel_count": graph.node_voxels,
                 "volume_nm3": graph.node_voxels * voxel_volume}
        result = C.ContactGraphResult(n_nodes=graph.n_nodes, n_edges=int(keep.sum()),
                                      total_area_nm2=float(graph.area[keep].sum()))
        progress(fraction_done=0.82, stage="store", message="storing the contact graph")
        result.node_table.CopyFrom(self._put(f"{prefix}/segments.csv", edge_table_csv(nodes), CSV))
        result.edge_table.CopyFrom(self._put(f"{prefix}/contacts.csv", edge_table_csv(edges), CSV))
        result.graphml.CopyFrom(self._put(f"{prefix}/contacts.graphml",
                                          graphml_bytes(edges, directed=False, nodes=nodes), GRAPHML))
        node_list, adjacency = adjacency_from_edges({**edges, "weight": edges["area_nm2"]}, directed=False,
                                                    nodes=graph.node_ids)
        if graph.n_nodes:
            progress(fraction_done=0.85, stage="measures", message="graph measures of the contact graph")
            measures, _ = self._measures(adjacency, node_ids=node_list, directed=False, options=options.measures,
                                         prefix=f"{prefix}/contact_measures", where="segmentation")
            if measures is not None:
                result.measures.CopyFrom(measures)
            largest = np.argsort(graph.node_voxels)[::-1][:HEATMAP_SEGMENTS]
            largest.sort()
            shown = adjacency[largest][:, largest].toarray()
            result.heatmap.CopyFrom(self._put(f"{prefix}/contacts.png", plots.heatmaps_figure(
                {"area": shown}, labels=graph.node_ids[largest].tolist(),
                title=f"contact area (nm²) between the {len(largest)} largest of {graph.n_nodes} segments"), PNG))
        if synapse_data is not None:
            progress(fraction_done=0.92, stage="synapses", message="the synapse graph")
            try:
                table = read_synapse_table(synapse_data)
                synapses = synapse_graph(table["pre"], table["post"], positions=table.get("positions"),
                                         weights=table.get("weight"), shape=graph.shape)
            except ValueError as exc:
                raise RequestError(f"synapses: {exc}", field="synapses") from None
            EDGES.labels(kind="synapse").inc(synapses.n_edges)
            syn_edges = {"source": synapses.pre, "target": synapses.post, "synapses": synapses.synapses,
                         "weight": synapses.weight}
            result.n_synapses = int(len(table["pre"]))
            result.n_synapse_edges = synapses.n_edges
            result.synapse_edge_table.CopyFrom(self._put(f"{prefix}/synapses.csv", edge_table_csv(syn_edges), CSV))
            result.synapse_graphml.CopyFrom(self._put(f"{prefix}/synapses.graphml",
                                                      graphml_bytes(syn_edges, directed=True), GRAPHML))
            if synapses.n_nodes:
                measures, _ = self._measures(synapses.adjacency(), node_ids=synapses.node_ids, directed=True,
                                             options=options.measures, prefix=f"{prefix}/synapse_measures",
                                             where="synapses")
                if measures is not None:
                    result.synapse_measures.CopyFrom(measures)
        progress(fraction_done=1.0, stage="store", message="stored")
        return result

    # --- SimulatedConnectome

    async def SimulatedConnectome(self, request, context):
        options = simulated_options(request)
        resolved = C.SimulatedConnectomeRequest()
        resolved.CopyFrom(request)
        arrays = ("spike_times", "spike_ids", "pre_ids", "post_ids", "weights")
        for name in arrays:
            getattr(resolved, name).CopyFrom(await self.resolve(getattr(request, name), name, array=True))
        resolved.population_table.CopyFrom(await self._resolve_object(request.population_table, "population_table"))
        prefix = result_prefix("connectomics", "SimulatedConnectome", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, C.SimulatedConnectomeResponse)
        if stored is not None:
            return stored
        loaded = {name: await self.load(getattr(resolved, name)) for name in arrays}
        try:
            populations = await asyncio.to_thread(self.store.get_json, resolved.population_table)
            populations = [(str(p["name"]), int(p["offset"]), int(p["size"])) for p in populations]
        except (ValueError, KeyError, TypeError):
            raise RequestError("population_table is not a Simulate population table: a JSON list of "
                               "{name, offset, size}", field="population_table") from None
        result = await self.compute(self._simulated, loaded, populations, options, prefix)
        return await self.store_result(prefix, result, resolved, SERVICE_VERSION)

    def _simulated(self, arrays, populations, options, prefix: str) -> C.SimulatedConnectomeResponse:
        n_total = max((offset + size for _, offset, size in populations), default=0)
        first, last = options.first_neuron, options.last_neuron or n_total
        if last > n_total:
            raise RequestError(f"last_neuron {last} is beyond the network's {n_total} neurons", field="last_neuron")
        n = last - first
        if n > MAX_DENSE_NEURONS:
            raise RequestError(f"the network has {n} neurons, more than the {MAX_DENSE_NEURONS} a dense correlation "
                               f"matrix is made for: choose a range with first_neuron and last_neuron",
                               field="last_neuron")
        times, ids = arrays["spike_times"], arrays["spike_ids"]
        pre, post, weights = arrays["pre_ids"], arrays["post_ids"], arrays["weights"]
        for name, a in (("spike_times", times), ("spike_ids", ids), ("pre_ids", pre), ("post_ids", post),
                        ("weights", weights)):
            if a.ndim != 1:
                raise RequestError(f"{name} must be 1-D, got shape {a.shape}", field=name)
        keep_spikes = (ids >= first) & (ids < last)
        keep_synapses = (pre >= first) & (pre < last) & (post >= first) & (post < last)
        try:
            W = structural_matrix(pre[keep_synapses] - first, post[keep_synapses] - first, weights[keep_synapses],
                                  n_neurons=n)
            counts = spike_count_matrix(times[keep_spikes], ids[keep_spikes] - first, n_neurons=n,
                                        bin_ms=options.bin_ms, duration_ms=options.duration_ms,
                                        start_ms=options.start_ms)
            fc = functional_connectivity(counts)
            agreement = structure_function_agreement(W, fc)
        except ValueError as exc:
            raise RequestError(str(exc), field="spike_ids") from None
        EDGES.labels(kind="neuron").inc(int(W.nnz))
        groups = np.full(n, "", dtype=object)
        names = []
        for name, offset, size in populations:
            lo, hi = max(offset, first), min(offset + size, last)
            if hi > lo:
                groups[lo - first:hi - first] = name
                names.append(name)
        order = {name: i for i, name in enumerate(names)}
        group_index = np.array([order[g] for g in groups])
        _, pop_structural = group_matrix(W, group_index, reduce="sum")
        _, pop_functional = group_matrix(fc, group_index, reduce="mean")
        dense = W.toarray()
        strength = np.abs(dense) + np.abs(dense).T
        upper = np.triu(np.ones((n, n), dtype=bool), k=1) & np.isfinite(fc)
        response = C.SimulatedConnectomeResponse(
            populations=names, n_neurons=n, n_bins=int(counts.shape[0]),
            agreement=C.StructureFunctionAgreement(**agreement.as_dict()))
        response.structural.CopyFrom(self.store.put_array(f"{prefix}/structural", dense, if_exists="return_existing"))
        response.functional.CopyFrom(self.store.put_array(f"{prefix}/functional", fc, if_exists="return_existing"))
        response.population_structural.CopyFrom(self.store.put_array(f"{prefix}/population_structural",
                                                                     pop_structural, if_exists="return_existing"))
        response.population_functional.CopyFrom(self.store.put_array(f"{prefix}/population_functional",
                                                                     pop_functional, if_exists="return_existing"))
        figure = plots.structure_function_figure(
            pop_structural if n > 60 else dense, pop_functional if n > 60 else fc,
            labels=names if n > 60 else list(range(first, last)), pair_strength=strength[upper],
            pair_correlation=fc[upper],
            title=f"{n} neurons, {counts.shape[0]} bins of {options.bin_ms:g} ms: r = {agreement.pearson_r:.2f}")
        response.figure.CopyFrom(self._put(f"{prefix}/structure_function.png", figure, PNG))
        return response

    # --- AnalyzeGraph

    async def AnalyzeGraph(self, request, context):
        options = measures_options(request.measures)
        kind = request.WhichOneof("graph")
        if kind is None:
            raise InvalidArgument("a graph is required: edge_table (CSV) or matrix (a square array)", field="graph")
        resolved = C.AnalyzeGraphRequest()
        resolved.CopyFrom(request)
        if kind == "edge_table":
            resolved.edge_table.CopyFrom(await self._resolve_object(request.edge_table, "edge_table"))
        else:
            resolved.matrix.CopyFrom(await self.resolve(request.matrix, "matrix", array=True))
        prefix = result_prefix("connectomics", "AnalyzeGraph", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, C.AnalyzeGraphResponse)
        if stored is not None:
            return stored
        if kind == "edge_table":
            data = await asyncio.to_thread(self.store.get_bytes, resolved.edge_table)
        else:
            data = await self.load(resolved.matrix)
        result = await self.compute(self._analyze, kind, data, request, options, prefix)
        return await self.store_result(prefix, result, resolved, SERVICE_VERSION)

    def _analyze(self, kind: str, data, request, options: MeasuresOptions, prefix: str) -> C.AnalyzeGraphResponse:
        directed = request.directed
        if kind == "edge_table":
            try:
                table = read_edge_table(data)
                nodes, adjacency = adjacency_from_edges(table, weight=request.weight_column or "weight",
                                                        directed=directed)
            except ValueError as exc:
                raise RequestError(f"edge_table: {exc}", field="edge_table") from None
        else:
            matrix = np.asarray(data)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise RequestError(f"matrix must be square, got shape {matrix.shape}", field="matrix")
            if not np.issubdtype(matrix.dtype, np.number) or not np.isfinite(matrix).all():
                raise RequestError("matrix must hold finite numbers", field="matrix")
            if not directed and not np.allclose(matrix, matrix.T):
                raise RequestError("matrix is not symmetric: set directed for a directed graph", field="matrix")
            nodes, adjacency = np.arange(len(matrix)), matrix.astype(np.float64)
        measures, columns = self._measures(adjacency, node_ids=nodes, directed=directed, options=options,
                                           prefix=prefix, where=kind)
        response = C.AnalyzeGraphResponse()
        if measures is not None:
            response.measures.CopyFrom(measures)
        edges = matrix_edge_table(adjacency if kind == "edge_table" else adjacency, nodes, directed=directed)
        node_attributes = {k: v for k, v in columns.items() if np.asarray(v).dtype.kind in "iuf" or k == "id"}
        response.graphml.CopyFrom(self._put(f"{prefix}/graph.graphml",
                                            graphml_bytes(edges, directed=directed,
                                                          nodes=node_attributes or {"id": nodes}), GRAPHML))
        return response


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    limiter = ComputeLimiter(threads=settings.compute_threads, apply=True)
    servicer = ConnectomicsServicer(store, limiter=limiter, max_input_bytes=settings.max_input_bytes)
    return ServiceDefinition(name="connectomics", servicer=servicer,
                             add_to_server=connectomics_pb2_grpc.add_ConnectomicsServiceServicer_to_server,
                             service_full_name=SERVICE_NAME, version=SERVICE_VERSION)
