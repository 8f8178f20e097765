"""Reading NWB files and Kilosort folders, and aligning continuous signals to spike bins."""

from __future__ import annotations

import doctest
from datetime import datetime, timezone

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries

from services.decoding.core import recordings
from services.decoding.core.binning import bin_spike_trains
from services.decoding.core.recordings import (
    RecordingFormatError, Trials, align_to_bins, bin_continuous, read_kilosort_folder,
    read_nwb_timeseries, read_nwb_trials, read_nwb_units, trial_structure,
)

# --------------------------------------------------------------------------------------------------
# NWB fixtures: everything written is known exactly

UNIT_SPIKES = {            # Units table id -> spike times (s); id 7 never fires
    3: [0.5, 0.1, 2.25],   # deliberately unsorted within the unit
    7: [],
    11: [0.1, 1.75],
}
POSITION_T = np.array([0.0, 0.1, 0.2, 0.35, 0.5])
POSITION_XY = np.array([[0.0, 1.0], [0.5, 1.5], [1.0, 2.0], [1.5, 2.5], [2.0, 3.0]])


def _nwbfile() -> NWBFile:
    return NWBFile(session_description="recordings test", identifier="rec-test",
                   session_start_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))


@pytest.fixture
def nwb_path(tmp_path):
    nwb = _nwbfile()
    for unit_id, times in UNIT_SPIKES.items():
        nwb.add_unit(id=unit_id, spike_times=times)
    behavior = nwb.create_processing_module(name="behavior", description="tracked position")
    behavior.add(Position(spatial_series=SpatialSeries(
        name="position", data=POSITION_XY, timestamps=POSITION_T, reference_frame="arena corner",
        unit="meters")))
    nwb.add_acquisition(TimeSeries(name="lfp_power", data=np.arange(6.0) * 10.0, unit="uV^2",
                                   starting_time=2.0, rate=4.0))
    nwb.add_trial_column(name="target", description="target number")
    nwb.add_trial_column(name="label", description="a text column")
    for start, stop, target in [(0.0, 1.0, 2), (1.5, 2.0, 0), (2.0, 3.5, 5)]:
        nwb.add_trial(start_time=start, stop_time=stop, target=target, label=f"t{target}")
    path = tmp_path / "session.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture
def bare_nwb_path(tmp_path):
    """An NWB file with neither units nor trials, and two behaviour series."""
    nwb = _nwbfile()
    behavior = nwb.create_processing_module(name="behavior", description="behaviour")
    behavior.add(BehavioralTimeSeries(time_series=[
        TimeSeries(name="speed", data=np.array([1.0, 2.0, 4.0]), unit="m/s", timestamps=[0.0, 0.5, 1.0]),
        TimeSeries(name="pupil", data=np.array([3.0, 3.5]), unit="mm", rate=2.0)]))
    nwb.add_acquisition(TimeSeries(name="speed", data=np.array([9.0, 9.0]), unit="m/s", rate=1.0))
    path = tmp_path / "bare.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


# --------------------------------------------------------------------------------------------------
# NWB: units


def test_units_round_trip_with_an_empty_unit(nwb_path):
    trains = read_nwb_units(nwb_path)
    assert trains.n_units == 3
    assert trains.unit_names == ["3", "7", "11"]
    # sorted by time, ties (0.1 s in units 0 and 2) in unit order
    np.testing.assert_array_equal(trains.times, [0.1, 0.1, 0.5, 1.75, 2.25])
    np.testing.assert_array_equal(trains.unit_ids, [0, 2, 0, 2, 0])
    assert trains.times.dtype == np.float64 and trains.unit_ids.dtype == np.int64
    counts = trains.binned(bin_width_s=0.5, start_s=0.0, stop_s=2.5)
    assert counts.shape == (5, 3)                           # the silent unit keeps its column
    np.testing.assert_array_equal(counts[:, 1], 0)
    np.testing.assert_array_equal(counts[:, 0], [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(counts[:, 2], [1, 0, 0, 1, 0])


def test_units_table_where_no_unit_fired(tmp_path):
    nwb = _nwbfile()
    nwb.add_unit(id=0, spike_times=[])
    nwb.add_unit(id=1, spike_times=[])
    path = tmp_path / "silent.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    trains = read_nwb_units(path)
    assert trains.n_units == 2 and trains.unit_names == ["0", "1"]
    assert trains.times.shape == (0,) and trains.unit_ids.shape == (0,)
    assert trains.binned(bin_width_s=0.1, start_s=0.0, stop_s=0.3).shape == (3, 2)


def test_file_without_units_table(bare_nwb_path):
    with pytest.raises(ValueError, match=r"bare\.nwb: the NWB file has no Units table"):
        read_nwb_units(bare_nwb_path)


def test_text_file_named_nwb_is_a_clean_value_error(tmp_path):
    fake = tmp_path / "notes.nwb"
    fake.write_text("this is not HDF5\n")
    for reader in (read_nwb_units, read_nwb_timeseries, read_nwb_trials):
        with pytest.raises(RecordingFormatError, match=r"notes\.nwb: not a readable NWB file") as info:
            reader(fake)
        assert isinstance(info.value, ValueError)


def test_hdf5_file_that_is_not_nwb(tmp_path):
    path = tmp_path / "plain.nwb"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match=r"plain\.nwb: not a readable NWB file"):
        read_nwb_units(path)


def test_missing_nwb_file(tmp_path):
    with pytest.raises(ValueError, match=r"absent\.nwb: no such file"):
        read_nwb_units(tmp_path / "absent.nwb")


# --------------------------------------------------------------------------------------------------
# NWB: time series


def test_spatial_series_under_processing_behavior(nwb_path):
    series = read_nwb_timeseries(nwb_path, "position")
    np.testing.assert_array_equal(series.data, POSITION_XY)
    np.testing.assert_array_equal(series.timestamps, POSITION_T)
    assert (series.name, series.unit, series.location) == ("position", "meters",
                                                           "processing/behavior/Position/position")
    assert series.data.dtype == np.float64 and series.data.shape == (5, 2)
    by_location = read_nwb_timeseries(nwb_path, "processing/behavior/Position/position")
    np.testing.assert_array_equal(by_location.data, POSITION_XY)


def test_acquisition_series_timestamps_from_starting_time_and_rate(nwb_path):
    series = read_nwb_timeseries(nwb_path, "lfp_power")
    np.testing.assert_array_equal(series.timestamps, [2.0, 2.25, 2.5, 2.75, 3.0, 3.25])
    np.testing.assert_array_equal(series.data[:, 0], [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    assert series.data.shape == (6, 1) and series.unit == "uV^2" and series.location == "acquisition/lfp_power"


def test_name_none_needs_exactly_one_series(nwb_path):
    with pytest.raises(ValueError, match=r"2 TimeSeries in the file, pass name=.*"
                                         r"acquisition/lfp_power.*processing/behavior/Position/position"):
        read_nwb_timeseries(nwb_path)


def test_unknown_and_ambiguous_names_list_the_candidates(bare_nwb_path):
    with pytest.raises(ValueError, match=r"no TimeSeries named 'velocity'; the file has: acquisition/speed, "
                                         r"processing/behavior/BehavioralTimeSeries/(speed|pupil)"):
        read_nwb_timeseries(bare_nwb_path, "velocity")
    with pytest.raises(ValueError, match=r"2 TimeSeries are named 'speed', pass a location"):
        read_nwb_timeseries(bare_nwb_path, "speed")
    speed = read_nwb_timeseries(bare_nwb_path, "processing/behavior/BehavioralTimeSeries/speed")
    np.testing.assert_array_equal(speed.data[:, 0], [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(speed.timestamps, [0.0, 0.5, 1.0])
    pupil = read_nwb_timeseries(bare_nwb_path, "pupil")               # rate without starting_time: 0
    np.testing.assert_array_equal(pupil.timestamps, [0.0, 0.5])


# --------------------------------------------------------------------------------------------------
# NWB: trials


def test_trials_with_an_integer_condition(nwb_path):
    trials = read_nwb_trials(nwb_path, condition="target")
    np.testing.assert_array_equal(trials.start_time, [0.0, 1.5, 2.0])
    np.testing.assert_array_equal(trials.stop_time, [1.0, 2.0, 3.5])
    np.testing.assert_array_equal(trials.condition, [2, 0, 5])
    assert trials.condition.dtype == np.int64 and trials.condition_name == "target" and trials.n_trials == 3
    assert read_nwb_trials(nwb_path).condition is None


def test_trials_condition_errors(nwb_path, bare_nwb_path):
    with pytest.raises(ValueError, match=r"no column 'stimulus'; its columns are: .*target"):
        read_nwb_trials(nwb_path, condition="stimulus")
    with pytest.raises(ValueError, match=r"trials\.label must hold integer codes"):
        read_nwb_trials(nwb_path, condition="label")
    with pytest.raises(ValueError, match=r"bare\.nwb: the NWB file has no trials table"):
        read_nwb_trials(bare_nwb_path)


def test_trial_structure_of_the_file_trials(nwb_path):
    trials = read_nwb_trials(nwb_path)
    centres = 0.25 + 0.5 * np.arange(8)            # 0.25, 0.75, ..., 3.75
    index, elapsed = trial_structure(centres, trials)
    np.testing.assert_array_equal(index, [0, 0, -1, 1, 2, 2, 2, -1])
    np.testing.assert_allclose(elapsed, [0.25, 0.75, np.nan, 0.25, 0.25, 0.75, 1.25, np.nan])


# --------------------------------------------------------------------------------------------------
# Kilosort


def _kilosort(folder, *, times, clusters, params="sample_rate = 20000.0\n", groups=None, kslabels=None,
              clusters_file="spike_clusters.npy"):
    folder.mkdir(exist_ok=True)
    np.save(folder / "spike_times.npy", np.asarray(times, dtype=np.uint64).reshape(-1, 1))  # as Kilosort
    if clusters is not None:
        np.save(folder / clusters_file, np.asarray(clusters, dtype=np.int32))
    if params is not None:
        (folder / "params.py").write_text(params)
    if groups is not None:
        (folder / "cluster_group.tsv").write_text(groups)
    if kslabels is not None:
        (folder / "cluster_KSLabel.tsv").write_text(kslabels)
    return folder


PARAMS = ("dat_path = r'D:\\data\\raw.bin'\nn_channels_dat = 385\ndtype = 'int16'\noffset = 0\n"
          "sample_rate = 30000.\nhp_filtered = False\nexternal = open('x')  # never executed\n")
TIMES = [30, 300, 450, 600, 3000, 30000, 30001]
CLUSTERS = [5, 2, 5, 40, 2, 5, 17]
KSLABELS = "cluster_id\tKSLabel\n2\tgood\n5\tmua\n17\tgood\n40\tgood\n"
GROUPS = "cluster_id\tgroup\n5\tgood\n17\tnoise\n99\tgood\n"  # curation overrides 5 and 17; 99 is stale


def test_kilosort_curation_overrides_kslabel_and_renumbers(tmp_path):
    folder = _kilosort(tmp_path / "ks", times=TIMES, clusters=CLUSTERS, params=PARAMS, groups=GROUPS,
                       kslabels=KSLABELS)
    trains = read_kilosort_folder(folder)                # good: 2 (KSLabel), 5 (curated), 40 (KSLabel)
    assert trains.unit_names == ["2", "5", "40"] and trains.n_units == 3
    np.testing.assert_array_equal(trains.times, np.array([30, 300, 450, 600, 3000, 30000]) / 30000.0)
    np.testing.assert_array_equal(trains.unit_ids, [1, 0, 1, 2, 0, 1])

    noise = read_kilosort_folder(folder, include=("noise",))
    assert noise.unit_names == ["17"]
    np.testing.assert_array_equal(noise.times, [30001 / 30000.0])
    everything = read_kilosort_folder(folder, include=None, sampling_rate_hz=10.0)
    assert everything.unit_names == ["2", "5", "17", "40"]
    np.testing.assert_array_equal(everything.times, np.sort(TIMES) / 10.0)


def test_kilosort_kslabel_only_and_unlabelled_clusters_are_unsorted(tmp_path):
    folder = _kilosort(tmp_path / "ks", times=[10, 20, 30], clusters=[1, 8, 1],
                       kslabels="cluster_id\tKSLabel\n1\tgood\n")
    assert read_kilosort_folder(folder).unit_names == ["1"]
    assert read_kilosort_folder(folder, include=("unsorted",)).unit_names == ["8"]
    np.testing.assert_array_equal(read_kilosort_folder(folder).times, [10 / 20000.0, 30 / 20000.0])


def test_kilosort_falls_back_on_spike_templates(tmp_path):
    folder = _kilosort(tmp_path / "ks", times=[100, 200, 300], clusters=[4, 0, 4],
                       clusters_file="spike_templates.npy")
    trains = read_kilosort_folder(folder, include=None)
    assert trains.unit_names == ["0", "4"]
    np.testing.assert_array_equal(trains.unit_ids, [1, 0, 1])
    np.testing.assert_array_equal(trains.times, [0.005, 0.01, 0.015])


@pytest.mark.parametrize("setup, match", [
    (dict(clusters=None), r"missing spike_clusters\.npy \(and no spike_templates\.npy"),
    (dict(clusters=[1, 2]), r"spike_clusters\.npy: 2 entries but spike_times\.npy has 3 spikes"),
    (dict(groups="cluster_id\tgroup\none\tgood\n"), r"cluster_group\.tsv: line 2: cluster_id 'one' is not an "
                                                     r"integer"),
    (dict(groups="cluster_id\tgroup\n1\tgreat\n"), r"cluster_group\.tsv: line 2: unknown group 'great'"),
    (dict(kslabels="cluster_id\tlabel\n1\tgood\n"), r"cluster_KSLabel\.tsv: header must name the columns"),
    (dict(groups="cluster_id\tgroup\n1\tgood\n1\tmua\n"), r"cluster 1 is listed twice"),
    (dict(), r"missing cluster_group\.tsv and cluster_KSLabel\.tsv"),
    (dict(params="dtype = 'int16'\n", groups="cluster_id\tgroup\n1\tgood\n"),
     r"params\.py: sample_rate is not assigned"),
    (dict(params=None, groups="cluster_id\tgroup\n1\tgood\n"), r"params\.py: missing"),
    (dict(params="sample_rate = -5\n", groups="cluster_id\tgroup\n1\tgood\n"),
     r"params\.py: sample_rate must be a positive number, got -5"),
    (dict(params="sample_rate = (\n", groups="cluster_id\tgroup\n1\tgood\n"), r"params\.py: not a parsable"),
])
def test_kilosort_malformed_folders(tmp_path, setup, match):
    kwargs = dict(times=[10, 20, 30], clusters=[1, 1, 2])
    kwargs.update(setup)
    folder = _kilosort(tmp_path / "ks", **kwargs)
    with pytest.raises(ValueError, match=match):
        read_kilosort_folder(folder)


def test_kilosort_bad_arrays_and_arguments(tmp_path):
    folder = _kilosort(tmp_path / "ks", times=[10, 20], clusters=[1, 1])
    np.save(folder / "spike_times.npy", np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"spike_times\.npy: expected integers"):
        read_kilosort_folder(folder, include=None)
    (folder / "spike_times.npy").write_text("garbage")
    with pytest.raises(ValueError, match=r"spike_times\.npy: not a readable \.npy array"):
        read_kilosort_folder(folder, include=None)
    (folder / "spike_times.npy").unlink()
    with pytest.raises(ValueError, match=r"spike_times\.npy: missing"):
        read_kilosort_folder(folder, include=None)
    with pytest.raises(ValueError, match=r"include holds unknown cluster labels \['Good'\]"):
        read_kilosort_folder(folder, include=("Good",))
    with pytest.raises(ValueError, match=r"not a folder"):
        read_kilosort_folder(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------------
# align_to_bins


def test_mean_of_samples_in_each_bin_and_interpolation_of_empty_bins():
    t = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.45, 0.5])
    x = np.column_stack([[1.0, 3.0, 5.0, 7.0, 9.0, 4.0, 0.0], np.arange(7.0)])
    aligned = align_to_bins(t, x, start_s=0.0, bin_width_s=0.1, n_bins=5)
    # bins [0, .1) {1, 3}; [.1, .2) {5, 7}; [.2, .3) {9}; [.3, .4) empty: interp at .35 between
    # (0.2, 9) and (0.45, 4) = 9 - 5 * 0.6 = 6; [.4, .5) {4} (0.5 is the next bin's edge)
    np.testing.assert_allclose(aligned[:, 0], [2.0, 6.0, 9.0, 6.0, 4.0])
    np.testing.assert_allclose(aligned[:, 1], [0.5, 2.5, 4.0, 4.6, 5.0])
    explicit = align_to_bins(t, x, bin_edges=np.arange(6) * 0.1)
    np.testing.assert_allclose(explicit, aligned)


def test_samples_on_decimal_edges_go_where_the_spikes_go():
    # 0.3 / 0.1 rounds below 3: a sample at 0.3 s must open bin 3, like a spike at 0.3 s does
    t = np.array([0.0, 0.1, 0.2, 0.3])
    aligned = align_to_bins(t, np.array([1.0, 2.0, 3.0, 4.0]), start_s=0.0, bin_width_s=0.1, n_bins=4,
                            outside="clip")
    np.testing.assert_array_equal(aligned, [1.0, 2.0, 3.0, 4.0])
    spikes = bin_spike_trains(t, [0, 0, 0, 0], bin_width_s=0.1, start_s=0.0, stop_s=0.4)
    np.testing.assert_array_equal(spikes[:, 0], [1, 1, 1, 1])


def test_interpolation_at_bin_centres():
    t = np.array([0.0, 1.0, 2.0])
    aligned = align_to_bins(t, np.array([0.0, 10.0, 0.0]), start_s=0.0, bin_width_s=0.5, n_bins=4,
                            method="interpolate")
    np.testing.assert_allclose(aligned, [2.5, 7.5, 7.5, 2.5])


def test_bins_outside_the_signal_raise_or_clip():
    t = np.array([1.0, 2.0, 3.0])
    x = np.array([2.0, 4.0, 8.0])
    with pytest.raises(ValueError, match=r"bin 0 \(centre 0.75 s\) lies outside the signal's span \[1, 3\] s; "
                                         r"1 of 5 bins do"):
        align_to_bins(t, x, start_s=0.5, bin_width_s=0.5, n_bins=5)
    clipped = align_to_bins(t, x, start_s=0.5, bin_width_s=0.5, n_bins=5, outside="clip", method="interpolate")
    # centres 0.75 (held at 2), 1.25, 1.75, 2.25, 2.75
    np.testing.assert_allclose(clipped, [2.0, 2.5, 3.5, 5.0, 7.0])
    mean = align_to_bins(t, x, start_s=0.5, bin_width_s=0.5, n_bins=6, outside="clip")
    # bins [.5,1) empty -> 2; [1,1.5) {2}; [1.5,2) empty -> 3.5; [2,2.5) {4}; [2.5,3) -> 7; [3,3.5) {8}
    np.testing.assert_allclose(mean, [2.0, 2.0, 3.5, 4.0, 7.0, 8.0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=[1.0, np.nan, 3.0]), r"values hold NaN or infinite values, first at sample 1 \(channel 0\)"),
    (dict(values=[[1.0, 1.0], [2.0, 2.0], [3.0, np.inf]]), r"first at sample 2 \(channel 1\)"),
    (dict(values=[1.0, 2.0]), r"values has 2 samples but timestamps has 3"),
    (dict(timestamps=[0.0, 0.2, 0.1]), r"timestamps must increase strictly, but sample 2 \(0.1\)"),
    (dict(method="nearest"), r"method must be 'mean' or 'interpolate'"),
    (dict(outside="nan"), r"outside must be 'raise' or 'clip'"),
    (dict(bin_edges=[0.0, 0.1]), r"either bin_edges or start_s/bin_width_s/n_bins, not both"),
    (dict(n_bins=None), r"pass bin_edges, or all of start_s, bin_width_s and n_bins"),
])
def test_align_to_bins_rejects_bad_input(kwargs, match):
    arguments = dict(timestamps=[0.0, 0.1, 0.2], values=[1.0, 2.0, 3.0], start_s=0.0, bin_width_s=0.1, n_bins=2)
    arguments.update(kwargs)
    timestamps, values = arguments.pop("timestamps"), arguments.pop("values")
    with pytest.raises(ValueError, match=match):
        align_to_bins(timestamps, values, **arguments)


# --------------------------------------------------------------------------------------------------
# bin_continuous


def test_non_integer_bin_width_weights_the_cut_samples():
    # fs = 10 Hz: sample i covers [0.1 i, 0.1 (i + 1)); bins of 0.25 s cut every third sample in half
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    binned = bin_continuous(values, sampling_rate_hz=10.0, bin_width_s=0.25)
    hand = [(1 + 2 + 0.5 * 3) / 2.5, (0.5 * 3 + 4 + 5) / 2.5, (6 + 7 + 0.5 * 8) / 2.5, (0.5 * 8 + 9 + 10) / 2.5]
    np.testing.assert_allclose(binned, hand, rtol=1e-12)
    # bins narrower than a sample take the sample's value; [0.18, 0.22) straddles samples 1 and 2
    narrow = bin_continuous(values[:3], sampling_rate_hz=10.0, bin_width_s=0.04, start_s=0.02)
    np.testing.assert_allclose(narrow, [1.0, 1.0, 2.0, 2.0, 2.5, 3.0, 3.0], rtol=1e-12)


def test_offsets_and_stop_match_the_spike_bins():
    values = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    # first sample at 5.0 s, fs 4 Hz (samples cover 0.25 s); bins of 0.4 s from 5.1 s to 5.9 s
    binned = bin_continuous(values, sampling_rate_hz=4.0, bin_width_s=0.4, start_s=5.1, stop_s=5.9,
                            first_sample_s=5.0)
    # [5.1, 5.5): 0.15 of sample 0 + 0.25 of sample 1; [5.5, 5.9): 0.25 of sample 2 + 0.15 of sample 3
    hand = np.array([[(0.15 * 1 + 0.25 * 2) / 0.4, (0.15 * 10 + 0.25 * 20) / 0.4],
                     [(0.25 * 3 + 0.15 * 4) / 0.4, (0.25 * 30 + 0.15 * 40) / 0.4]])
    np.testing.assert_allclose(binned, hand, rtol=1e-12)
    counts = bin_spike_trains([5.2], [0], bin_width_s=0.4, start_s=5.1, stop_s=5.9)
    assert counts.shape[0] == binned.shape[0]


def test_integer_blocks_agree_with_align_to_bins_mean():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(3000, 3)) + 1000.0      # far from 0: the running sum must stay precise
    fs, width = 1000.0, 0.02
    binned = bin_continuous(values, sampling_rate_hz=fs, bin_width_s=width)
    assert binned.shape == (150, 3)
    np.testing.assert_allclose(binned, values.reshape(150, 20, 3).mean(axis=1), rtol=0, atol=1e-10)
    t = np.arange(3000) / fs
    np.testing.assert_allclose(align_to_bins(t, values, start_s=0.0, bin_width_s=width, n_bins=150),
                               binned, rtol=0, atol=1e-10)


def test_bin_continuous_errors():
    with pytest.raises(ValueError, match=r"values hold NaN or infinite values, first at sample 2"):
        bin_continuous([1.0, 2.0, np.nan], sampling_rate_hz=10.0, bin_width_s=0.1)
    with pytest.raises(ValueError, match=r"start_s=-0.5 is before the first sample"):
        bin_continuous([1.0, 2.0], sampling_rate_hz=10.0, bin_width_s=0.1, start_s=-0.5)
    with pytest.raises(ValueError, match=r"the bins end at .* after the signal \(0.2 s, 2 samples at 10.0 Hz\)"):
        bin_continuous([1.0, 2.0], sampling_rate_hz=10.0, bin_width_s=0.1, stop_s=0.3)
    with pytest.raises(ValueError, match=r"no whole bin of 0.5 s"):
        bin_continuous([1.0, 2.0], sampling_rate_hz=10.0, bin_width_s=0.5)
    with pytest.raises(ValueError, match=r"sampling_rate_hz must be a finite number > 0"):
        bin_continuous([1.0, 2.0], sampling_rate_hz=0.0, bin_width_s=0.1)


# --------------------------------------------------------------------------------------------------
# trial_structure, SpikeTrains, docstrings


def test_trial_structure_with_unsorted_touching_trials():
    trials = Trials(start_time=np.array([2.0, 0.0, 1.0]), stop_time=np.array([3.0, 1.0, 2.0]))
    index, elapsed = trial_structure(np.array([-0.5, 0.0, 0.999, 1.0, 2.5, 3.0]), trials)
    np.testing.assert_array_equal(index, [-1, 1, 1, 2, 0, -1])
    np.testing.assert_allclose(elapsed, [np.nan, 0.0, 0.999, 0.0, 0.5, np.nan])


def test_trial_structure_errors():
    with pytest.raises(ValueError, match=r"trials 0 \[0.0, 2.0\) and 1 \[1.0, 3.0\) overlap"):
        trial_structure(np.array([0.5]), Trials(start_time=np.array([0.0, 1.0]), stop_time=np.array([2.0, 3.0])))
    with pytest.raises(ValueError, match=r"trial 0 stops \(0.0\) before it starts \(1.0\)"):
        trial_structure(np.array([0.5]), Trials(start_time=np.array([1.0]), stop_time=np.array([0.0])))
    with pytest.raises(ValueError, match=r"trials must have start_time and stop_time"):
        trial_structure(np.array([0.5]), [(0.0, 1.0)])


def test_docstring_examples_run():
    result = doctest.testmod(recordings, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
