"""Neural-network decoders in torch: a multilayer perceptron and LSTM / GRU networks.

All of them follow the :class:`~services.decoding.core.base.Decoder` contract: ``fit(X, y, *,
report=None)`` on a window tensor ``X`` of shape ``(n_samples, n_lags, n_features)``, ``predict``,
``score``, and ``get_model_state`` / ``from_model_state`` that save the network as named numpy
arrays (no pickle). Registered names:

* ``"mlp"``: :class:`MLPDecoder`, the flattened window through fully connected ReLU layers;
  regression.
* ``"mlp_classifier"``: :class:`MLPClassifierDecoder`, the same network with a softmax output
  and cross-entropy loss for discrete targets (``predict_proba``, ``classes_``). A separate
  class rather than a ``task`` parameter, because the contract fixes ``task`` per class (the
  service and ``score`` read it from the class) and a classifier has other fitted attributes.
* ``"lstm"``: :class:`RecurrentDecoder`, which reads the window as a sequence of ``n_lags``
  steps of ``n_features`` and decodes from the hidden state of the last step; ``cell="lstm"``
  (default) or ``cell="gru"``.
* ``"gru"``: :class:`GRUDecoder`, the same class with the cell fixed to GRU.

How they are trained, and why
-----------------------------
* **Standardisation.** Every feature is centred and scaled by its mean and standard deviation
  over the training rows (pooled over lags: a lag is the same unit, seen earlier), and
  regression targets are z-scored likewise, so one learning rate suits spike counts of any
  rate and targets in any unit, and the MSE loss weighs the outputs equally. The statistics are
  part of the saved state; a constant feature gets scale 1.
* **Adam** with ``learning_rate`` and (L2) ``weight_decay``, minibatches of ``batch_size`` rows
  drawn in a fresh random order each epoch, for ``epochs`` passes over the training rows.
* **Early stopping** (``validation_fraction > 0``): the *last contiguous* ``validation_fraction``
  of the training rows is held out, after dropping ``n_lags - 1`` rows before it so that no
  training window overlaps a validation window. A random subset would be useless here:
  neighbouring bins are near copies of each other, so it would always look as good as the
  training set. After each epoch the validation loss is computed; training stops after
  ``patience`` epochs without improvement, and the weights of the best epoch are kept. The
  held-out rows are not trained on afterwards.
* **Reproducibility.** ``seed`` seeds the weight initialisation, the batch order and dropout, in
  a forked torch random state, so a fit neither depends on nor disturbs the caller's global
  random state. On the CPU the same seed (and thread count) gives bit-identical predictions;
  CUDA kernels are not all deterministic.
* **Progress and cancellation.** ``report(fraction_done, message)`` is called after every epoch
  with the training (and validation) loss, on the standardised scale. An exception it raises
  propagates out of ``fit`` at once and leaves the decoder as it was before the call.
* **Threads.** The library never calls ``torch.set_num_threads``; the caller (the service) caps
  threads.

Prediction runs in eval mode (no dropout) under ``torch.inference_mode()``, in batches.
:meth:`~_TorchDecoder.predict_one` is the fast path for online (closed-loop BCI) use: one window
in, one prediction out, through a preallocated input buffer, without re-creating tensors or
re-checking more than the window itself.

Example
-------
>>> from services.decoding.core.base import load_model, save_model
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(400, 3, 2)).astype(np.float32)
>>> y = X[:, -1] @ [[1.0], [-1.0]] + 0.5 * X[:, 0, :1]
>>> model = MLPDecoder(hidden_sizes=(16,), epochs=20, batch_size=16, dropout=0.0).fit(X, y)
>>> model.score(X, y) > 0.9
True
>>> again = load_model(save_model(model))
>>> bool(np.array_equal(again.predict(X), model.predict(X)))
True
>>> again.predict_one(X[0]).shape
(1,)
"""

from __future__ import annotations

import math
import threading
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from services.common.estimators import BestEpoch, check_count, check_hidden_sizes, check_real, resolve_device

from .base import Decoder, Report, check_targets, check_windows, register_decoder

__all__ = ["MLPDecoder", "MLPClassifierDecoder", "RecurrentDecoder", "GRUDecoder"]

#: rows per forward pass in ``predict`` and in the validation loss (bounds the memory of one pass)
_PREDICT_BATCH = 4096
#: rows standardised per numpy pass (bounds the float64 temporaries of the statistics)
_CHUNK = 4096
_MODULE_PREFIX = "module."


# ------------------------------------------------------------------------------------------------
# the networks


class _RecurrentNet(nn.Module):
    """LSTM / GRU over the lags, dropout, and a linear readout of the last step's hidden state."""

    def __init__(self, cell: str, n_features: int, hidden_size: int, num_layers: int, dropout: float,
                 n_outputs: int) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        # torch applies its dropout only between stacked layers (and warns with one layer)
        self.rnn = rnn(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.readout(self.dropout(out[:, -1]))


def _mlp(n_inputs: int, hidden_sizes: tuple[int, ...], dropout: float, n_outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten(start_dim=1)]
    width = n_inputs
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class _SingleSample:
    """The fast path of one prediction: a preallocated (1, n_lags, n_features) float32 input whose
    numpy view is filled in place with the standardised window, so a call allocates nothing but
    the network's own activations. A lock guards the shared buffer (one stream per model is the
    usual case, so it is uncontended)."""

    def __init__(self, module: nn.Module, mean: np.ndarray, scale: np.ndarray, device: torch.device,
                 n_lags: int) -> None:
        self.module = module
        self.device = device
        self.tensor = torch.zeros((1, n_lags, mean.size), dtype=torch.float32)
        self.array = self.tensor.numpy()[0]      # shares memory with the tensor
        self.mean = mean.astype(np.float32)
        self.inverse_scale = (1.0 / scale).astype(np.float32)
        self.lock = threading.Lock()

    def __call__(self, window: np.ndarray) -> np.ndarray:
        with self.lock:
            np.subtract(window, self.mean, out=self.array, casting="unsafe")
            np.multiply(self.array, self.inverse_scale, out=self.array)
            with torch.inference_mode():
                x = self.tensor if self.device.type == "cpu" else self.tensor.to(self.device)
                return self.module(x)[0].to(device="cpu", dtype=torch.float64).numpy()


# ------------------------------------------------------------------------------------------------
# the shared estimator


class _TorchDecoder(Decoder):
    """Training, prediction and saving shared by the torch decoders (see the module docstring).

    Subclasses define ``__init__`` (the parameters, for ``get_params``), ``_check_architecture``
    and ``_build``; classifiers set ``task = "classification"``.
    """

    #: extra fitted arrays a subclass saves (besides the network and the scalers)
    _extra_state: ClassVar[tuple[str, ...]] = ()

    # ---- subclass hooks

    def _check_architecture(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _build(self, n_lags: int, n_features: int, n_outputs: int, arch: dict[str, Any]) -> nn.Module:
        raise NotImplementedError  # pragma: no cover - abstract

    # ---- checks

    def _check_training_params(self) -> dict[str, Any]:
        return {
            "epochs": check_count(self.epochs, "epochs", 1),
            "batch_size": check_count(self.batch_size, "batch_size", 1),
            "learning_rate": check_real(self.learning_rate, "learning_rate", low=0.0, low_open=True),
            "weight_decay": check_real(self.weight_decay, "weight_decay", low=0.0),
            "validation_fraction": check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0),
            "patience": check_count(self.patience, "patience", 1),
            "seed": check_count(self.seed, "seed", 0),
            "device": resolve_device(self.device, fitting=True),
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} is not fitted")

    def _check_predict_windows(self, X) -> np.ndarray:
        self._check_fitted()
        X = check_windows(X)
        if X.shape[1:] != (self.n_lags_, self.n_features_):
            raise ValueError(f"X has windows of shape {X.shape[1:]}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        return X

    # ---- fitting

    def fit(self, X, y, *, report: Report | None = None) -> "_TorchDecoder":
        """Train the network on windows ``X`` and targets ``y``; see the module docstring.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_lags, n_features)
        y : array_like, shape (n_samples[, n_outputs]) (regression) or (n_samples,) integer labels
            (classification)
        report : callable, optional
            ``report(fraction_done, message)`` after every epoch; an exception it raises stops
            the fit and propagates.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad shapes, NaN or infinite values, mismatched lengths, a parameter out of range,
            too few rows for the validation split, fewer than two classes.
        """
        arch = self._check_architecture()
        train = self._check_training_params()
        X = check_windows(X)
        y = check_targets(y, task=self.task, n_samples=X.shape[0])
        n, n_lags, n_features = X.shape

        # the validation block is the end of the recording, with a gap of n_lags - 1 rows
        n_val = math.ceil(train["validation_fraction"] * n) if train["validation_fraction"] > 0 else 0
        n_fit = n - n_val - (n_lags - 1 if n_val else 0)
        if n_val and n_fit < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n} samples with a gap of "
                             f"{n_lags - 1} rows leaves no training rows")

        mean, scale = _feature_statistics(X[:n_fit])
        if self.task == "classification":
            classes, codes = np.unique(y, return_inverse=True)
            if classes.size < 2:
                raise ValueError(f"classification needs at least 2 classes in y, got {classes.tolist()}")
            targets = torch.from_numpy(codes.astype(np.int64))
            n_outputs, y_stats = int(classes.size), {"classes_": classes}
        else:
            y_mean = y[:n_fit].mean(axis=0)
            y_scale = y[:n_fit].std(axis=0)
            y_scale[y_scale == 0] = 1.0
            targets = torch.from_numpy(((y - y_mean) / y_scale).astype(np.float32))
            n_outputs, y_stats = y.shape[1], {"y_mean_": y_mean, "y_scale_": y_scale}

        device = train["device"]
        inputs = torch.from_numpy(_standardise(X, mean, scale)).to(device)
        targets = targets.to(device)
        fork_devices = [device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(train["seed"])
            module = self._build(n_lags, n_features, n_outputs, arch).to(device)
            history = _train(module, inputs, targets, n_fit=n_fit, n_val=n_val, task=self.task,
                             report=report, **{k: train[k] for k in ("epochs", "batch_size", "learning_rate",
                                                                     "weight_decay", "patience", "seed")})
        module.eval()
        # only now, after training ran to its end, does the decoder change
        self.module_ = module
        self.mean_, self.scale_ = mean, scale
        for name, value in y_stats.items():
            setattr(self, name, value)
        self.n_lags_, self.n_features_, self.n_outputs_ = n_lags, n_features, n_outputs
        self.train_loss_, self.validation_loss_, self.best_epoch_ = history
        self.device_ = device
        self._fast = None
        return self

    # ---- prediction

    def _forward(self, X: np.ndarray) -> np.ndarray:
        """Raw network outputs (standardised targets or logits), float64, in batches."""
        module = self.module_
        if module.training:
            module.eval()
        out = np.empty((X.shape[0], self.n_outputs_), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, X.shape[0], _PREDICT_BATCH):
                block = _standardise(X[start:start + _PREDICT_BATCH], self.mean_, self.scale_)
                z = module(torch.from_numpy(block).to(self.device_))
                out[start:start + block.shape[0]] = z.to(device="cpu", dtype=torch.float64).numpy()
        return out

    def _forward_one(self, window) -> np.ndarray:
        """Raw network output of one window (n_lags, n_features), through the preallocated buffer."""
        self._check_fitted()
        window = np.asarray(window)
        if window.shape != (self.n_lags_, self.n_features_):
            raise ValueError(f"the window has shape {window.shape}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        if not np.isfinite(window).all():
            raise ValueError("the window holds NaN or infinite values")
        fast = getattr(self, "_fast", None)
        if fast is None or fast.module is not self.module_:
            if self.module_.training:
                self.module_.eval()
            fast = _SingleSample(self.module_, self.mean_, self.scale_, self.device_, self.n_lags_)
            self._fast = fast
        return fast(window)

    # ---- saving

    def get_model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters; the network's ``state_dict`` as ``"module.<name>"`` arrays, the
        scalers, the fitted shapes and the loss history."""
        self._check_fitted()
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params(deep=False).items()}
        arrays = {_MODULE_PREFIX + k: v.detach().to("cpu").numpy().copy()
                  for k, v in self.module_.state_dict().items()}
        arrays.update(mean_=self.mean_, scale_=self.scale_,
                      shape_=np.array([self.n_lags_, self.n_features_, self.n_outputs_], dtype=np.int64),
                      train_loss_=self.train_loss_, validation_loss_=self.validation_loss_,
                      best_epoch_=np.array(self.best_epoch_, dtype=np.int64))
        for name in self._extra_state:
            arrays[name] = np.asarray(getattr(self, name))
        return params, arrays

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "_TorchDecoder":
        """Rebuild the network from :meth:`get_model_state`'s output, on the decoder's device (a
        model saved with ``device="cuda"`` loads on the CPU where there is no CUDA)."""
        model = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()})
        needed = ("mean_", "scale_", "shape_", "train_loss_", "validation_loss_", "best_epoch_") + cls._extra_state
        missing = [name for name in needed if name not in arrays]
        if missing:
            raise ValueError(f"the saved {cls.__name__} lacks its array {missing[0]!r}")
        n_lags, n_features, n_outputs = (int(v) for v in arrays["shape_"])
        device = resolve_device(model.device, fitting=False)
        module = model._build(n_lags, n_features, n_outputs, model._check_architecture())
        state = {k[len(_MODULE_PREFIX):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                 if k.startswith(_MODULE_PREFIX)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # missing, unexpected or misshapen weights
            raise ValueError(f"the saved {cls.__name__} does not match its parameters: {exc}") from None
        model.module_ = module.to(device).eval()
        model.mean_, model.scale_ = np.asarray(arrays["mean_"]), np.asarray(arrays["scale_"])
        model.n_lags_, model.n_features_, model.n_outputs_ = n_lags, n_features, n_outputs
        model.train_loss_ = np.asarray(arrays["train_loss_"])
        model.validation_loss_ = np.asarray(arrays["validation_loss_"])
        model.best_epoch_ = int(arrays["best_epoch_"])
        for name in cls._extra_state:
            setattr(model, name, np.asarray(arrays[name]))
        model.device_ = device
        model._fast = None
        return model

    def __getstate__(self):
        # the fast-path buffer holds a lock, which cannot be copied or pickled; it is rebuilt lazily
        state = super().__getstate__()
        state.pop("_fast", None)
        return state


class _Regressor(_TorchDecoder):
    task = "regression"
    _extra_state = ("y_mean_", "y_scale_")

    def predict(self, X) -> np.ndarray:
        """Decoded targets, shape (n_samples, n_outputs)."""
        X = self._check_predict_windows(X)
        return self._forward(X) * self.y_scale_ + self.y_mean_

    def predict_one(self, window) -> np.ndarray:
        """Decoded targets of one window of shape (n_lags, n_features): shape (n_outputs,).

        The low-latency path for online decoding: the same numbers as ``predict(window[None])[0]``
        (up to float32 rounding of the standardisation).
        """
        return self._forward_one(window) * self.y_scale_ + self.y_mean_


def _feature_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over samples and lags, in float64, in two passes
    over chunks (so no float64 copy of a large float32 tensor is made)."""
    n, n_lags, n_features = X.shape
    count = n * n_lags
    total = np.zeros(n_features)
    for start in range(0, n, _CHUNK):
        total += X[start:start + _CHUNK].sum(axis=(0, 1), dtype=np.float64)
    mean = total / count
    squares = np.zeros(n_features)
    for start in range(0, n, _CHUNK):
        squares += ((X[start:start + _CHUNK] - mean) ** 2).sum(axis=(0, 1))
    scale = np.sqrt(squares / count)
    # a constant feature carries no information; scale 1 keeps it at 0 instead of dividing by 0
    scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean, scale


def _standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, X.shape[0], _CHUNK):
        out[start:start + _CHUNK] = (X[start:start + _CHUNK] - mean) / scale
    return out


def _train(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *, n_fit: int, n_val: int, task: str,
           report: Report | None, epochs: int, batch_size: int, learning_rate: float, weight_decay: float,
           patience: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Adam over minibatches of the first ``n_fit`` rows; early stopping on the last ``n_val``.

    Returns the training loss per epoch, the validation loss per epoch (empty without
    validation) and the 0-based epoch whose weights the module holds at the end.
    """
    loss_fn = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    # batch order from its own generator on the CPU: the same on every device
    order_rng = torch.Generator().manual_seed(seed)
    val_x, val_y = inputs[inputs.shape[0] - n_val:], targets[targets.shape[0] - n_val:]
    train_losses, val_losses = [], []
    best = BestEpoch(patience)
    for epoch in range(epochs):
        module.train()
        order = torch.randperm(n_fit, generator=order_rng).to(inputs.device)
        total = torch.zeros((), dtype=torch.float64, device=inputs.device)
        for start in range(0, n_fit, batch_size):
            rows = order[start:start + batch_size]
            loss = loss_fn(module(inputs[rows]), targets[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.detach() * rows.numel()
        train_losses.append(float(total) / n_fit)
        message = f"epoch {epoch + 1} of {epochs}: training loss {train_losses[-1]:.4g}"
        stop = False
        if n_val:
            val_losses.append(_loss(module, loss_fn, val_x, val_y))
            message += f", validation loss {val_losses[-1]:.4g}"
            stop = best.update(epoch, val_losses[-1], module)
            if stop:
                message += best.stop_message()
        if report is not None:
            report(1.0 if stop else (epoch + 1) / epochs, message)
        if stop:
            break
    best_epoch = best.restore(module, last_epoch=len(train_losses) - 1)
    return np.array(train_losses), np.array(val_losses), best_epoch


def _loss(module: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    module.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, x.shape[0], _PREDICT_BATCH):
            xb, yb = x[start:start + _PREDICT_BATCH], y[start:start + _PREDICT_BATCH]
            total += float(loss_fn(module(xb), yb)) * xb.shape[0]
    return total / x.shape[0]


# ------------------------------------------------------------------------------------------------
# the public decoders

_TRAINING_DOC = """
    epochs : int, default 20
        Passes over the training rows (at most; fewer with early stopping), >= 1.
    batch_size : int, default 128
        Rows per Adam step, >= 1.
    learning_rate : float, default 1e-3
        Adam step size, > 0.
    weight_decay : float, default 0
        L2 penalty of Adam, >= 0.
    validation_fraction : float, default 0
        In [0, 1). If > 0, this fraction of the rows *at the end* is held out (after a gap of
        ``n_lags - 1`` rows) for early stopping; see the module docstring.
    patience : int, default 5
        Epochs without a better validation loss before training stops (with validation only).
    seed : int, default 0
        Seeds initialisation, batch order and dropout; the same seed gives the same model (CPU).
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and predict; "auto" is CUDA when ``torch.cuda.is_available()``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network, in eval mode.
    mean_, scale_ : ndarray, shape (n_features,)
        Feature standardisation.
    n_lags_, n_features_, n_outputs_ : int
    train_loss_, validation_loss_ : ndarray, shape (n_epochs_run,)
        Loss per epoch on the standardised scale (validation empty without validation).
    best_epoch_ : int
        0-based epoch whose weights are kept.
    device_ : torch.device
        Where the network lives.
"""


def _with_training_doc(cls):
    cls.__doc__ = cls.__doc__.replace("    {training}\n", _TRAINING_DOC.lstrip("\n"))
    return cls


class _MLPMixin:
    """The MLP's parameters (shared by the regressor and the classifier) and network."""

    def __init__(self, *, hidden_sizes=(128,), dropout: float = 0.1, epochs: int = 20, batch_size: int = 128,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, validation_fraction: float = 0.0,
                 patience: int = 5, seed: int = 0, device: str = "auto") -> None:
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.device = device

    def _check_architecture(self) -> dict[str, Any]:
        return {"hidden_sizes": check_hidden_sizes(self.hidden_sizes),
                "dropout": check_real(self.dropout, "dropout", low=0.0, high=1.0)}

    def _build(self, n_lags: int, n_features: int, n_outputs: int, arch: dict[str, Any]) -> nn.Module:
        return _mlp(n_lags * n_features, arch["hidden_sizes"], arch["dropout"], n_outputs)


@register_decoder("mlp")
@_with_training_doc
class MLPDecoder(_MLPMixin, _Regressor):
    """Multilayer perceptron on the flattened, standardised window; MSE on standardised targets.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (128,)
        Widths of the hidden layers, each Linear -> ReLU -> Dropout.
    dropout : float, default 0.1
        Dropout probability after every hidden layer while training, in [0, 1).
    {training}
    y_mean_, y_scale_ : ndarray, shape (n_outputs,)
        Target standardisation.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(300, 2, 2))
    >>> y = X.sum(axis=(1, 2))
    >>> model = MLPDecoder(hidden_sizes=(8,), epochs=20, batch_size=16, dropout=0.0).fit(X, y)
    >>> model.predict(X).shape, model.score(X, y) > 0.9
    ((300, 1), True)
    """


@register_decoder("mlp_classifier")
@_with_training_doc
class MLPClassifierDecoder(_MLPMixin, _TorchDecoder):
    """Multilayer perceptron classifier: softmax output, cross-entropy loss, integer labels.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (128,)
        Widths of the hidden layers, each Linear -> ReLU -> Dropout.
    dropout : float, default 0.1
        Dropout probability after every hidden layer while training, in [0, 1).
    {training}
    classes_ : ndarray of int64, shape (n_classes,)
        The labels seen in ``fit``, sorted; column ``k`` of :meth:`predict_proba` is
        ``classes_[k]``.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> X = rng.normal(size=(300, 1, 2))
    >>> y = np.where(X[:, 0, 0] > 0, 7, 3)
    >>> clf = MLPClassifierDecoder(hidden_sizes=(8,), epochs=10, batch_size=16, learning_rate=1e-2).fit(X, y)
    >>> clf.classes_.tolist(), clf.score(X, y) > 0.9
    ([3, 7], True)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    task = "classification"
    _extra_state = ("classes_",)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        logits = self._forward(self._check_predict_windows(X))
        return _softmax(logits)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample, shape (n_samples,)."""
        return self.classes_[np.argmax(self._forward(self._check_predict_windows(X)), axis=1)]

    def predict_one(self, window):
        """The most probable class of one window of shape (n_lags, n_features) (the fast path)."""
        return self.classes_[int(np.argmax(self._forward_one(window)))]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))   # shifted: no overflow
    return z / z.sum(axis=1, keepdims=True)


@register_decoder("lstm")
@_with_training_doc
class RecurrentDecoder(_Regressor):
    """LSTM or GRU over the window's lags, read out linearly from the last step; MSE on
    standardised targets.

    The window is a sequence of ``n_lags`` steps (oldest first) of ``n_features`` inputs; the
    prediction for sample ``t`` comes from the hidden state after the step of bin ``t`` (or
    ``t + future_bins``), through dropout and a linear layer. Each sample's sequence starts from
    a zero state, so samples are independent and can be shuffled and batched.

    Parameters
    ----------
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent cell (registered as "lstm" whichever it is; :class:`GRUDecoder` is the
        "gru" name).
    hidden_size : int, default 128
        Width of the hidden state, >= 1.
    num_layers : int, default 1
        Stacked recurrent layers, >= 1.
    dropout : float, default 0
        Dropout on the last hidden state (and between stacked layers) while training, in [0, 1).
    {training}
    y_mean_, y_scale_ : ndarray, shape (n_outputs,)
        Target standardisation.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> X = rng.normal(size=(300, 4, 2)).astype(np.float32)
    >>> y = X[:, :, 0].sum(axis=1)          # needs the whole sequence
    >>> model = RecurrentDecoder(hidden_size=16, epochs=20, batch_size=16).fit(X, y)
    >>> model.score(X, y) > 0.9, model.predict_one(X[0]).shape
    (True, (1,))
    """

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.0,
                 epochs: int = 20, batch_size: int = 128, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                 validation_fraction: float = 0.0, patience: int = 5, seed: int = 0, device: str = "auto") -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.device = device

    def _check_architecture(self) -> dict[str, Any]:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {self.cell!r}")
        return {"cell": self.cell, "hidden_size": check_count(self.hidden_size, "hidden_size", 1),
                "num_layers": check_count(self.num_layers, "num_layers", 1),
                "dropout": check_real(self.dropout, "dropout", low=0.0, high=1.0)}

    def _build(self, n_lags: int, n_features: int, n_outputs: int, arch: dict[str, Any]) -> nn.Module:
        return _RecurrentNet(arch["cell"], n_features, arch["hidden_size"], arch["num_layers"], arch["dropout"],
                             n_outputs)


@register_decoder("gru")
@_with_training_doc
class GRUDecoder(RecurrentDecoder):
    """:class:`RecurrentDecoder` with a GRU cell (no ``cell`` parameter), registered as "gru".

    Parameters
    ----------
    hidden_size : int, default 128
        Width of the hidden state, >= 1.
    num_layers : int, default 1
        Stacked recurrent layers, >= 1.
    dropout : float, default 0
        Dropout on the last hidden state (and between stacked layers) while training, in [0, 1).
    {training}
    y_mean_, y_scale_ : ndarray, shape (n_outputs,)
        Target standardisation.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> X = rng.normal(size=(200, 3, 2))
    >>> model = GRUDecoder(hidden_size=8, epochs=2).fit(X, X[:, -1, 0])
    >>> model.cell, isinstance(model.module_.rnn, torch.nn.GRU)
    ('gru', True)
    """

    def __init__(self, *, hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.0, epochs: int = 20,
                 batch_size: int = 128, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                 validation_fraction: float = 0.0, patience: int = 5, seed: int = 0, device: str = "auto") -> None:
        super().__init__(cell="gru", hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, epochs=epochs,
                         batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                         validation_fraction=validation_fraction, patience=patience, seed=seed, device=device)

    # a read-only property rather than a parameter, so get_params/clone/saving never carry a
    # cell that could contradict the class
    @property
    def cell(self) -> str:
        return "gru"

    @cell.setter
    def cell(self, value: str) -> None:
        if value != "gru":
            raise ValueError(f"GRUDecoder's cell is 'gru'; use RecurrentDecoder(cell={value!r})")
