"""Decoders against the references a user would otherwise pick, side by side, on one dataset.

The data: :func:`simulate_reaching_session` (cosine-tuned Poisson units driven by 2-D hand
velocity), ``--units`` units x ``--bins`` bins of 50 ms, spike counts in 10-bin history windows
(``--history 9``). The final 20% of the bins is the test block; ``history`` bins before it are
dropped so that no training window overlaps a test window. Every pair sees the same windows.

Pairs (NeuroMesh / reference):

* **wiener**: :class:`RidgeDecoder` (ridge strength chosen by 5 blocked inner folds) against
  scikit-learn's ``make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS))`` on the same
  flattened windows: the same grid of ridge strengths on standardised features, chosen by
  RidgeCV's efficient leave-one-out instead.
* **lstm**: :class:`RecurrentDecoder` (LSTM, 128 hidden units) against the LSTM a user writes in
  plain torch: ``nn.LSTM`` + ``nn.Linear`` on the last step, inputs and targets z-scored with
  the training statistics, ``DataLoader(TensorDataset(...), shuffle=True)``, Adam, MSE; same
  hidden size, epochs, batch size and learning rate.
* **kalman** (when ``services/decoding/core/kalman.py`` provides ``KalmanDecoder``): against the
  textbook Kalman filter of Wu et al. (2003) in numpy: least-squares ``A, W, H, Q`` and the
  covariance-form update, which solves a ``p x p`` system per step. Both observe the current bin
  only (``history_bins=0``, the usual Kalman setup; a ``p = n_lags * n_units`` observation would
  make the reference's per-step solve impractically slow).

Figures per pair: fit time (median over ``--repeats`` fits for the linear decoders and the
Kalman filter, over ``--net-repeats`` fits for the networks), mean R² over (vx, vy) on the test
block, and the median latency of decoding one sample (one window in, one velocity out: NeuroMesh
``predict_one`` for the network, ``predict`` of one row for the Wiener filter; the reference's
usual one-row call), over up to 1000 windows, repeated ``--repeats`` times. The Kalman filter
carries its state from bin to bin, so its single sample is one online step of consecutive test
windows, from the prior at the start of each latency run: NeuroMesh ``KalmanDecoder.step`` (the
steady-state gain once the covariance has converged), and for the reference one predict + update
of the textbook covariance-form filter as a user writes it (``TextbookKalman.step``: the p x p
innovation solve every step). Ratios are NeuroMesh /
reference: below 1 is faster for the times, above 1 is better for R². The side that goes first
alternates between repetitions.

Run from the repository root::

    nice python bench/decoding_bench.py --units 200 --bins 50000 --epochs 10 --repeats 3 \\
        --json bench/results/decoding_bench.json

``--pairs kalman`` (or ``wiener,lstm``, ...) re-runs only those pairs; the default is all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from services.decoding.core.base import RidgeDecoder, window_tensor
from services.decoding.core.neural import RecurrentDecoder
from services.decoding.core.scores import r2_score
from services.decoding.core.synthetic import simulate_reaching_session
from services.decoding.core.wiener import DEFAULT_ALPHAS

try:  # written by another engineer; the bench runs without it
    from services.decoding.core.kalman import KalmanDecoder
except ImportError:  # pragma: no cover - depends on the tree
    KalmanDecoder = None

BIN_S = 0.05
TEST_FRACTION = 0.2
LATENCY_WINDOWS = 1000
WARM_ROWS = 256
PAIRS = ("wiener", "lstm", "kalman")


# ------------------------------------------------------------------------------------------------
# the references


class TorchLSTM:
    """An LSTM decoder as a user writes it in plain torch (z-scoring, DataLoader, Adam, MSE)."""

    def __init__(self, hidden_size: int, epochs: int, batch_size: int, learning_rate: float, seed: int = 0):
        self.hidden_size, self.epochs, self.batch_size = hidden_size, epochs, batch_size
        self.learning_rate, self.seed = learning_rate, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "TorchLSTM":
        torch.manual_seed(self.seed)
        self.x_mean, self.x_std = X.mean(axis=(0, 1)), X.std(axis=(0, 1)) + 1e-8
        self.y_mean, self.y_std = y.mean(axis=0), y.std(axis=0)
        inputs = torch.tensor((X - self.x_mean) / self.x_std, dtype=torch.float32)
        targets = torch.tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        self.lstm = nn.LSTM(X.shape[2], self.hidden_size, batch_first=True)
        self.readout = nn.Linear(self.hidden_size, y.shape[1])
        params = list(self.lstm.parameters()) + list(self.readout.parameters())
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets),
                                             batch_size=self.batch_size, shuffle=True)
        loss_fn = nn.MSELoss()
        for _ in range(self.epochs):
            for xb, yb in loader:
                out, _ = self.lstm(xb)
                loss = loss_fn(self.readout(out[:, -1]), yb)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out, _ = self.lstm(torch.tensor((X - self.x_mean) / self.x_std, dtype=torch.float32))
            return self.readout(out[:, -1]).numpy() * self.y_std + self.y_mean


class TextbookKalman:
    """The Kalman filter decoder of Wu et al. (2003) as written in a tutorial: least-squares
    model, covariance-form filter with a p x p solve per step."""

    def fit(self, Z: np.ndarray, x: np.ndarray) -> "TextbookKalman":
        self.z_mean, self.x_mean = Z.mean(axis=0), x.mean(axis=0)
        zc, xc = Z - self.z_mean, x - self.x_mean
        self.A = np.linalg.lstsq(xc[:-1], xc[1:], rcond=None)[0].T
        r = xc[1:] - xc[:-1] @ self.A.T
        self.W = r.T @ r / (len(xc) - 1)
        self.H = np.linalg.lstsq(xc, zc, rcond=None)[0].T
        q = zc - xc @ self.H.T
        self.Q = q.T @ q / len(zc)
        self.P0 = xc.T @ xc / len(xc)
        return self

    def start_online(self) -> None:
        self.m, self.P, self.t = np.zeros(self.A.shape[0]), self.P0, 0

    def step(self, z: np.ndarray) -> np.ndarray:
        """One predict + update of the covariance-form filter for one observation (p,)."""
        m, P = self.m, self.P
        if self.t > 0:
            m, P = self.A @ m, self.A @ P @ self.A.T + self.W
        S = self.H @ P @ self.H.T + self.Q
        K = np.linalg.solve(S, self.H @ P).T
        m = m + K @ (z - self.z_mean - self.H @ m)
        self.P = (np.eye(len(m)) - K @ self.H) @ P
        self.m, self.t = m, self.t + 1
        return m + self.x_mean

    def predict(self, Z: np.ndarray) -> np.ndarray:
        m, P = np.zeros(self.A.shape[0]), self.P0
        out = np.empty((len(Z), self.A.shape[0]))
        for t, z in enumerate(Z - self.z_mean):
            if t > 0:
                m, P = self.A @ m, self.A @ P @ self.A.T + self.W
            S = self.H @ P @ self.H.T + self.Q
            K = np.linalg.solve(S, self.H @ P).T
            m = m + K @ (z - self.H @ m)
            P = (np.eye(len(m)) - K @ self.H) @ P
            out[t] = m
        return out + self.x_mean


# ------------------------------------------------------------------------------------------------
# measuring


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency(predict_one, windows: np.ndarray) -> float:
    """Median seconds of one single-sample prediction, after a warm-up."""
    for w in windows[:20]:
        predict_one(w)
    times = np.empty(len(windows))
    for i, w in enumerate(windows):
        start = time.perf_counter()
        predict_one(w)
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def mean_r2(y, prediction) -> float:
    return float(np.mean(r2_score(y, prediction)))


def compare(name: str, ours, reference, fit_repeats: int, repeats: int) -> dict:
    """Fit both sides (alternating which goes first), score them, time single predictions.

    ``ours`` and ``reference`` are dicts with ``make`` (a fresh model), ``fit(model)``,
    ``warm(model)`` (an untimed small fit first: torch's first backward pass, and the first call
    of many numpy/scikit-learn routines, pay a one-off set-up cost that is no part of either fit),
    ``predict(model) -> test prediction``, ``one(model, window)``, ``windows`` and ``y_test``,
    and optionally ``start(model)``, called untimed before each latency run (a stateful decoder
    starts its stream there).
    """
    sides = {"neuromesh": ours, "reference": reference}
    for side in sides.values():
        side["warm"](side["make"]())
    fit_s = {side: [] for side in sides}
    models = {}
    for i in range(fit_repeats):
        order = list(sides) if i % 2 == 0 else list(sides)[::-1]
        for side in order:
            log(f"{name}: fit {i + 1} of {fit_repeats}, {side}")
            model = sides[side]["make"]()
            fit_s[side].append(seconds(lambda: sides[side]["fit"](model)))
            models[side] = model
    log(f"{name}: test R2 and single-sample latency")
    r2 = {side: mean_r2(sides[side]["y_test"], sides[side]["predict"](models[side])) for side in sides}
    latency_s = {side: [] for side in sides}
    for i in range(repeats):
        order = list(sides) if i % 2 == 0 else list(sides)[::-1]
        for side in order:
            one = sides[side]["one"]
            sides[side].get("start", lambda m: None)(models[side])
            latency_s[side].append(latency(lambda w: one(models[side], w), sides[side]["windows"]))
    fit = {side: statistics.median(v) for side, v in fit_s.items()}
    lat = {side: statistics.median(v) for side, v in latency_s.items()}
    return {"pair": name, "fit_s": fit, "r2": r2, "latency_s": lat, "all_fit_s": fit_s, "all_latency_s": latency_s,
            "ratio": {"fit_time": fit["neuromesh"] / fit["reference"], "r2": r2["neuromesh"] / r2["reference"],
                      "latency": lat["neuromesh"] / lat["reference"]}}


def log(message: str) -> None:
    """Progress on stderr (a full run takes minutes); the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(units: int, bins: int, epochs: int, history: int, hidden: int, batch_size: int, learning_rate: float,
        repeats: int, net_repeats: int, pairs: tuple[str, ...] = PAIRS) -> dict:
    session = simulate_reaching_session(n_units=units, duration_s=bins * BIN_S, bin_width_s=BIN_S, seed=0)
    counts, velocity = session.binned_counts(), session.velocity
    n_test = int(round(TEST_FRACTION * bins))
    test_start = bins - n_test

    def split(history_bins: int):
        X, valid = window_tensor(counts, history_bins=history_bins)
        # training rows end `history` bins before the test block: no window in both
        train = np.flatnonzero(valid[:test_start - history_bins])
        test = np.arange(test_start, bins)
        return X[train], velocity[train], X[test], velocity[test]

    results = []
    n_rows = (0, 0)
    if "wiener" in pairs or "lstm" in pairs:
        X, y, X_test, y_test = split(history)
        latency_windows = X_test[:LATENCY_WINDOWS]
        n_rows = len(X), len(X_test)

    # --- Wiener filter
    if "wiener" in pairs:
        flat, flat_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
        results.append(compare(
            "wiener",
            {"make": lambda: RidgeDecoder(alphas=DEFAULT_ALPHAS), "fit": lambda m: m.fit(X, y),
             "warm": lambda m: m.fit(X[:WARM_ROWS], y[:WARM_ROWS]),
             "predict": lambda m: m.predict(X_test), "one": lambda m, w: m.predict(w[np.newaxis]),
             "windows": latency_windows, "y_test": y_test},
            {"make": lambda: make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS)),
             "fit": lambda m: m.fit(flat, y), "warm": lambda m: m.fit(flat[:WARM_ROWS], y[:WARM_ROWS]),
             "predict": lambda m: m.predict(flat_test),
             "one": lambda m, w: m.predict(w.reshape(1, -1)), "windows": latency_windows, "y_test": y_test},
            repeats, repeats))

    # --- LSTM. oneDNN builds its kernels per input shape on first use: the warm-up fit sees both
    # batch shapes of the real fit (full batches and the last, partial one)
    if "lstm" in pairs:
        net_warm = min(len(X), batch_size + (len(X) % batch_size or batch_size))
        results.append(compare(
            "lstm",
            {"make": lambda: RecurrentDecoder(hidden_size=hidden, epochs=epochs, batch_size=batch_size,
                                              learning_rate=learning_rate, device="cpu"),
             "fit": lambda m: m.fit(X, y), "warm": lambda m: m.set_params(epochs=1).fit(X[:net_warm], y[:net_warm]),
             "predict": lambda m: m.predict(X_test), "one": lambda m, w: m.predict_one(w),
             "windows": latency_windows, "y_test": y_test},
            {"make": lambda: TorchLSTM(hidden, epochs, batch_size, learning_rate), "fit": lambda m: m.fit(X, y),
             "warm": lambda m: TorchLSTM(hidden, 1, batch_size, learning_rate).fit(X[:net_warm], y[:net_warm]),
             "predict": lambda m: m.predict(X_test), "one": lambda m, w: m.predict(w[np.newaxis]),
             "windows": latency_windows, "y_test": y_test},
            net_repeats, repeats))

    # --- Kalman filter, on the current bin only; single samples are online steps (see above)
    if "kalman" in pairs and KalmanDecoder is not None:
        K, ky, K_test, ky_test = split(0)
        k_windows = K_test[:LATENCY_WINDOWS]
        if not ("wiener" in pairs or "lstm" in pairs):
            n_rows = len(K), len(K_test)
        results.append(compare(
            "kalman",
            {"make": KalmanDecoder, "fit": lambda m: m.fit(K, ky),
             "warm": lambda m: m.fit(K[:WARM_ROWS], ky[:WARM_ROWS]), "predict": lambda m: m.predict(K_test),
             "start": lambda m: m.start_online(), "one": lambda m, w: m.step(w),
             "windows": k_windows, "y_test": ky_test},
            {"make": TextbookKalman, "fit": lambda m: m.fit(K[:, 0], ky),
             "warm": lambda m: m.fit(K[:WARM_ROWS, 0], ky[:WARM_ROWS]), "predict": lambda m: m.predict(K_test[:, 0]),
             "start": lambda m: m.start_online(), "one": lambda m, w: m.step(w[0]),
             "windows": k_windows, "y_test": ky_test},
            repeats, repeats))

    return {
        "units": units, "bins": bins, "bin_s": BIN_S, "history_bins": history, "epochs": epochs,
        "hidden_size": hidden, "batch_size": batch_size, "learning_rate": learning_rate, "repeats": repeats,
        "net_repeats": net_repeats, "pairs_run": list(pairs),
        "n_train": n_rows[0], "n_test": n_rows[1],
        "pairs": {r["pair"]: r for r in results},
        "ratio": {f"{r['pair']}_{k}": v for r in results for k, v in r["ratio"].items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "sklearn": sklearn.__version__, "numpy": np.__version__},
    }


def table(result: dict) -> str:
    reference = {"wiener": "sklearn RidgeCV", "lstm": "plain torch LSTM", "kalman": "textbook Kalman"}
    windowed = {"wiener", "lstm"} & set(result.get("pairs_run", PAIRS))
    windows = f"{result['history_bins'] + 1}-bin windows" if windowed else "current-bin windows (Kalman only)"
    lines = [f"{result['units']} units x {result['bins']} bins of {result['bin_s'] * 1000:g} ms, "
             f"{windows}, {result['n_train']} training / {result['n_test']} test rows"
             + (f"; LSTM-{result['hidden_size']}, {result['epochs']} epochs, batch {result['batch_size']}"
                if "lstm" in result.get("pairs_run", PAIRS) else ""),
             f"{'pair':8}{'reference':>18}{'fit s':>9}{'ref fit s':>11}{'R2':>8}{'ref R2':>8}{'lat us':>9}"
             f"{'ref lat us':>12}{'fit ratio':>11}{'R2 ratio':>10}{'lat ratio':>11}"]
    for name, r in result["pairs"].items():
        fit, r2, lat, ratio = r["fit_s"], r["r2"], r["latency_s"], r["ratio"]
        lines.append(f"{name:8}{reference[name]:>18}{fit['neuromesh']:9.2f}{fit['reference']:11.2f}"
                     f"{r2['neuromesh']:8.3f}{r2['reference']:8.3f}{lat['neuromesh'] * 1e6:9.0f}"
                     f"{lat['reference'] * 1e6:12.0f}{ratio['fit_time']:11.2f}{ratio['r2']:10.3f}"
                     f"{ratio['latency']:11.2f}")
    lines.append("ratio = NeuroMesh / reference (times: below 1 is faster; R2: above 1 is better)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=200, help="simulated units")
    parser.add_argument("--bins", type=int, default=50_000, help="50 ms bins in the session")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of both LSTMs")
    parser.add_argument("--history", type=int, default=9, help="history bins of the windows (n_lags - 1)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units of both LSTMs")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch rows of both LSTMs")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size of both LSTMs")
    parser.add_argument("--repeats", type=int, default=3, help="fits of the linear decoders, and latency runs")
    parser.add_argument("--net-repeats", type=int, default=1, help="fits of the LSTMs")
    parser.add_argument("--pairs", default="all",
                        help=f"comma-separated pairs to run, of {', '.join(PAIRS)} (default all)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if min(args.units, args.epochs, args.hidden, args.batch_size, args.repeats, args.net_repeats) < 1:
        parser.error("--units, --epochs, --hidden, --batch-size, --repeats and --net-repeats must be at least 1")
    if not args.learning_rate > 0:
        parser.error("--learning-rate must be > 0")
    if args.history < 0:
        parser.error("--history must be at least 0")
    # the training rows must outnumber the flattened window for RidgeCV and leave room for the test block
    if args.bins < 5 * (args.history + 2) + 100:
        parser.error(f"--bins must be at least {5 * (args.history + 2) + 100} for --history {args.history}")

    pairs = PAIRS if args.pairs.strip() == "all" else tuple(p.strip() for p in args.pairs.split(",") if p.strip())
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown or not pairs:
        parser.error(f"--pairs must be 'all' or a comma-separated list of {', '.join(PAIRS)}, got {args.pairs!r}")
    if "kalman" in pairs and KalmanDecoder is None:
        parser.error("--pairs kalman needs services/decoding/core/kalman.py's KalmanDecoder")
    pairs = tuple(p for p in PAIRS if p in pairs)

    result = run(args.units, args.bins, args.epochs, args.history, args.hidden, args.batch_size, args.learning_rate,
                 args.repeats, args.net_repeats, pairs)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
