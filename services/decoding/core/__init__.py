"""The science of the decoding service, free of transport.

* inputs: :mod:`.recordings` (NWB, Kilosort/phy, continuous signals, behaviour alignment,
  trials), :mod:`.binning` (spike counts per bin), :mod:`.windows` (history windows);
* decoders, one contract (:mod:`.base`): Wiener filter (:class:`RidgeDecoder`), Wiener cascade,
  Kalman filter, logistic classifier, MLP, LSTM/GRU (:mod:`.neural`), all in :data:`DECODERS`;
* evaluation: blocked cross-validation with a gap, shuffled-label control, time-resolved
  decoding (:mod:`.evaluation`), scores (:mod:`.scores`), and the fast nested-CV Wiener path
  (:func:`cross_validate_decoder`);
* representational similarity analysis (:mod:`.rsa`);
* synthetic sessions with known answers (:mod:`.synthetic`).

Example
-------
>>> from services.decoding.core import (DECODERS, bin_spike_trains, cross_validate,
...                                     simulate_reaching_session)
>>> session = simulate_reaching_session(n_units=30, duration_s=60.0, seed=0)
>>> counts = bin_spike_trains(session.spike_times, session.unit_ids, bin_width_s=0.05,
...                           start_s=0.0, stop_s=60.0, n_units=30)
>>> report = cross_validate(DECODERS["wiener"](), counts, session.velocity, history_bins=5)
>>> report.r2.shape, report.predictions.shape
((2,), (1200, 2))
>>> sorted(DECODERS)
['gru', 'kalman', 'logistic', 'lstm', 'mlp', 'mlp_classifier', 'wiener', 'wiener_cascade']
"""

from .base import DECODERS, Decoder, RidgeDecoder, load_model, save_model, window_tensor
from .binning import bin_spike_trains, count_bins
from .cascade import WienerCascadeDecoder
from .cross_validation import blocked_kfold
from .evaluation import cross_validate, shuffled_control, time_resolved_decoding
from .kalman import KalmanDecoder
from .logistic import LogisticDecoder
from .neural import GRUDecoder, MLPClassifierDecoder, MLPDecoder, RecurrentDecoder
from .scores import pearson_r, r2_score, rmse
from .synthetic import SyntheticSession, simulate_reaching_session
from .wiener import DEFAULT_ALPHAS, CrossValidationResult, WienerFilter, cross_validate_decoder
from .windows import history_design_matrix

__all__ = [
    "DECODERS", "Decoder", "RidgeDecoder", "WienerCascadeDecoder", "KalmanDecoder", "LogisticDecoder",
    "MLPDecoder", "MLPClassifierDecoder", "RecurrentDecoder", "GRUDecoder", "load_model", "save_model",
    "window_tensor", "bin_spike_trains", "count_bins", "history_design_matrix", "blocked_kfold",
    "cross_validate", "shuffled_control", "time_resolved_decoding", "WienerFilter", "CrossValidationResult",
    "cross_validate_decoder", "DEFAULT_ALPHAS", "r2_score", "pearson_r", "rmse", "SyntheticSession",
    "simulate_reaching_session",
]
