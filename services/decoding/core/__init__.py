"""The science of the decoding service, free of transport: spike binning, history windows,
blocked cross-validation, the Wiener filter decoder, scores, and a synthetic reaching session.

Example
-------
>>> from services.decoding.core import (bin_spike_trains, cross_validate_decoder,
...                                     simulate_reaching_session)
>>> session = simulate_reaching_session(n_units=30, duration_s=60.0, seed=0)
>>> counts = bin_spike_trains(session.spike_times, session.unit_ids, bin_width_s=0.05,
...                           start_s=0.0, stop_s=60.0, n_units=30)
>>> result = cross_validate_decoder(counts, session.velocity, history_bins=5)
>>> result.r2.shape, result.predictions.shape
((2,), (1200, 2))
"""

from .binning import bin_spike_trains, count_bins
from .cross_validation import blocked_kfold
from .scores import pearson_r, r2_score, rmse
from .synthetic import SyntheticSession, simulate_reaching_session
from .wiener import DEFAULT_ALPHAS, CrossValidationResult, WienerFilter, cross_validate_decoder
from .windows import history_design_matrix

__all__ = [
    "bin_spike_trains", "count_bins", "history_design_matrix", "blocked_kfold", "WienerFilter",
    "CrossValidationResult", "cross_validate_decoder", "DEFAULT_ALPHAS", "r2_score", "pearson_r", "rmse",
    "SyntheticSession", "simulate_reaching_session",
]
