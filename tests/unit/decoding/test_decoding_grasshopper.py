"""Decoding a real recording: a grasshopper auditory receptor and the sound envelope driving it.

The data ship with nitime (``nitime/data/grasshopper_*1.txt``; see
:func:`services.decoding.core.recordings.read_nitime_grasshopper` for their origin and units: a
receptor of *Locusta migratoria*, Rokem et al. 2006, stimulus sampled at 20 kHz, spike times in
microseconds). The stimulus is a tone whose amplitude envelope is Gaussian white noise in dB
(standard deviation 6 dB, cut-off 200 Hz, from the file header); the file stores that envelope,
not the carrier, so the envelope needs no rectification or Hilbert transform.

Choices, and why:

* **Target: the envelope in dB SPL**, the variable the experimenters made Gaussian and white;
  receptors encode sound level roughly logarithmically. (The linear amplitude decodes a little
  worse, R² about 0.26.)
* **1 ms bins.** The envelope holds frequencies up to 200 Hz, so bins must be well under its
  2.5 ms Nyquist interval; the receptor's spikes are precise to about a millisecond (the point
  of Rokem et al.), and its shortest interspike interval is 3.2 ms, so a bin holds 0 or 1 spike.
  The envelope is averaged over each bin (20 samples) with ``bin_continuous``.
* **Window: 5 bins of history, 15 of future.** A spike follows the stimulus that caused it: the
  spike-triggered average of the envelope (checked below) departs from the mean from about 14 ms
  to 2 ms before the spike, so the envelope at ``t`` is read from the spikes up to 15 ms later.
  5 ms of past spikes cover the refractory period, which shapes when the next spike can come.
* Blocked 5-fold cross-validation with the ridge strength chosen by the nested inner folds, the
  default of ``cross_validate_decoder``.

Measured (numpy float64, any BLAS): cross-validated R² = 0.300 (folds 0.25..0.32, Pearson r 0.55); circular
shifts of the spike train by 1, 2.5, 5 and 7.5 s give R² between -0.003 and -0.001.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nitime")

from services.decoding.core.binning import bin_spike_trains
from services.decoding.core.recordings import bin_continuous, read_nitime_grasshopper
from services.decoding.core.wiener import cross_validate_decoder

BIN_S = 0.001
HISTORY_BINS, FUTURE_BINS = 5, 15


@pytest.fixture(scope="module")
def cell1():
    rec = read_nitime_grasshopper(1)
    n_bins = int(round(rec.duration_s / BIN_S))
    envelope = bin_continuous(rec.stimulus_db, sampling_rate_hz=rec.sampling_rate_hz, bin_width_s=BIN_S)
    counts = bin_spike_trains(rec.spike_times, np.zeros(rec.spike_times.size, dtype=np.int64),
                              bin_width_s=BIN_S, start_s=0.0, stop_s=rec.duration_s, n_units=1)
    assert envelope.shape == (n_bins,) and counts.shape == (n_bins, 1)
    return rec, counts, envelope


def test_the_files_read_as_nitime_describes_them(cell1):
    rec, counts, envelope = cell1
    assert rec.sampling_rate_hz == 20000.0 and rec.duration_s == 10.0
    assert rec.header["cut-off frequency (Hz)"] == "200" and rec.header["standard deviation (dB)"] == "6"
    assert rec.spike_times.size == 929 == counts.sum()               # every spike inside the stimulus
    assert rec.spike_times[0] == pytest.approx(0.0067) and rec.spike_times[-1] == pytest.approx(9.9993)
    assert counts.max() == 1                                         # shortest interval 3.2 ms > 1 bin
    assert np.std(rec.stimulus_db) == pytest.approx(6.0, abs=0.1)    # the header's 6 dB
    assert rec.stimulus_db.max() == pytest.approx(76.4286)           # the header's intensity


def test_spike_triggered_average_peaks_a_few_ms_before_the_spike(cell1):
    # the time base check: with spikes in microseconds and the stimulus at 20 kHz, the receptor
    # fires a few ms after a rise of the envelope; wrong units would leave no structure at all
    rec, _, _ = cell1
    spike_sample = np.round(rec.spike_times * rec.sampling_rate_hz).astype(np.int64)
    lags = np.arange(-400, 101)                                      # -20 ms .. +5 ms
    spike_sample = spike_sample[(spike_sample + lags[0] >= 0) & (spike_sample + lags[-1] < rec.stimulus_db.size)]
    sta = rec.stimulus_db[spike_sample[:, np.newaxis] + lags].mean(axis=0) - rec.stimulus_db.mean()
    peak_ms = lags[np.argmax(sta)] / rec.sampling_rate_hz * 1e3
    assert -8.0 <= peak_ms <= -4.0                                   # measured: -6.3 ms
    assert sta.max() > 5.0                                           # dB above the mean (measured 5.8)
    assert np.abs(sta[lags < -300]).max() < 1.0                      # nothing 15-20 ms before a spike


def test_a_linear_decoder_reconstructs_the_envelope_from_cell_1(cell1):
    _, counts, envelope = cell1
    result = cross_validate_decoder(counts, envelope, history_bins=HISTORY_BINS, future_bins=FUTURE_BINS,
                                    n_folds=5)
    assert 0.25 <= result.r2[0] <= 0.36                              # measured 0.300
    assert result.fold_r2.min() > 0.15                               # every block decodes, not one
    assert result.pearson_r[0] == pytest.approx(np.sqrt(result.r2[0]), abs=0.05)


@pytest.mark.parametrize("shift_s", [1.0, 2.5, 5.0, 7.5])
def test_shifting_the_spikes_in_time_destroys_the_decoding(cell1, shift_s):
    _, counts, envelope = cell1
    shifted = np.roll(counts, int(round(shift_s / BIN_S)), axis=0)  # same spikes, wrong times
    result = cross_validate_decoder(shifted, envelope, history_bins=HISTORY_BINS, future_bins=FUTURE_BINS,
                                    n_folds=5)
    assert result.r2[0] <= 0.05                                      # measured -0.003 .. -0.001
