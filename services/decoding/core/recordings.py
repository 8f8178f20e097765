"""Recordings in the formats labs have, read into plain arrays on one time base.

Readers
-------
* :func:`read_nwb_units`, :func:`read_nwb_timeseries`, :func:`read_nwb_trials`: the ``units``
  table, a ``TimeSeries`` (in ``acquisition`` or a ``processing`` module) and the ``trials``
  table of an NWB file (read with pynwb).
* :func:`read_kilosort_folder`: the output folder of Kilosort (and of phy curation).
* :func:`read_nitime_grasshopper`: real auditory receptor recordings shipped with nitime.

Every reader returns float64 seconds, on the clock of the file, and numpy arrays that no longer
depend on the file being open. A missing, malformed or incomplete input raises
:class:`RecordingFormatError` (a ``ValueError``) whose message names the file and the problem;
errors of the underlying libraries are caught and re-raised that way.

Alignment
---------
Spikes are counted in half-open bins ``[start_s + k * bin_width_s, start_s + (k + 1) *
bin_width_s)`` by :func:`~services.decoding.core.binning.bin_spike_trains`. A continuous signal
(behaviour, calcium traces, LFP features) is put on the same bins by :func:`align_to_bins` (any
sample times) or :func:`bin_continuous` (a regularly sampled array), and trial structure by
:func:`trial_structure`.
"""

from __future__ import annotations

import ast
import csv
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .binning import _bin_tolerance, bin_spike_trains, count_bins

__all__ = [
    "RecordingFormatError", "SpikeTrains", "TimeSeriesData", "Trials", "GrasshopperRecording",
    "read_nwb_units", "read_nwb_timeseries", "read_nwb_trials", "read_kilosort_folder",
    "read_nitime_grasshopper", "align_to_bins", "bin_continuous", "trial_structure",
    "KILOSORT_GROUPS",
]


class RecordingFormatError(ValueError):
    """A recording file is missing, malformed, or lacks what was asked for."""


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class SpikeTrains:
    """Spikes of ``n_units`` units, sorted by time.

    Attributes
    ----------
    times : ndarray of float64, shape (n_spikes,)
        Spike times in seconds, ascending (ties keep unit order).
    unit_ids : ndarray of int64, shape (n_spikes,)
        Unit of each spike, ``0 .. n_units - 1``.
    n_units : int
        Number of units, including units without spikes.
    unit_names : list of str
        Name of unit ``u`` in the source (NWB Units table id, Kilosort cluster id), length n_units.

    Examples
    --------
    >>> trains = SpikeTrains(times=np.array([0.01, 0.12, 0.25]), unit_ids=np.array([1, 0, 1]),
    ...                      n_units=3, unit_names=["a", "b", "c"])
    >>> trains.binned(bin_width_s=0.1, start_s=0.0, stop_s=0.3)
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """

    times: np.ndarray
    unit_ids: np.ndarray
    n_units: int
    unit_names: list = field(default_factory=list)

    def binned(self, *, bin_width_s: float, start_s: float, stop_s: float) -> np.ndarray:
        """Counts per (bin, unit), one column per unit even when it has no spikes; see
        :func:`~services.decoding.core.binning.bin_spike_trains`."""
        return bin_spike_trains(self.times, self.unit_ids, bin_width_s=bin_width_s, start_s=start_s,
                                stop_s=stop_s, n_units=self.n_units)


@dataclass
class TimeSeriesData:
    """A sampled signal read from a file.

    Attributes
    ----------
    data : ndarray of float64, shape (n_samples, n_channels)
    timestamps : ndarray of float64, shape (n_samples,)
        Sample times in seconds.
    name : str
        The series' name in the file.
    unit : str
        Its physical unit as the file states it ("" when none is stated).
    location : str
        Where it was found, e.g. ``"processing/behavior/Position/position"``.
    """

    data: np.ndarray
    timestamps: np.ndarray
    name: str
    unit: str
    location: str = ""


@dataclass
class Trials:
    """Trial intervals ``[start_time, stop_time)`` in seconds, and optionally a condition code.

    Attributes
    ----------
    start_time, stop_time : ndarray of float64, shape (n_trials,)
    condition : ndarray of int64, shape (n_trials,), or None
    condition_name : str or None
        The column the condition was read from.
    """

    start_time: np.ndarray
    stop_time: np.ndarray
    condition: np.ndarray | None = None
    condition_name: str | None = None

    @property
    def n_trials(self) -> int:
        return int(self.start_time.shape[0])


# --------------------------------------------------------------------------------------------------
# NWB


def _path_str(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise RecordingFormatError(f"path must be a str or os.PathLike, got {path!r}")
    return os.fspath(path)


class _open_nwb:
    """``with _open_nwb(path) as nwbfile``: read-only, with every library error re-raised as a
    :class:`RecordingFormatError` naming the file. The file stays open inside the block because
    pynwb reads datasets lazily; copy arrays out before leaving it."""

    def __init__(self, path):
        self.path = _path_str(path)
        self.io = None

    def __enter__(self):
        if not os.path.isfile(self.path):
            raise RecordingFormatError(f"{self.path}: no such file")
        try:
            from pynwb import NWBHDF5IO
        except ImportError as err:  # pragma: no cover - pynwb is a dependency of the project
            raise RecordingFormatError(f"{self.path}: reading NWB files needs pynwb ({err})") from None
        try:
            self.io = NWBHDF5IO(self.path, "r")
            return self.io.read()
        except Exception as err:
            self._close()
            raise RecordingFormatError(f"{self.path}: not a readable NWB file "
                                       f"({type(err).__name__}: {err})") from err

    def _close(self):
        if self.io is not None:
            try:
                self.io.close()
            except Exception:
                pass
            self.io = None

    def __exit__(self, exc_type, exc, tb):
        self._close()
        if exc_type is None or issubclass(exc_type, RecordingFormatError):
            return False
        if issubclass(exc_type, Exception):
            # a lazily read dataset that h5py/hdmf could not decode: still the file's fault
            raise RecordingFormatError(f"{self.path}: could not read the NWB file "
                                       f"({exc_type.__name__}: {exc})") from exc
        return False


def _real_array(values, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise RecordingFormatError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _first_nonfinite(array: np.ndarray) -> int | None:
    bad = ~np.isfinite(array)
    if bad.any():
        return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
    return None


def _sorted_trains(times: np.ndarray, unit_ids: np.ndarray, n_units: int, names: list) -> SpikeTrains:
    # stable sort on (time, unit): equal times keep a deterministic unit order
    order = np.lexsort((unit_ids, times))
    return SpikeTrains(times=times[order], unit_ids=unit_ids[order].astype(np.int64), n_units=n_units,
                       unit_names=names)


def read_nwb_units(path) -> SpikeTrains:
    """Spike times of every unit of an NWB file's ``units`` table.

    Parameters
    ----------
    path : str or os.PathLike
        An NWB (HDF5) file.

    Returns
    -------
    SpikeTrains
        Unit ``u`` is row ``u`` of the Units table, in table order; ``unit_names[u]`` is that row's
        id as a string. Units without spikes are kept (they count in ``n_units``), so a decoder's
        columns match the table. Times are in seconds on the file's clock (NWB stores spike times
        in seconds relative to ``timestamps_reference_time``).

    Raises
    ------
    RecordingFormatError
        The file does not exist, is not an NWB file, has no Units table, or holds a spike time that
        is NaN or infinite.

    Examples
    --------
    >>> read_nwb_units("/nonexistent/session.nwb")
    Traceback (most recent call last):
    ...
    services.decoding.core.recordings.RecordingFormatError: /nonexistent/session.nwb: no such file
    """
    with _open_nwb(path) as nwbfile:
        units = nwbfile.units
        if units is None:
            raise RecordingFormatError(f"{_path_str(path)}: the NWB file has no Units table (nwbfile.units)")
        ids = np.asarray(units.id[:])
        names = [str(i) for i in ids.tolist()]
        n_units = len(names)
        if n_units and "spike_times" not in units.colnames:
            raise RecordingFormatError(f"{_path_str(path)}: the Units table has no spike_times column")
        if n_units:
            # one read of the flat ragged column and its index, not one indexed read per unit
            index = units["spike_times"]
            ends = np.asarray(index.data[:], dtype=np.int64).reshape(-1)
            times = _real_array(index.target.data[:], f"{_path_str(path)}: units.spike_times").reshape(-1)
        else:
            ends, times = np.empty(0, dtype=np.int64), np.empty(0)
    per_unit = np.diff(ends, prepend=0)
    if ends.shape[0] != n_units or np.any(per_unit < 0) or (n_units and ends[-1] != times.shape[0]):
        raise RecordingFormatError(f"{_path_str(path)}: the Units table's spike_times_index does not match "
                                   f"its {n_units} units and {times.shape[0]} spike times")
    unit_ids = np.repeat(np.arange(n_units, dtype=np.int64), per_unit)
    bad = _first_nonfinite(times)
    if bad is not None:
        raise RecordingFormatError(f"{_path_str(path)}: unit {names[unit_ids[bad]]} has a non-finite spike "
                                   f"time ({times[bad]})")
    return _sorted_trains(times, unit_ids, n_units, names)


def _timeseries_candidates(nwbfile) -> list[tuple[str, object]]:
    """(location, TimeSeries) for every TimeSeries in acquisition and in processing modules, also
    those held by a container (Position, BehavioralTimeSeries, ...), in file order."""
    from pynwb import TimeSeries

    def from_group(prefix: str, objects) -> list:
        found = []
        for name, obj in objects.items():
            if isinstance(obj, TimeSeries):
                found.append((f"{prefix}/{name}", obj))
            else:
                for child in getattr(obj, "children", ()):
                    if isinstance(child, TimeSeries):
                        found.append((f"{prefix}/{name}/{child.name}", child))
        return found

    candidates = from_group("acquisition", nwbfile.acquisition)
    for module_name, module in nwbfile.processing.items():
        candidates += from_group(f"processing/{module_name}", module.data_interfaces)
    return candidates


def read_nwb_timeseries(path, name: str | None = None) -> TimeSeriesData:
    """One TimeSeries of an NWB file (behaviour, a stimulus, a trace), with its sample times.

    Parameters
    ----------
    path : str or os.PathLike
        An NWB (HDF5) file.
    name : str, optional
        The series' name (e.g. ``"position"``) or its location (e.g.
        ``"processing/behavior/Position/position"``, ``"acquisition/lfp_power"``). Series are
        looked for in ``acquisition`` and in every ``processing`` module, directly or inside a
        container such as ``Position``, ``BehavioralTimeSeries`` or ``CompassDirection``. By
        default the file must hold exactly one series.

    Returns
    -------
    TimeSeriesData
        ``data`` as float64 (n_samples, n_channels) (1-D data is one channel); ``timestamps`` in
        seconds: the explicit timestamps, or ``starting_time + arange(n_samples) / rate`` when the
        series is regularly sampled (NWB's ``starting_time`` defaults to 0).

    Raises
    ------
    RecordingFormatError
        The file is missing or not NWB; no series (or several) match ``name`` (the message lists
        the candidates); the data are not numeric, have more than 2 dimensions, or their length
        differs from the timestamps'; the series has neither timestamps nor a rate.
    """
    path_s = _path_str(path)
    with _open_nwb(path) as nwbfile:
        candidates = _timeseries_candidates(nwbfile)
        listing = ", ".join(loc for loc, _ in candidates) or "none"
        if name is None:
            if len(candidates) != 1:
                raise RecordingFormatError(f"{path_s}: {len(candidates)} TimeSeries in the file, pass name= "
                                           f"to choose one of: {listing}")
            matches = candidates
        else:
            wanted = str(name).strip("/")
            matches = [(loc, ts) for loc, ts in candidates if loc == wanted]
            if not matches:
                matches = [(loc, ts) for loc, ts in candidates if ts.name == name]
            if not matches:
                raise RecordingFormatError(f"{path_s}: no TimeSeries named {name!r}; the file has: {listing}")
            if len(matches) > 1:
                raise RecordingFormatError(f"{path_s}: {len(matches)} TimeSeries are named {name!r}, pass a "
                                           f"location instead: {', '.join(loc for loc, _ in matches)}")
        location, series = matches[0]
        if series.data is None:
            raise RecordingFormatError(f"{path_s}: {location} has no data")
        data = _real_array(series.data[:], f"{path_s}: {location}.data")
        timestamps = series.timestamps
        if timestamps is not None:
            timestamps = _real_array(timestamps[:], f"{path_s}: {location}.timestamps").reshape(-1)
        else:
            rate = series.rate
            if rate is None:
                raise RecordingFormatError(f"{path_s}: {location} has neither timestamps nor a rate")
            rate = float(rate)
            if not np.isfinite(rate) or rate <= 0:
                raise RecordingFormatError(f"{path_s}: {location}.rate must be finite and > 0, got {rate}")
            start = float(series.starting_time) if series.starting_time is not None else 0.0
            # multiply, not accumulate 1/rate: sample k is exact to rounding of one product
            timestamps = start + np.arange(data.shape[0], dtype=np.float64) / rate
        unit = series.unit if isinstance(series.unit, str) else ""
        series_name = series.name
    if data.ndim == 1:
        data = data[:, np.newaxis]
    if data.ndim != 2:
        raise RecordingFormatError(f"{path_s}: {location}.data has shape {data.shape}, only (n_samples,) "
                                   "or (n_samples, n_channels) are supported")
    if timestamps.shape[0] != data.shape[0]:
        raise RecordingFormatError(f"{path_s}: {location} has {data.shape[0]} samples but "
                                   f"{timestamps.shape[0]} timestamps")
    return TimeSeriesData(data=data, timestamps=timestamps, name=series_name, unit=unit, location=location)


def read_nwb_trials(path, *, condition: str | None = None) -> Trials:
    """The ``trials`` table of an NWB file.

    Parameters
    ----------
    path : str or os.PathLike
        An NWB (HDF5) file.
    condition : str, optional
        A column of the trials table holding an integer code per trial (e.g. target number);
        integral floats are accepted.

    Returns
    -------
    Trials
        ``start_time`` and ``stop_time`` in seconds, in table order, and the condition column as
        int64 when asked for.

    Raises
    ------
    RecordingFormatError
        The file is missing or not NWB, has no trials table, the condition column does not exist
        (the message lists the columns) or is not integer, or a trial has a non-finite time or
        ``stop_time < start_time``.
    """
    path_s = _path_str(path)
    with _open_nwb(path) as nwbfile:
        table = nwbfile.trials
        if table is None:
            raise RecordingFormatError(f"{path_s}: the NWB file has no trials table (nwbfile.trials)")
        start = _real_array(table["start_time"].data[:], f"{path_s}: trials.start_time").reshape(-1)
        stop = _real_array(table["stop_time"].data[:], f"{path_s}: trials.stop_time").reshape(-1)
        codes = None
        if condition is not None:
            if condition not in table.colnames:
                raise RecordingFormatError(f"{path_s}: the trials table has no column {condition!r}; its "
                                           f"columns are: {', '.join(table.colnames)}")
            raw = np.asarray(table[condition].data[:])
    if condition is not None:
        if raw.ndim != 1:
            raise RecordingFormatError(f"{path_s}: trials.{condition} must be one value per trial, got shape "
                                       f"{raw.shape}")
        if np.issubdtype(raw.dtype, np.integer):
            codes = raw.astype(np.int64)
        elif np.issubdtype(raw.dtype, np.floating) and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
            codes = raw.astype(np.int64)
        else:
            raise RecordingFormatError(f"{path_s}: trials.{condition} must hold integer codes, got dtype "
                                       f"{raw.dtype}")
    for what, values in (("start_time", start), ("stop_time", stop)):
        bad = _first_nonfinite(values)
        if bad is not None:
            raise RecordingFormatError(f"{path_s}: trials.{what} of trial {bad} is {values[bad]}")
    backwards = np.flatnonzero(stop < start)
    if backwards.size:
        i = int(backwards[0])
        raise RecordingFormatError(f"{path_s}: trial {i} stops ({stop[i]}) before it starts ({start[i]})")
    return Trials(start_time=start, stop_time=stop, condition=codes, condition_name=condition)


# --------------------------------------------------------------------------------------------------
# Kilosort / phy

#: cluster labels of Kilosort (``cluster_KSLabel.tsv``: good, mua) and phy (``cluster_group.tsv``:
#: good, mua, noise, and unsorted for clusters nobody labelled)
KILOSORT_GROUPS = ("good", "mua", "noise", "unsorted")


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise RecordingFormatError(f"{path}: missing ({what})")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as err:
        raise RecordingFormatError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from err
    # Kilosort writes (n_spikes, 1) columns; numpy-based exporters write (n_spikes,)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise RecordingFormatError(f"{path}: expected shape (n_spikes,) or (n_spikes, 1), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise RecordingFormatError(f"{path}: expected integers ({what}), got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise RecordingFormatError(f"{path}: negative value {array.min()} at index {int(np.argmin(array))}")
    return array


def _read_params(path: Path) -> dict:
    """The literal assignments of a phy ``params.py``, parsed, never executed."""
    if not path.is_file():
        raise RecordingFormatError(f"{path}: missing (needed for sample_rate; or pass sampling_rate_hz)")
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as err:
        raise RecordingFormatError(f"{path}: not a parsable params.py ({type(err).__name__}: {err})") from None
    params = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                # a non-literal value (a call, a name): irrelevant unless it is the one we need
                params[node.targets[0].id] = None
    return params


def _read_cluster_labels(path: Path, column: str) -> dict[int, str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise RecordingFormatError(f"{path}: not readable ({type(err).__name__}: {err})") from None
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise RecordingFormatError(f"{path}: empty, expected a header 'cluster_id<TAB>{column}'")
    header = [cell.strip() for cell in rows[0]]
    if "cluster_id" not in header or column not in header:
        raise RecordingFormatError(f"{path}: header must name the columns 'cluster_id' and {column!r}, "
                                   f"got {header}")
    i_id, i_label = header.index("cluster_id"), header.index(column)
    labels: dict[int, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(i_id, i_label):
            raise RecordingFormatError(f"{path}: line {line} has {len(row)} fields, expected {len(header)}")
        raw_id, label = row[i_id].strip(), row[i_label].strip()
        try:
            cluster = int(raw_id)
        except ValueError:
            raise RecordingFormatError(f"{path}: line {line}: cluster_id {raw_id!r} is not an integer") from None
        if label not in KILOSORT_GROUPS:
            raise RecordingFormatError(f"{path}: line {line}: unknown {column} {label!r} for cluster {cluster} "
                                       f"(known: {', '.join(KILOSORT_GROUPS)})")
        if cluster in labels:
            raise RecordingFormatError(f"{path}: line {line}: cluster {cluster} is listed twice")
        labels[cluster] = label
    return labels


def read_kilosort_folder(path, *, include=("good",), sampling_rate_hz: float | None = None) -> SpikeTrains:
    """Spike trains of the clusters of a Kilosort output folder (optionally curated in phy).

    Parameters
    ----------
    path : str or os.PathLike
        The folder holding ``spike_times.npy`` and ``spike_clusters.npy``.
    include : sequence of str or None, default ("good",)
        Cluster labels to keep, among ``KILOSORT_GROUPS`` (good, mua, noise, unsorted); None keeps
        every cluster and reads no label file.
    sampling_rate_hz : float, optional
        Samples per second of ``spike_times.npy``; by default ``sample_rate`` of ``params.py``.

    Returns
    -------
    SpikeTrains
        One unit per kept cluster, numbered ``0 .. n - 1`` in ascending cluster id; ``unit_names``
        holds the original cluster ids. Times are ``spike_times / sampling_rate`` in seconds from
        the start of the recording Kilosort sorted.

    Raises
    ------
    RecordingFormatError
        The folder, ``spike_times.npy``, both ``spike_clusters.npy`` and ``spike_templates.npy``,
        ``params.py`` (when needed) or both label files (when ``include`` is not None) are
        missing; arrays are not 1-D integers or differ in length; a label file has a non-integer
        cluster id, an unknown label, or a cluster listed twice; ``sample_rate`` is not a
        positive number.

    Notes
    -----
    * Clusters: ``spike_clusters.npy`` (phy updates it on merges and splits); when it is absent,
      as in an uncurated Kilosort 1 folder, ``spike_templates.npy`` (one cluster per template).
    * Units are the cluster ids that have spikes. Label files can list stale ids (clusters merged
      away in phy); those are ignored, never turned into empty units.
    * Labels: ``cluster_group.tsv`` (phy's manual curation, column ``group``) takes precedence over
      ``cluster_KSLabel.tsv`` (Kilosort's automatic label, column ``KSLabel``) for every cluster it
      lists; a cluster neither file lists is "unsorted".
    * ``params.py`` is parsed with :mod:`ast`, never executed: a folder from elsewhere cannot run
      code in the service.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "spike_times.npy", np.array([300, 600, 900, 1500], dtype=np.uint64))
    >>> np.save(folder / "spike_clusters.npy", np.array([7, 2, 7, 9], dtype=np.int32))
    >>> _ = (folder / "params.py").write_text("dat_path = 'raw.bin'\\nsample_rate = 30000.0\\n")
    >>> _ = (folder / "cluster_group.tsv").write_text("cluster_id\\tgroup\\n2\\tmua\\n7\\tgood\\n9\\tgood\\n")
    >>> trains = read_kilosort_folder(folder)
    >>> trains.times, trains.unit_ids, trains.unit_names
    (array([0.01, 0.03, 0.05]), array([0, 0, 1]), ['7', '9'])
    """
    folder = Path(_path_str(path))
    if not folder.is_dir():
        raise RecordingFormatError(f"{folder}: not a folder (expected Kilosort output)")
    if include is not None:
        if isinstance(include, str):
            include = (include,)
        include = tuple(include)
        unknown = [g for g in include if g not in KILOSORT_GROUPS]
        if unknown:
            raise RecordingFormatError(f"include holds unknown cluster labels {unknown}; known: "
                                       f"{', '.join(KILOSORT_GROUPS)}")

    if sampling_rate_hz is None:
        params_path = folder / "params.py"
        rate = _read_params(params_path).get("sample_rate", "missing")
        where = f"{params_path}: sample_rate"
    else:
        rate, where = sampling_rate_hz, "sampling_rate_hz"
    if rate == "missing":
        raise RecordingFormatError(f"{where} is not assigned (or pass sampling_rate_hz)")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not np.isfinite(rate) or rate <= 0:
        raise RecordingFormatError(f"{where} must be a positive number, got {rate!r}")
    rate = float(rate)

    samples = _load_npy(folder / "spike_times.npy", "spike times in samples")
    cluster_path = folder / "spike_clusters.npy"
    if not cluster_path.is_file() and (folder / "spike_templates.npy").is_file():
        cluster_path = folder / "spike_templates.npy"
    if not cluster_path.is_file():
        raise RecordingFormatError(f"{folder}: missing spike_clusters.npy (and no spike_templates.npy to "
                                   "fall back on)")
    clusters = _load_npy(cluster_path, "cluster of each spike")
    if clusters.shape[0] != samples.shape[0]:
        raise RecordingFormatError(f"{cluster_path}: {clusters.shape[0]} entries but spike_times.npy has "
                                   f"{samples.shape[0]} spikes")
    if clusters.size and clusters.max() > np.iinfo(np.int64).max:
        raise RecordingFormatError(f"{cluster_path}: cluster id {clusters.max()} is too large")
    clusters = clusters.astype(np.int64)

    present = np.unique(clusters)
    if include is None:
        kept = present
    else:
        group_path, label_path = folder / "cluster_group.tsv", folder / "cluster_KSLabel.tsv"
        if not group_path.is_file() and not label_path.is_file():
            raise RecordingFormatError(f"{folder}: missing cluster_group.tsv and cluster_KSLabel.tsv, needed "
                                       f"to keep only {include} clusters (pass include=None to keep all)")
        labels: dict[int, str] = {}
        if label_path.is_file():
            labels.update(_read_cluster_labels(label_path, "KSLabel"))
        if group_path.is_file():
            labels.update(_read_cluster_labels(group_path, "group"))   # manual curation wins
        kept = np.array([c for c in present.tolist() if labels.get(c, "unsorted") in include], dtype=np.int64)

    keep_spike = np.isin(clusters, kept)
    # renumber: kept is sorted, so searchsorted maps cluster id -> 0 .. n - 1
    unit_ids = np.searchsorted(kept, clusters[keep_spike]).astype(np.int64)
    # uint64 sample counts of any realistic recording are exact in float64 (below 2**53)
    times = samples[keep_spike].astype(np.float64) / rate
    return _sorted_trains(times, unit_ids, int(kept.size), [str(c) for c in kept.tolist()])


# --------------------------------------------------------------------------------------------------
# real data shipped with nitime


@dataclass
class GrasshopperRecording:
    """A grasshopper auditory receptor's spikes and the sound envelope that drove them.

    Attributes
    ----------
    spike_times : ndarray of float64, shape (n_spikes,)
        Seconds from stimulus onset.
    stimulus_amplitude : ndarray of float64, shape (n_samples,)
        The amplitude envelope of the tone as stored in the file (linear, relative units).
    stimulus_db : ndarray of float64, shape (n_samples,)
        The same envelope in dB SPL: ``20 log10`` of the amplitude, shifted so that its maximum
        is the header's ``intensity (dB)``, as nitime's example does.
    sampling_rate_hz : float
        Of the stimulus (20 kHz).
    header : dict of str to str
        The ``# key: value`` lines of the spike file (carrier frequency, cut-off frequency, ...).
    """

    spike_times: np.ndarray
    stimulus_amplitude: np.ndarray
    stimulus_db: np.ndarray
    sampling_rate_hz: float
    header: dict

    @property
    def duration_s(self) -> float:
        return self.stimulus_amplitude.shape[0] / self.sampling_rate_hz


def _read_grasshopper_header(path: Path) -> dict:
    header = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") and ":" in line:
            key, value = line[1:].split(":", 1)
            header[key.strip()] = value.strip()
    return header


def read_nitime_grasshopper(recording: int = 1) -> GrasshopperRecording:
    """Load one of the two grasshopper receptor recordings bundled with nitime.

    Source: nitime's ``nitime/data/grasshopper_spike_times{1,2}.txt`` and
    ``grasshopper_stimulus{1,2}.txt``. nitime's example "Auditory processing in grasshoppers"
    (``doc/examples/grasshopper.py``) describes them: spike times recorded intracellularly from a
    primary auditory receptor of the grasshopper *Locusta migratoria*, and the stimulus played, a
    pure tone at the cell's preferred frequency, amplitude-modulated by Gaussian white noise up
    to a cut-off frequency; data from Rokem et al. (2006), J Neurophysiol 95:2541-52, available
    on CRCNS. Recording 2 is the same cell with an 800 Hz instead of a 200 Hz cut-off.

    Units (from that example, and checked against the files): the stimulus file has two columns,
    time in microseconds (steps of 50 us: sampled at 20 kHz) and the amplitude envelope; the
    example builds ``TimeSeries(data=stim[:, 1], sampling_interval=50, time_unit='us')`` and
    ``Events(spike_times, time_unit='us')``, so spike times are in microseconds (they span
    6.7 ms .. 9999.3 ms, inside the 10 s stimulus). The example converts the envelope to dB SPL
    with ``20 log10(a / 2e-5)`` shifted so its maximum equals the header's "intensity (dB)";
    the envelope's standard deviation is then 6 dB, the header's "standard deviation (dB)".

    Parameters
    ----------
    recording : {1, 2}, default 1
        1: 200 Hz cut-off stimulus; 2: 800 Hz.

    Returns
    -------
    GrasshopperRecording

    Raises
    ------
    RecordingFormatError
        nitime is not installed, a file is missing or malformed, or ``recording`` is not 1 or 2.

    Examples
    --------
    >>> rec = read_nitime_grasshopper(1)
    >>> rec.sampling_rate_hz, rec.duration_s, rec.spike_times.size, rec.header["cut-off frequency (Hz)"]
    (20000.0, 10.0, 929, '200')
    >>> round(float(rec.stimulus_db.max()), 4), round(float(rec.stimulus_db.std()), 2)
    (76.4286, 5.98)
    """
    if isinstance(recording, bool) or recording not in (1, 2):
        raise RecordingFormatError(f"recording must be 1 or 2, got {recording!r}")
    try:
        import nitime
    except ImportError as err:
        raise RecordingFormatError(f"the grasshopper recordings ship with nitime, which is not installed "
                                   f"({err})") from None
    data = Path(nitime.__file__).parent / "data"
    spike_path = data / f"grasshopper_spike_times{recording}.txt"
    stim_path = data / f"grasshopper_stimulus{recording}.txt"
    for p in (spike_path, stim_path):
        if not p.is_file():
            raise RecordingFormatError(f"{p}: missing from the installed nitime")
    try:
        spikes_us = np.loadtxt(spike_path, comments="#", ndmin=1)
        stim = np.loadtxt(stim_path, comments="#", ndmin=2)
    except ValueError as err:
        raise RecordingFormatError(f"{spike_path.parent}: grasshopper file not parsable ({err})") from None
    header = _read_grasshopper_header(spike_path)
    if stim.shape[1] != 2:
        raise RecordingFormatError(f"{stim_path}: expected 2 columns (time in us, amplitude), got "
                                   f"{stim.shape[1]}")
    step_us = np.diff(stim[:, 0])
    if step_us.size == 0 or not np.allclose(step_us, step_us[0]):
        raise RecordingFormatError(f"{stim_path}: time column is not regularly sampled")
    rate = 1e6 / float(step_us[0])
    amplitude = stim[:, 1]
    if not np.all(amplitude > 0):
        raise RecordingFormatError(f"{stim_path}: amplitude must be > 0 to be expressed in dB")
    try:
        intensity_db = float(header["intensity (dB)"])
    except (KeyError, ValueError):
        raise RecordingFormatError(f"{spike_path}: header has no numeric 'intensity (dB)' line") from None
    level = 20.0 * np.log10(amplitude / 2e-5)
    level += intensity_db - level.max()
    # stimulus sample 0 is at time stim[0, 0] (0 us in both files): spike times on the same clock
    spike_times = (spikes_us - stim[0, 0]) * 1e-6
    return GrasshopperRecording(spike_times=np.sort(spike_times), stimulus_amplitude=amplitude,
                                stimulus_db=level, sampling_rate_hz=rate, header=header)


# --------------------------------------------------------------------------------------------------
# alignment to the spike bins


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _signal(values, n_samples: int | None, what: str = "values") -> tuple[np.ndarray, bool]:
    """values as float64 (n_samples, n_channels), and whether they were 1-D."""
    array = np.asarray(values)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{what} must hold real numbers, got dtype {array.dtype}")
    one_d = array.ndim == 1
    if one_d:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise ValueError(f"{what} must be 1-D or 2-D (n_samples[, n_channels]), got shape {array.shape}")
    if n_samples is not None and array.shape[0] != n_samples:
        raise ValueError(f"{what} has {array.shape[0]} samples but timestamps has {n_samples}")
    if array.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{what} hold NaN or infinite values, first at sample {row} (channel {col}): "
                         f"{array[row, col]}")
    return array, one_d


def _edges(bin_edges, start_s, bin_width_s, n_bins) -> tuple[np.ndarray, tuple | None]:
    """Bin edges (n_bins + 1,), and (start, width, n) when the grid is regular."""
    grid_given = [v is not None for v in (start_s, bin_width_s, n_bins)]
    if bin_edges is not None:
        if any(grid_given):
            raise ValueError("pass either bin_edges or start_s/bin_width_s/n_bins, not both")
        edges = np.asarray(bin_edges)
        if edges.ndim != 1 or edges.shape[0] < 2:
            raise ValueError(f"bin_edges must be 1-D with at least 2 edges, got shape {edges.shape}")
        edges = _signal(edges, None, "bin_edges")[0][:, 0]
        steps = np.diff(edges)
        if np.any(steps <= 0):
            i = int(np.flatnonzero(steps <= 0)[0])
            raise ValueError(f"bin_edges must increase strictly, but edge {i + 1} ({edges[i + 1]}) <= edge {i} "
                             f"({edges[i]})")
        return edges, None
    if not all(grid_given):
        raise ValueError("pass bin_edges, or all of start_s, bin_width_s and n_bins")
    start = _check_finite(start_s, "start_s")
    width = _check_positive(bin_width_s, "bin_width_s")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    n = int(n_bins)
    # start + k * width, as bin_spike_trains computes them (no accumulated sum of widths)
    return start + width * np.arange(n + 1, dtype=np.float64), (start, width, n)


def align_to_bins(timestamps, values, *, bin_edges=None, start_s: float | None = None,
                  bin_width_s: float | None = None, n_bins: int | None = None, method: str = "mean",
                  outside: str = "raise") -> np.ndarray:
    """Put a signal sampled at its own times onto the time bins of the spike counts.

    Parameters
    ----------
    timestamps : array_like of float, shape (n_samples,)
        Sample times in seconds, finite, strictly increasing.
    values : array_like of float, shape (n_samples,) or (n_samples, n_channels)
        The signal; NaN or infinite values are an error (fill or drop them first: silently
        averaging over gaps would bias the decoder's targets).
    bin_edges : array_like of float, shape (n_bins + 1,), optional
        Strictly increasing edges; bin ``k`` is ``[bin_edges[k], bin_edges[k + 1])``.
    start_s, bin_width_s, n_bins : optional
        Instead of ``bin_edges``: the regular bins of
        :func:`~services.decoding.core.binning.bin_spike_trains`, ``[start_s + k * bin_width_s,
        start_s + (k + 1) * bin_width_s)``, with the same tolerance for samples on decimal edges.
    method : {"mean", "interpolate"}, default "mean"
        "mean": the mean of the samples inside each bin, for signals sampled faster than the bins
        (it averages out noise above the bin rate instead of aliasing it). A bin holding no sample
        (the signal is sampled more slowly there, or has a gap) gets the linear interpolation of
        the signal at the bin centre, so the result never holds NaN.
        "interpolate": linear interpolation at every bin centre, for slow, smooth signals.
    outside : {"raise", "clip"}, default "raise"
        What to do with bins whose centre lies outside ``[timestamps[0], timestamps[-1]]``, where
        the signal is not known: "raise" a ValueError naming the first such bin; "clip" holds the
        first or last sample's value there (the bin's own samples, if it has any, are still
        averaged under "mean").

    Returns
    -------
    aligned : ndarray of float64, shape (n_bins,) or (n_bins, n_channels)
        One row per bin, 1-D when ``values`` is 1-D.

    Raises
    ------
    ValueError
        Shapes differ, timestamps are not strictly increasing or not finite, values hold NaN or
        infinite values (the message names the first sample), bins are given twice or not at all,
        a bin lies outside the signal with ``outside="raise"``, or an unknown method/outside.

    Examples
    --------
    Bin 1 holds no sample: it gets the interpolation at its centre, 0.15 s, between (0.08, 5) and
    (0.28, 7).

    >>> t = np.array([0.00, 0.02, 0.04, 0.06, 0.08, 0.28])
    >>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 7.0])
    >>> align_to_bins(t, x, start_s=0.0, bin_width_s=0.1, n_bins=3)
    array([3. , 5.7, 7. ])
    >>> align_to_bins(t, x, start_s=0.0, bin_width_s=0.1, n_bins=3, method="interpolate")
    array([3.5, 5.7, 6.7])
    """
    if method not in ("mean", "interpolate"):
        raise ValueError(f"method must be 'mean' or 'interpolate', got {method!r}")
    if outside not in ("raise", "clip"):
        raise ValueError(f"outside must be 'raise' or 'clip', got {outside!r}")
    t = np.asarray(timestamps)
    if t.ndim != 1:
        raise ValueError(f"timestamps must be 1-D, got shape {t.shape}")
    t = _signal(t, None, "timestamps")[0][:, 0]
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"timestamps must increase strictly, but sample {i + 1} ({t[i + 1]}) <= sample {i} "
                         f"({t[i]})")
    x, one_d = _signal(values, t.shape[0])
    edges, grid = _edges(bin_edges, start_s, bin_width_s, n_bins)
    n = edges.shape[0] - 1
    centres = 0.5 * (edges[:-1] + edges[1:])

    out_of_span = (centres < t[0]) | (centres > t[-1])
    if outside == "raise" and out_of_span.any():
        k = int(np.flatnonzero(out_of_span)[0])
        raise ValueError(f"bin {k} (centre {centres[k]:.6g} s) lies outside the signal's span "
                         f"[{t[0]:.6g}, {t[-1]:.6g}] s; {int(out_of_span.sum())} of {n} bins do. Bin a "
                         "shorter window or pass outside='clip'")

    # np.interp holds the end values outside the span: exactly the "clip" behaviour
    interpolated = np.column_stack([np.interp(centres, t, x[:, c]) for c in range(x.shape[1])])
    if method == "interpolate":
        aligned = interpolated
    else:
        if grid is not None:
            start, width, _ = grid
            position = (t - start) / width + _bin_tolerance(start, start + n * width, width)
            index = np.floor(position)
        else:
            index = np.searchsorted(edges, t, side="right").astype(np.float64) - 1.0
        inside = (index >= 0) & (index < n)
        idx = index[inside].astype(np.int64)
        counts = np.bincount(idx, minlength=n).astype(np.float64)
        sums = np.stack([np.bincount(idx, weights=x[inside, c], minlength=n) for c in range(x.shape[1])], axis=1)
        filled = counts > 0
        aligned = interpolated
        aligned[filled] = sums[filled] / counts[filled, np.newaxis]
    return aligned[:, 0] if one_d else aligned


def bin_continuous(values, *, sampling_rate_hz: float, bin_width_s: float, start_s: float = 0.0,
                   stop_s: float | None = None, first_sample_s: float = 0.0) -> np.ndarray:
    """Average a regularly sampled signal over time bins, weighting samples cut by a bin edge.

    Sample ``i`` stands for the interval ``[first_sample_s + i / fs, first_sample_s + (i + 1) /
    fs)`` (``fs = sampling_rate_hz``), the signal being constant over it. The value of a bin is
    the mean of that piecewise-constant signal over the bin: every sample weighted by the length
    of its interval inside the bin. When ``bin_width_s * fs`` is an integer and the bins start on
    a sample, this is the plain mean of blocks of samples; otherwise the samples cut by a bin edge
    count in both bins in proportion, so no bin is systematically longer than another (rounding
    block lengths would shift the bins against the spike bins over a long recording).

    Parameters
    ----------
    values : array_like of float, shape (n_samples,) or (n_samples, n_channels)
        The signal, finite.
    sampling_rate_hz : float
        Samples per second, > 0.
    bin_width_s : float
        Bin width in seconds, > 0 (need not be a multiple of the sample period).
    start_s : float, default 0.0
        Start of the first bin, on the same clock as ``first_sample_s``; not before the signal.
    stop_s : float, optional
        Whole bins up to ``stop_s`` are made (``n_bins`` as in
        :func:`~services.decoding.core.binning.bin_spike_trains` with the same ``start_s`` and
        ``stop_s``, so the two line up row for row); by default the end of the signal,
        ``first_sample_s + n_samples / fs``. It must not be after that end.
    first_sample_s : float, default 0.0
        Time of ``values[0]``.

    Returns
    -------
    binned : ndarray of float64, shape (n_bins,) or (n_bins, n_channels)
        1-D when ``values`` is 1-D.

    Raises
    ------
    ValueError
        Non-finite values (the message names the first sample), a non-positive rate or width,
        bins starting before the signal or ending after it, no whole bin.

    Notes
    -----
    Computed from the running integral of the signal (a cumulative sum) evaluated at the bin
    edges, O(n_samples + n_bins). The signal's mean is subtracted before summing so the running
    sum stays small and the difference of two sums keeps its precision on long recordings.

    Examples
    --------
    Four samples per 0.1 s bin at 40 Hz are block means; at 10 Hz, 0.25 s bins take half of
    every third sample: ``(1 + 2 + 0.5 * 3) / 2.5 = 1.8``, ``(0.5 * 3 + 4 + 5) / 2.5 = 4.2``.

    >>> bin_continuous(np.arange(8.0), sampling_rate_hz=40.0, bin_width_s=0.1)
    array([1.5, 5.5])
    >>> bin_continuous([1.0, 2.0, 3.0, 4.0, 5.0], sampling_rate_hz=10.0, bin_width_s=0.25)
    array([1.8, 4.2])
    """
    fs = _check_positive(sampling_rate_hz, "sampling_rate_hz")
    width = _check_positive(bin_width_s, "bin_width_s")
    start = _check_finite(start_s, "start_s")
    t0 = _check_finite(first_sample_s, "first_sample_s")
    x, one_d = _signal(values, None)
    n_samples = x.shape[0]
    end = t0 + n_samples / fs
    stop = end if stop_s is None else _check_finite(stop_s, "stop_s")
    tolerance = _bin_tolerance(min(start, t0), max(stop, end), width) * width
    if start < t0 - tolerance:
        raise ValueError(f"start_s={start} is before the first sample ({t0} s)")
    n_bins = count_bins(bin_width_s=width, start_s=start, stop_s=stop)
    if n_bins == 0:
        raise ValueError(f"no whole bin of {width} s between start_s={start} and stop_s={stop} (the signal "
                         f"spans [{t0}, {end}) s)")
    if start + n_bins * width > end + tolerance:
        raise ValueError(f"the bins end at {start + n_bins * width} s, after the signal ({end} s, "
                         f"{n_samples} samples at {fs} Hz)")

    # running integral in units of samples: F(p) = sum of the first floor(p) samples + the
    # fractional part of the next one; the mean over [p_a, p_b) is (F(p_b) - F(p_a)) / (p_b - p_a)
    mean = x.mean(axis=0)
    cumulative = np.zeros((n_samples + 1, x.shape[1]))
    np.cumsum(x - mean, axis=0, out=cumulative[1:])
    padded = np.vstack([x - mean, np.zeros((1, x.shape[1]))])     # the sample "after" the end: weight 0
    position = (start + width * np.arange(n_bins + 1) - t0) * fs
    np.clip(position, 0.0, float(n_samples), out=position)
    whole = np.floor(position).astype(np.int64)
    integral = cumulative[whole] + (position - whole)[:, np.newaxis] * padded[whole]
    binned = (integral[1:] - integral[:-1]) / np.diff(position)[:, np.newaxis] + mean
    return binned[:, 0] if one_d else binned


# --------------------------------------------------------------------------------------------------
# trials


def trial_structure(bin_centres, trials) -> tuple[np.ndarray, np.ndarray]:
    """Which trial each time bin belongs to, and how far into it the bin is.

    Parameters
    ----------
    bin_centres : array_like of float, shape (n_bins,)
        Bin centre times in seconds (e.g. ``start_s + (k + 0.5) * bin_width_s``).
    trials : Trials
        Or any object with ``start_time`` and ``stop_time`` arrays; trials must not overlap
        (they may touch) and may be in any order.

    Returns
    -------
    trial_index : ndarray of int64, shape (n_bins,)
        Index (in ``trials``' order) of the trial whose interval ``[start_time, stop_time)`` holds
        the bin centre, -1 outside every trial.
    time_in_trial : ndarray of float64, shape (n_bins,)
        ``bin_centre - start_time`` of that trial, NaN outside trials.

    Raises
    ------
    ValueError
        Non-finite times, a trial that stops before it starts, overlapping trials, or shapes.

    Examples
    --------
    >>> trials = Trials(start_time=np.array([0.0, 1.0]), stop_time=np.array([0.5, 1.5]))
    >>> index, elapsed = trial_structure(np.array([0.25, 0.75, 1.0, 1.25, 1.5]), trials)
    >>> index
    array([ 0, -1,  1,  1, -1])
    >>> elapsed
    array([0.25,  nan, 0.  , 0.25,  nan])
    """
    centres = np.asarray(bin_centres)
    if centres.ndim != 1:
        raise ValueError(f"bin_centres must be 1-D, got shape {centres.shape}")
    centres = _signal(centres, None, "bin_centres")[0][:, 0] if centres.size else centres.astype(np.float64)
    try:
        start = np.asarray(trials.start_time, dtype=np.float64).reshape(-1)
        stop = np.asarray(trials.stop_time, dtype=np.float64).reshape(-1)
    except AttributeError:
        raise ValueError(f"trials must have start_time and stop_time arrays, got "
                         f"{type(trials).__name__}") from None
    if start.shape != stop.shape:
        raise ValueError(f"trials have {start.size} start times but {stop.size} stop times")
    for what, v in (("start_time", start), ("stop_time", stop)):
        bad = _first_nonfinite(v) if v.size else None
        if bad is not None:
            raise ValueError(f"trials.{what} of trial {bad} is {v[bad]}")
    if np.any(stop < start):
        i = int(np.flatnonzero(stop < start)[0])
        raise ValueError(f"trial {i} stops ({stop[i]}) before it starts ({start[i]})")
    order = np.argsort(start, kind="stable")
    s, e = start[order], stop[order]
    overlap = np.flatnonzero(s[1:] < e[:-1])
    if overlap.size:
        a, b = int(order[overlap[0]]), int(order[overlap[0] + 1])
        raise ValueError(f"trials {a} [{start[a]}, {stop[a]}) and {b} [{start[b]}, {stop[b]}) overlap")

    index = np.full(centres.shape[0], -1, dtype=np.int64)
    elapsed = np.full(centres.shape[0], np.nan)
    if s.size:
        # the last trial starting at or before each centre; inside it when the centre is before its stop
        candidate = np.searchsorted(s, centres, side="right") - 1
        ok = candidate >= 0
        ok[ok] = centres[ok] < e[candidate[ok]]
        index[ok] = order[candidate[ok]]
        elapsed[ok] = centres[ok] - s[candidate[ok]]
    return index, elapsed
