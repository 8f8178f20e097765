"""``client.connectomics``: wiring diagrams from diffusion MRI, EM segmentations and simulations.

Inputs as labs have them: NIfTI files (paths, bytes or ``nibabel`` images) with FSL bval/bvec
text files (paths, or arrays written as text here), label volumes (arrays, TIFF/``.npy``/HDF5
files, or a segmentation result), synapse tables (CSV paths, DataFrames, dicts of columns), and
simulation results. Answers hold CSV tables (``result.table("edge_table")``), Zarr matrices,
GraphML, NIfTI maps and figures.

Example
-------
>>> with Client.local() as client:                                                     # doctest: +SKIP
...     seg = client.segmentation.segment(raw, voxel_size_nm=(8, 8, 8))
...     graph = client.connectomics.contact_graph(seg, voxel_size_nm=(8, 8, 8),
...                                               measures=["degree", "clustering", "communities"])
...     graph.table("edge_table").nlargest(5, "area_nm2")
...     graph.measures.scalars["modularity"]
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.connectomics.v1 import connectomics_pb2_grpc

from .errors import InvalidArgument
from .fields import enum_value, integer, non_negative, number_list, positive, strings, unit_interval
from .progress import ProgressCallback
from .results import Result
from .segmentation import volume
from .service import ServiceClient

__all__ = ["ConnectomicsClient", "ContactGraphResult", "DiffusionConnectomeResult", "GraphAnalysis",
           "SimulatedConnectomeResult", "measures_options"]

NIFTI_MEDIA_TYPE = "application/x-nifti"


def measures_options(measures: Any) -> C.GraphMeasuresOptions | None:
    """``GraphMeasuresOptions`` from a list of measure names, a dict of its fields, False (skip the
    measures) or the message; None keeps the service's default (all but the random-graph ones).

    Examples
    --------
    >>> list(measures_options(["degree", "communities"]).measures)
    ['degree', 'communities']
    >>> measures_options(False).skip, measures_options({"measures": ["small_world"], "n_random": 5}).n_random
    (True, 5)
    """
    if measures is None:
        return None
    if isinstance(measures, C.GraphMeasuresOptions):
        return measures
    if measures is False:
        return C.GraphMeasuresOptions(skip=True)
    if isinstance(measures, Mapping):
        unknown = sorted(set(measures) - set(C.GraphMeasuresOptions.DESCRIPTOR.fields_by_name))
        if unknown:
            raise InvalidArgument(f"measures has no option {', '.join(map(repr, unknown))}; options: measures, "
                                  f"n_random, seed, resolution, skip", field=f"measures.{unknown[0]}")
        values = dict(measures)
        if "measures" in values:
            values["measures"] = strings(values["measures"], field="measures.measures")
        return C.GraphMeasuresOptions(**values)
    return C.GraphMeasuresOptions(measures=strings(measures, field="measures"))


def _text_rows(values: Any, *, field: str, rows: int | None) -> bytes:
    """FSL-style text of b-values (one row) or gradient directions (three rows)."""
    array = np.asarray(values, dtype=np.float64)
    if rows == 1:
        array = array.reshape(1, -1)
    elif array.ndim == 2 and array.shape[1] == 3 and array.shape[0] != 3:
        array = array.T   # (N, 3) -> FSL's three rows
    if array.ndim != 2 or (rows == 3 and array.shape[0] != 3):
        raise InvalidArgument(f"{field} must be {'a vector' if rows == 1 else 'a (3, N) or (N, 3) array'}, got shape "
                              f"{np.shape(values)}", field=field, reason="SHAPE_MISMATCH")
    if not np.all(np.isfinite(array)):
        raise InvalidArgument(f"{field} holds non-finite values", field=field, reason="NON_FINITE_VALUES")
    return ("\n".join(" ".join(repr(float(v)) for v in row) for row in array) + "\n").encode()


class DiffusionConnectomeResult(Result):
    """A diffusion-MRI connectome (result of DiffusionConnectome).

    Numbers: ``n_seeds``, ``n_streamlines``, ``n_filtered``, ``n_connecting``,
    ``tracking_seconds``, ``streamlines_per_second``, ``measures``. Artifacts: ``fa``, ``md``,
    ``mask`` (NIfTI), ``streamlines_trk``, ``streamlines_tck``, ``region_labels``,
    ``region_volumes``, ``matrices`` (one per normalisation), ``graphml``, ``heatmap``,
    ``fa_figure``, ``report``.

    Examples
    --------
    >>> dmri.matrix("count").shape, dmri.array("region_labels")          # doctest: +SKIP
    ((7, 7), array([1, 2, 3, 4, 5, 6, 7]))
    >>> dmri.save("streamlines_trk", "tracts.trk")                       # doctest: +SKIP
    """

    _figure = "heatmap"

    def matrix(self, normalization: str = "count") -> np.ndarray:
        """The region x region matrix under ``normalization`` ("count", "volume" or "length").

        Examples
        --------
        >>> dmri.matrix("volume").max()                                  # doctest: +SKIP
        """
        for entry in self.matrices:
            if entry.normalization == normalization:
                return entry.matrix.array()
        raise InvalidArgument(f"no {normalization!r} matrix; normalisations: "
                              f"{', '.join(e.normalization for e in self.matrices)}", field="normalization")

    def edges(self, normalization: str = "count", *, as_frame: bool | None = None) -> Any:
        """The edge table (source, target, weight) of one normalisation.

        Examples
        --------
        >>> dmri.edges("count").sort_values("weight").tail(3)            # doctest: +SKIP
        """
        for entry in self.matrices:
            if entry.normalization == normalization:
                return entry.edge_table.table(as_frame=as_frame)
        raise InvalidArgument(f"no {normalization!r} edge table", field="normalization")


class ContactGraphResult(Result):
    """The contact graph of a label volume (result of ContactGraph).

    Numbers: ``n_nodes``, ``n_edges``, ``total_area_nm2``, ``measures``; with synapses
    ``n_synapses``, ``n_synapse_edges``, ``synapse_measures``. Artifacts: ``node_table`` (id,
    voxel_count, volume_nm3), ``edge_table`` (source, target, faces, area_nm2), ``graphml``,
    ``synapse_edge_table``, ``synapse_graphml``, ``heatmap``, ``report``.

    Examples
    --------
    >>> graph.edges().head()                                             # doctest: +SKIP
    >>> graph.measures.scalars["average_clustering"]                     # doctest: +SKIP
    0.41
    """

    _figure = "heatmap"

    def edges(self, *, as_frame: bool | None = None) -> Any:
        """The contact table: source, target (source < target), faces, area_nm2.

        Examples
        --------
        >>> graph.edges(as_frame=False)["faces"].sum()                   # doctest: +SKIP
        """
        return self.table("edge_table", as_frame=as_frame)

    def nodes(self, *, as_frame: bool | None = None) -> Any:
        """The segment table: id, voxel_count, volume_nm3.

        Examples
        --------
        >>> graph.nodes().set_index("id").volume_nm3.max()               # doctest: +SKIP
        """
        return self.table("node_table", as_frame=as_frame)


class SimulatedConnectomeResult(Result):
    """Structure against function of a simulated network (answer of SimulatedConnectome):
    ``structural`` and ``functional`` matrices, their population versions, ``populations``,
    ``agreement`` (pearson_r, spearman_rho, connected and unconnected mean correlations, ...),
    ``figure``, ``report``.

    Examples
    --------
    >>> sc.agreement.connected_mean_correlation > sc.agreement.unconnected_mean_correlation   # doctest: +SKIP
    True
    """

    _figure = "figure"


class GraphAnalysis(Result):
    """Graph measures of a graph (answer of AnalyzeGraph): ``measures`` (``scalars``,
    ``node_table``, ``rich_club``), ``graphml``, ``report``.

    Examples
    --------
    >>> client.connectomics.analyze_graph(matrix=W).measures.scalars["global_efficiency"]   # doctest: +SKIP
    0.53
    """


class ConnectomicsClient(ServiceClient):
    """The connectomics service (``neuromesh.connectomics.v1.ConnectomicsService``).

    Examples
    --------
    >>> client.connectomics                                        # doctest: +SKIP
    <ConnectomicsClient connectomics at 127.0.0.1:50055>
    """

    name = "connectomics"
    proto_service = "neuromesh.connectomics.v1.ConnectomicsService"
    stub_class = connectomics_pb2_grpc.ConnectomicsServiceStub

    # --- inputs

    def _nifti(self, value: Any, field: str) -> ArtifactRef:
        if hasattr(value, "to_bytes") and hasattr(value, "affine"):   # a nibabel image in memory
            return self.artifacts.upload_bytes(value.to_bytes(), media_type=NIFTI_MEDIA_TYPE)
        if isinstance(value, np.ndarray):
            raise InvalidArgument(f"{field} needs its affine: pass a NIfTI path or a nibabel image "
                                  f"(nibabel.Nifti1Image(array, affine)), not a bare array", field=field)
        return self.artifacts.file_input(value, field=field, media_type=NIFTI_MEDIA_TYPE)

    def _text(self, value: Any, field: str, rows: int) -> ArtifactRef:
        if isinstance(value, (str, os.PathLike, bytes, ArtifactRef)) or hasattr(value, "__artifact_ref__"):
            return self.artifacts.file_input(value, field=field, media_type="text/plain")
        return self.artifacts.upload_bytes(_text_rows(value, field=field, rows=rows), media_type="text/plain")

    # --- DiffusionConnectome

    def diffusion_connectome(self, dwi: Any, bvals: Any, bvecs: Any, parcellation: Any, *, mask: Any = None,
                             model: str = "csd", tracking: str = "deterministic", seeds_per_voxel: int = 0,
                             seed_fa_threshold: float | None = None, stop_fa_threshold: float | None = None,
                             step_size_mm: float = 0.0, max_angle_deg: float = 0.0, min_length_mm: float = 0.0,
                             max_length_mm: float = 0.0, processes: int = 0, seed: int = 0, shard_index: int = 0,
                             shard_count: int = 0, measures: Any = None, progress: bool | None = None,
                             on_progress: ProgressCallback | None = None,
                             timeout: float | None = None) -> DiffusionConnectomeResult:
        """Diffusion MRI to a region x region connectivity matrix, streamlines and graph measures.

        Streams progress (stages "load", "mask", "fit", "track", "connectivity", "measures",
        "store"); Ctrl-C cancels the tracking and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        dwi : path, bytes, nibabel image or stored file
            4-D diffusion-weighted NIfTI (x, y, z, volumes), ``.nii`` or ``.nii.gz``.
        bvals, bvecs : path, bytes, array_like or stored file
            FSL text files, or arrays: b-values ``(N,)``, directions ``(N, 3)`` or ``(3, N)``.
        parcellation : path, bytes, nibabel image or stored file
            Integer region labels on the DWI's grid; 0 = no region.
        mask : path, bytes, nibabel image or stored file, optional
            Brain mask; default median Otsu on the b0 volumes.
        model : str, default "csd"
            "csd", "csa" or "dti".
        tracking : str, default "deterministic"
            "deterministic" or "probabilistic".
        seeds_per_voxel : int, default 0
            n^3 seeds per voxel; 0 means 1.
        seed_fa_threshold, stop_fa_threshold : float in [0, 1), optional
            Defaults 0.3 and 0.2.
        step_size_mm, max_angle_deg, min_length_mm, max_length_mm : float, default 0
            0 means half the smallest voxel side, 30 degrees, no minimum, 250 mm.
        processes : int, default 0
            Tracking worker processes; 0 means 1.
        seed : int, default 0
        shard_index, shard_count : int, default 0
            Track only every shard_count-th seed from shard_index.
        measures : list of str, dict, False or GraphMeasuresOptions, optional
            See :func:`measures_options`.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        DiffusionConnectomeResult

        Examples
        --------
        >>> dmri = client.connectomics.diffusion_connectome(
        ...     "sub-01_dwi.nii.gz", "sub-01_dwi.bval", "sub-01_dwi.bvec", "sub-01_aparc.nii.gz",
        ...     model="csd", tracking="probabilistic", processes=4)          # doctest: +SKIP
        >>> dmri.matrix("volume")                                          # doctest: +SKIP
        """
        request = C.DiffusionConnectomeRequest(
            model=enum_value(C.FibreModel, model, field="model"),
            tracking=enum_value(C.TrackingMethod, tracking, field="tracking"),
            seeds_per_voxel=integer(seeds_per_voxel, field="seeds_per_voxel"),
            step_size_mm=non_negative(step_size_mm, field="step_size_mm"),
            max_angle_deg=non_negative(max_angle_deg, field="max_angle_deg"),
            min_length_mm=non_negative(min_length_mm, field="min_length_mm"),
            max_length_mm=non_negative(max_length_mm, field="max_length_mm"),
            processes=integer(processes, field="processes"), seed=integer(seed, field="seed", minimum=None),
            shard_index=integer(shard_index, field="shard_index"), shard_count=integer(shard_count, field="shard_count"))
        if request.max_angle_deg > 90:
            raise InvalidArgument(f"max_angle_deg must be in (0, 90], got {request.max_angle_deg}",
                                  field="max_angle_deg")
        if request.max_length_mm and request.min_length_mm > request.max_length_mm:
            raise InvalidArgument(f"min_length_mm ({request.min_length_mm}) exceeds max_length_mm "
                                  f"({request.max_length_mm})", field="min_length_mm")
        if request.shard_count and request.shard_index >= request.shard_count:
            raise InvalidArgument(f"shard_index must be below shard_count ({request.shard_count}), got "
                                  f"{request.shard_index}", field="shard_index")
        for name, value in (("seed_fa_threshold", seed_fa_threshold), ("stop_fa_threshold", stop_fa_threshold)):
            if value is not None:
                setattr(request, name, unit_interval(value, field=name, closed=False))
        options = measures_options(measures)
        if options is not None:
            request.measures.CopyFrom(options)
        request.dwi.CopyFrom(self._nifti(dwi, "dwi"))
        request.bvals.CopyFrom(self._text(bvals, "bvals", rows=1))
        request.bvecs.CopyFrom(self._text(bvecs, "bvecs", rows=3))
        request.parcellation.CopyFrom(self._nifti(parcellation, "parcellation"))
        if mask is not None:
            request.mask.CopyFrom(self._nifti(mask, "mask"))
        return self._stream("DiffusionConnectome", request, DiffusionConnectomeResult, timeout=timeout,
                            progress=progress, on_progress=on_progress)

    # --- ContactGraph

    def contact_graph(self, segmentation: Any, *, dataset: str = "", voxel_size_nm: Sequence[float] = (),
                      block_shape: Sequence[int] = (), min_contact_faces: int = 0, synapses: Any = None,
                      measures: Any = None, progress: bool | None = None, on_progress: ProgressCallback | None = None,
                      timeout: float | None = None) -> ContactGraphResult:
        """The contact graph of a label volume: segments sharing voxel faces, weighted by contact area.

        Streams progress (stages "load", "contacts", "synapses", "measures", "store"); Ctrl-C
        cancels it and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        segmentation : array_like, path, SegmentResult, ThresholdSegmentation or stored volume
            Integer labels (z, y, x), 0 = background.
        dataset : str
            HDF5 files only: the dataset path.
        voxel_size_nm : three floats, optional
            (z, y, x) in nm; empty: 1 nm. Areas are in nm^2.
        block_shape : three ints, optional
            Voxels read at a time; empty: (64, 256, 256).
        min_contact_faces : int, default 0
            Contacts of fewer faces are left out.
        synapses : CSV path, DataFrame, dict of columns, rows, or stored table, optional
            Columns pre, post (segment ids), optionally z, y, x and weight: adds the directed
            synapse graph.
        measures : list of str, dict, False or GraphMeasuresOptions, optional
            See :func:`measures_options`.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        ContactGraphResult

        Examples
        --------
        >>> graph = client.connectomics.contact_graph(labels, voxel_size_nm=(8, 8, 8), min_contact_faces=4,
        ...                                           synapses={"pre": [3, 5], "post": [5, 9]})   # doctest: +SKIP
        >>> graph.n_edges, graph.n_synapse_edges                                                 # doctest: +SKIP
        (212, 2)
        """
        request = C.ContactGraphRequest(
            voxel_size_nm=number_list(voxel_size_nm, field="voxel_size_nm", length=3, check=positive),
            block_shape=number_list(block_shape, field="block_shape", length=3, kind=int,
                                    check=lambda v, field: integer(v, field=field, minimum=1)),
            min_contact_faces=integer(min_contact_faces, field="min_contact_faces"))
        options = measures_options(measures)
        if options is not None:
            request.measures.CopyFrom(options)
        request.segmentation.CopyFrom(volume(self.artifacts, segmentation, field="segmentation", dataset=dataset))
        if synapses is not None:
            request.synapses.CopyFrom(self.artifacts.table_input(synapses, field="synapses"))
        return self._stream("ContactGraph", request, ContactGraphResult, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    # --- SimulatedConnectome

    def simulated_connectome(self, simulation: Any, *, duration_ms: float | None = None, start_ms: float = 0.0,
                             bin_ms: float = 0.0, first_neuron: int = 0, last_neuron: int = 0,
                             timeout: float | None = None) -> SimulatedConnectomeResult:
        """A simulated network's structural graph against its functional graph (count correlations).

        Parameters
        ----------
        simulation : SimulationResult, or dict of refs
            A simulation run with ``record_connectivity=True``, or a mapping with its
            ``spike_times``, ``spike_ids``, ``pre_ids``, ``post_ids``, ``weights`` and
            ``population_table``.
        duration_ms : float, optional
            Spikes counted in [start_ms, start_ms + duration_ms); default: to the end of the run
            (needs a SimulationResult).
        start_ms : float, default 0
        bin_ms : float, default 0
            Count bins; 0 means 20 ms.
        first_neuron, last_neuron : int, default 0
            Global ids analysed, [first, last); last 0: every neuron (at most 8000).
        timeout : float, optional

        Returns
        -------
        SimulatedConnectomeResult

        Examples
        --------
        >>> run = client.simulation.simulate(vogels_abbott("cuba", n_neurons=1000), duration_ms=2000,
        ...                                  record_connectivity=True)                              # doctest: +SKIP
        >>> client.connectomics.simulated_connectome(run).agreement.pearson_r                      # doctest: +SKIP
        0.12
        """
        start_ms = non_negative(start_ms, field="start_ms")
        names = ("spike_times", "spike_ids", "pre_ids", "post_ids", "weights", "population_table")
        if isinstance(simulation, Mapping):
            missing = [n for n in names if n not in simulation]
            if missing:
                raise InvalidArgument(f"simulation lacks {', '.join(missing)}", field="simulation")
            refs = {n: simulation[n] for n in names}
            if duration_ms is None:
                raise InvalidArgument("duration_ms is required with a dict of refs", field="duration_ms")
        else:
            message = getattr(simulation, "message", None)
            if message is None or message.DESCRIPTOR.full_name != "neuromesh.simulation.v1.SimulateResult":
                raise InvalidArgument(f"simulation must be a SimulationResult or a dict of refs, not "
                                      f"{type(simulation).__name__}", field="simulation")
            if not message.HasField("synapses"):
                raise InvalidArgument("this simulation did not store its synapses: run it with "
                                      "record_connectivity=True", field="simulation")
            refs = {"spike_times": message.spike_times, "spike_ids": message.spike_ids,
                    "pre_ids": message.synapses.pre_ids, "post_ids": message.synapses.post_ids,
                    "weights": message.synapses.weights, "population_table": message.population_table}
            if duration_ms is None:
                duration_ms = message.duration_ms - start_ms
        request = C.SimulatedConnectomeRequest(
            duration_ms=positive(duration_ms, field="duration_ms"), start_ms=start_ms,
            bin_ms=non_negative(bin_ms, field="bin_ms"), first_neuron=integer(first_neuron, field="first_neuron"),
            last_neuron=integer(last_neuron, field="last_neuron"))
        if request.last_neuron and request.last_neuron <= request.first_neuron:
            raise InvalidArgument(f"last_neuron ({request.last_neuron}) must exceed first_neuron "
                                  f"({request.first_neuron}); 0 means every neuron", field="last_neuron")
        for name in names:
            kind = self.artifacts.file_input if name == "population_table" else self.artifacts.array_input
            getattr(request, name).CopyFrom(kind(refs[name], field=name))
        return self._unary("SimulatedConnectome", request, SimulatedConnectomeResult, timeout)

    # --- AnalyzeGraph

    def analyze_graph(self, edge_table: Any = None, *, matrix: Any = None, directed: bool = False,
                      weight_column: str = "", measures: Any = None, timeout: float | None = None) -> GraphAnalysis:
        """Graph measures of any graph: an edge table or a square matrix.

        Parameters
        ----------
        edge_table : CSV path, DataFrame, dict of columns, rows, or stored table, optional
            Columns source, target and numeric attributes.
        matrix : array_like or stored array, optional
            Square, nonnegative; row i to column j. Exactly one of ``edge_table``, ``matrix``.
        directed : bool, default False
            An undirected matrix must be symmetric.
        weight_column : str
            The edge table's weight column; empty: "weight", or 1 per edge.
        measures : list of str, dict, False or GraphMeasuresOptions, optional
        timeout : float, optional

        Returns
        -------
        GraphAnalysis

        Examples
        --------
        >>> client.connectomics.analyze_graph(matrix=np.ones((4, 4)) - np.eye(4),
        ...                                   measures=["clustering"]).measures.scalars     # doctest: +SKIP
        {'average_clustering': 1.0, 'density': 1.0}
        """
        if (edge_table is None) == (matrix is None):
            raise InvalidArgument("give exactly one graph: edge_table or matrix", field="graph")
        if isinstance(matrix, np.ndarray) and (matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]):
            raise InvalidArgument(f"matrix must be square, got shape {matrix.shape}", field="matrix",
                                  reason="SHAPE_MISMATCH")
        request = C.AnalyzeGraphRequest(directed=bool(directed), weight_column=str(weight_column))
        options = measures_options(measures)
        if options is not None:
            request.measures.CopyFrom(options)
        if edge_table is not None:
            request.edge_table.CopyFrom(self.artifacts.table_input(edge_table, field="edge_table"))
        else:
            request.matrix.CopyFrom(self.artifacts.array_input(matrix, field="matrix"))
        return self._unary("AnalyzeGraph", request, GraphAnalysis, timeout)
