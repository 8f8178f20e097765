"""Variational autoencoder of population activity, one time bin at a time.

:class:`VariationalAutoencoder` (registered as ``"vae"``) is the classic VAE of Kingma & Welling
(2014, "Auto-Encoding Variational Bayes"), applied to every time bin's population vector
``x`` (``n_neurons`` values) independently; it knows nothing of time, unlike the sequential
dynamics model.

The model
---------
* **Prior** ``p(z) = N(0, I)`` over ``n_components`` latents.
* **Encoder** (the recognition model): an MLP from the standardised activity to the mean and
  log-variance of a diagonal Gaussian posterior ``q(z | x) = N(mu(x), diag(exp(logvar(x))))``.
* **Decoder**: an MLP from ``z`` through the hidden layers in reverse order to one output per
  neuron:

  - ``likelihood="poisson"`` (default; spike counts): the outputs are log firing rates (counts
    per bin), ``x_i ~ Poisson(exp(f_i(z)))``. The output bias starts at the log of each neuron's
    mean count, so training starts from the right rates instead of spending epochs finding them.
  - ``likelihood="gaussian"`` (continuous activity: calcium dF/F, smoothed rates):
    ``x_i ~ N(f_i(z), sigma_i^2)`` with one learned variance per neuron (the observation noise of
    factor analysis), in the standardised units of each neuron. The variance is floored at
    ``1e-4`` of the neuron's variance: a neuron the decoder reproduced exactly would otherwise
    drive its variance, and the ELBO, to infinity.

* **Objective**: the evidence lower bound ``ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))``,
  with the expectation estimated by one reparameterised draw ``z = mu + exp(logvar / 2) * eps``
  per sample and step, and the KL term in closed form. Optional **KL warm-up**
  (``kl_warmup_epochs``; Bowman et al. 2016, Sønderby et al. 2016): the KL term is weighted by a
  factor rising linearly from 0 to 1 over the first ``kl_warmup_epochs`` epochs, which keeps
  the posterior from collapsing onto the prior before the decoder has learnt to use the latents.
  The recorded ELBO (``train_elbo_``, ``validation_elbo_``, :meth:`elbo`) is always the true
  bound, with weight 1, in nats per sample and in the units of the data (the Poisson term
  includes ``-log x!``; the Gaussian term the Jacobian of the standardisation), so it is
  comparable between models fitted to the same data.

Training
--------
* **Encoder input.** ``log1p`` of the counts for the Poisson likelihood (it tames the skew of
  counts, so high-rate neurons do not dominate the first layer), the raw values for the
  Gaussian one, then centred and scaled per neuron by the training mean and standard deviation
  (scale 1 for a constant neuron). These statistics are part of the saved state.
* **Adam** with ``learning_rate``, minibatches of ``batch_size`` rows in a fresh random order
  each epoch, for ``epochs`` passes.
* **Early stopping** (``validation_fraction > 0``): the *last contiguous* fraction of the rows
  is held out (neighbouring time bins are near copies, so a random subset would measure
  nothing), its ELBO is computed after each epoch with the same noise draws every epoch (so
  epochs are compared fairly), and training stops after ``patience`` epochs without a better
  validation ELBO (never during KL warm-up, while the objective is still changing); the weights
  of the best epoch are kept.
* **Reproducibility.** ``seed`` seeds the weight initialisation (in a forked torch random state,
  so the caller's is neither used nor disturbed), the batch order and the reparameterisation
  noise (both from CPU generators, so they are the same on every device). On the CPU the same
  seed and thread count give bit-identical models; CUDA kernels are not all deterministic.
* **Progress and cancellation.** ``report(fraction_done, message)`` is called after every epoch
  with the ELBO; an exception it raises propagates out of ``fit`` at once and leaves the model
  as it was before the call.

After fitting, :meth:`~VariationalAutoencoder.transform` gives the posterior means,
:meth:`~VariationalAutoencoder.reconstruct` the decoded mean activity at the posterior mean
(firing rates for Poisson), and :meth:`~VariationalAutoencoder.elbo` the average ELBO per sample.

Example
-------
>>> from services.reduction.core.base import load_model, save_model
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(300, 1))
>>> counts = rng.poisson(np.exp(0.5 + z @ rng.normal(size=(1, 6))))
>>> vae = VariationalAutoencoder(n_components=1, hidden_sizes=(16,), epochs=3, batch_size=32).fit(counts)
>>> vae.transform(counts).shape, vae.reconstruct(counts).shape
((300, 1), (300, 6))
>>> again = load_model(save_model(vae))
>>> bool(np.array_equal(again.transform(counts), vae.transform(counts)))
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from services.common.estimators import BestEpoch, check_count, check_hidden_sizes, check_real, resolve_device

from .base import Reducer, Report, check_activity, register_reducer

__all__ = ["VariationalAutoencoder"]

_LIKELIHOODS = ("poisson", "gaussian")
#: rows per forward pass outside training (bounds the memory of one pass)
_BATCH = 4096
_MODULE_PREFIX = "module."
#: floor of the Gaussian observation variance, in units of each neuron's variance
_MIN_NOISE_VAR = 1e-4
#: bounds on log-rates and log-variances before exponentiation: far outside anything a fitted
#: model produces, they only keep a bad step from overflowing to inf and poisoning the weights
_MAX_LOG = 30.0


# ------------------------------------------------------------------------------------------------
# the network


def _mlp(n_inputs: int, hidden_sizes: tuple[int, ...], n_outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class _VAENet(nn.Module):
    """Encoder to (mean, log-variance), decoder back to one output per neuron, and for the
    Gaussian likelihood the per-neuron log observation variance."""

    def __init__(self, n_features: int, hidden_sizes: tuple[int, ...], n_components: int, likelihood: str) -> None:
        super().__init__()
        self.n_components = n_components
        self.likelihood = likelihood
        self.encoder = _mlp(n_features, hidden_sizes, 2 * n_components)
        self.decoder = _mlp(n_components, tuple(reversed(hidden_sizes)), n_features)
        if likelihood == "gaussian":
            self.log_noise_var = nn.Parameter(torch.zeros(n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(x)
        mean, log_var = out[:, :self.n_components], out[:, self.n_components:]
        return mean, log_var.clamp(-_MAX_LOG, _MAX_LOG)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Log-rates (Poisson) or standardised means (Gaussian)."""
        out = self.decoder(z)
        return out.clamp(max=_MAX_LOG) if self.likelihood == "poisson" else out

    def terms(self, x_in: torch.Tensor, target: torch.Tensor, noise: torch.Tensor,
              log_factorial: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample reconstruction log-likelihood (one reparameterised draw) and KL divergence."""
        mean, log_var = self.encode(x_in)
        z = mean + torch.exp(0.5 * log_var) * noise
        out = self.decode(z)
        if self.likelihood == "poisson":
            log_lik = (target * out - torch.exp(out)).sum(dim=1)
            if log_factorial is not None:
                log_lik = log_lik - log_factorial
        else:
            log_noise = self.log_noise_var.clamp(min=math.log(_MIN_NOISE_VAR))
            log_lik = -0.5 * ((target - out) ** 2 * torch.exp(-log_noise) + log_noise
                              + math.log(2 * math.pi)).sum(dim=1)
        # KL(N(mean, diag var) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B)
        kl = 0.5 * (mean ** 2 + torch.exp(log_var) - 1.0 - log_var).sum(dim=1)
        return log_lik, kl


# ------------------------------------------------------------------------------------------------
# the estimator


@register_reducer("vae")
class VariationalAutoencoder(Reducer):
    """Variational autoencoder of time bins (Kingma & Welling 2014); see the module docstring.

    Parameters
    ----------
    n_components : int, default 2
        Latent dimensions, >= 1.
    hidden_sizes : sequence of int, default (128,)
        Widths of the encoder's hidden ReLU layers; the decoder has them in reverse order.
    likelihood : {"poisson", "gaussian"}, default "poisson"
        Observation model: Poisson counts with log-rate outputs (the activity must be >= 0), or
        Gaussian with a learned variance per neuron (any real activity).
    epochs : int, default 50
        Passes over the training rows (at most; fewer with early stopping), >= 1.
    batch_size : int, default 128
        Rows per Adam step, >= 1.
    learning_rate : float, default 1e-3
        Adam step size, > 0.
    kl_warmup_epochs : int, default 0
        Epochs over which the weight of the KL term rises linearly from 0 to 1; 0 for none.
    validation_fraction : float, default 0
        In [0, 1). If > 0, this fraction of the rows at the end is held out for early stopping.
    patience : int, default 10
        Epochs without a better validation ELBO before training stops (with validation only).
    seed : int, default 0
        Seeds initialisation, batch order and sampling noise; the same seed gives the same
        model on the CPU.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and evaluate; "auto" is CUDA when ``torch.cuda.is_available()``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained encoder and decoder, in eval mode.
    input_mean_, input_scale_ : ndarray, shape (n_neurons,)
        Standardisation of the encoder input (of ``log1p`` of the counts for Poisson); for the
        Gaussian likelihood also the units of the decoder's output.
    n_features_ : int
        Neurons seen in ``fit``.
    train_elbo_, validation_elbo_ : ndarray, shape (n_epochs_run,)
        Average ELBO per sample in each epoch (nats; the training value is averaged over the
        epoch's minibatches as the weights changed; validation empty without validation).
    best_epoch_ : int
        0-based epoch whose weights are kept.
    device_ : torch.device

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(200, 1)) @ rng.normal(size=(1, 5)) + 0.1 * rng.normal(size=(200, 5))
    >>> vae = VariationalAutoencoder(n_components=1, hidden_sizes=(16,), likelihood="gaussian",
    ...                              epochs=20, batch_size=32, learning_rate=1e-2).fit(X)
    >>> bool(vae.train_elbo_[-1] > vae.train_elbo_[0]), vae.transform(X).shape
    (True, (200, 1))
    """

    def __init__(self, *, n_components: int = 2, hidden_sizes=(128,), likelihood: str = "poisson",
                 epochs: int = 50, batch_size: int = 128, learning_rate: float = 1e-3, kl_warmup_epochs: int = 0,
                 validation_fraction: float = 0.0, patience: int = 10, seed: int = 0,
                 device: str = "auto") -> None:
        self.n_components = n_components
        self.hidden_sizes = hidden_sizes
        self.likelihood = likelihood
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.kl_warmup_epochs = kl_warmup_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.device = device

    # ---- checks

    def _check_architecture(self) -> dict[str, Any]:
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {self.likelihood!r}")
        return {"n_components": check_count(self.n_components, "n_components", 1),
                "hidden_sizes": check_hidden_sizes(self.hidden_sizes),
                "likelihood": self.likelihood}

    def _check_training_params(self) -> dict[str, Any]:
        return {"epochs": check_count(self.epochs, "epochs", 1),
                "batch_size": check_count(self.batch_size, "batch_size", 1),
                "learning_rate": check_real(self.learning_rate, "learning_rate", low=0.0, low_open=True),
                "kl_warmup_epochs": check_count(self.kl_warmup_epochs, "kl_warmup_epochs", 0),
                "validation_fraction": check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0),
                "patience": check_count(self.patience, "patience", 1),
                "seed": check_count(self.seed, "seed", 0),
                "device": resolve_device(self.device, fitting=True)}

    def _check_data(self, X, likelihood: str) -> np.ndarray:
        X = check_activity(X)
        if likelihood == "poisson" and (X < 0).any():
            first = tuple(int(i) for i in np.argwhere(X < 0)[0])
            raise ValueError(f"the Poisson likelihood needs non-negative counts, but the activity holds "
                             f"{X[first]:g} at index {first} (use likelihood='gaussian' for signed data)")
        return X

    def _check_fitted_data(self, X) -> np.ndarray:
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} is not fitted")
        X = self._check_data(X, self.likelihood)
        if X.shape[1] != self.n_features_:
            raise ValueError(f"activity has {X.shape[1]} neurons (shape {X.shape}), the model was fitted on "
                             f"{self.n_features_}")
        return X

    # ---- data preparation

    def _encoder_input(self, X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        values = np.log1p(X) if self.likelihood == "poisson" else X
        return ((values - mean) / scale).astype(np.float32)

    def _tensors(self, X: np.ndarray, mean: np.ndarray, scale: np.ndarray, device: torch.device):
        """Encoder input, decoder target and the per-sample ``sum log x!`` (Poisson) as tensors."""
        x_in = torch.from_numpy(self._encoder_input(X, mean, scale)).to(device)
        if self.likelihood == "poisson":
            target = torch.from_numpy(X.astype(np.float32)).to(device)
            # -log x! does not depend on the weights: computed once, in float64, for the true ELBO
            log_factorial = torch.lgamma(torch.from_numpy(X.astype(np.float64)) + 1.0).sum(dim=1)
            return x_in, target, log_factorial.to(device=device, dtype=torch.float32)
        return x_in, x_in, None       # the Gaussian decoder predicts the standardised activity

    def _log_jacobian(self, scale: np.ndarray) -> float:
        """log p(x) = log p(standardised x) - sum log scale: the Gaussian ELBO in data units."""
        return float(np.log(scale).sum()) if self.likelihood == "gaussian" else 0.0

    # ---- fitting

    def fit(self, X, *, report: Report | None = None) -> "VariationalAutoencoder":
        """Train the VAE on activity ``X`` of shape (n_samples, n_neurons).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_neurons)
            Spike counts per bin (Poisson; non-negative) or continuous activity (Gaussian).
        report : callable, optional
            ``report(fraction_done, message)`` after every epoch; an exception it raises stops
            the fit and propagates, leaving the model unchanged.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Wrong rank, NaN or infinite values, negative counts with the Poisson likelihood, a
            parameter out of range, too few rows for the validation split, divergence.
        """
        arch = self._check_architecture()
        train = self._check_training_params()
        X = self._check_data(X, arch["likelihood"])
        n, n_features = X.shape
        n_val = math.ceil(train["validation_fraction"] * n) if train["validation_fraction"] > 0 else 0
        n_fit = n - n_val
        if n_fit < 1 or (n_val and n_fit < 2):
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n} samples leaves "
                             f"{n_fit} training rows")

        values = np.log1p(X[:n_fit]) if arch["likelihood"] == "poisson" else X[:n_fit]
        mean = values.mean(axis=0, dtype=np.float64)
        scale = values.std(axis=0, dtype=np.float64)
        # a constant neuron carries no information; scale 1 keeps it at 0 instead of dividing by 0
        scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0

        device = train["device"]
        x_in, target, log_factorial = self._tensors(X, mean, scale, device)
        fork_devices = [device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(train["seed"])
            module = _VAENet(n_features, arch["hidden_sizes"], arch["n_components"], arch["likelihood"])
            if arch["likelihood"] == "poisson":
                with torch.no_grad():
                    module.decoder[-1].bias.copy_(torch.from_numpy(
                        np.log(X[:n_fit].mean(axis=0) + 1e-3).astype(np.float32)))
            module = module.to(device)
            history = _train(module, x_in, target, log_factorial, n_fit=n_fit, n_val=n_val,
                             offset=-self._log_jacobian(scale), report=report,
                             **{k: train[k] for k in ("epochs", "batch_size", "learning_rate", "kl_warmup_epochs",
                                                      "patience", "seed")})
        module.eval()
        # only now, after training ran to its end, does the model change
        self.module_ = module
        self.input_mean_, self.input_scale_ = mean, scale
        self.n_features_ = n_features
        self.train_elbo_, self.validation_elbo_, self.best_epoch_ = history
        self.device_ = device
        return self

    # ---- using the fitted model

    def _batches(self, X: np.ndarray):
        for start in range(0, X.shape[0], _BATCH):
            block = X[start:start + _BATCH]
            yield start, torch.from_numpy(self._encoder_input(block, self.input_mean_, self.input_scale_)).to(
                self.device_)

    def transform(self, X) -> np.ndarray:
        """Posterior means ``E_q[z | x]``, shape (n_samples, n_components)."""
        X = self._check_fitted_data(X)
        out = np.empty((X.shape[0], self.module_.n_components))
        with torch.inference_mode():
            for start, x_in in self._batches(X):
                mean, _ = self.module_.encode(x_in)
                out[start:start + x_in.shape[0]] = mean.to(device="cpu", dtype=torch.float64).numpy()
        return out

    def reconstruct(self, X) -> np.ndarray:
        """The decoded mean activity at the posterior mean, shaped like ``X``: firing rates
        (counts per bin) for Poisson, activity in the units of ``X`` for Gaussian."""
        X = self._check_fitted_data(X)
        out = np.empty(X.shape)
        with torch.inference_mode():
            for start, x_in in self._batches(X):
                mean, _ = self.module_.encode(x_in)
                decoded = self.module_.decode(mean).to(device="cpu", dtype=torch.float64).numpy()
                out[start:start + x_in.shape[0]] = decoded
        if self.likelihood == "poisson":
            return np.exp(out)
        return out * self.input_scale_ + self.input_mean_

    def elbo(self, X, *, n_draws: int = 1) -> float:
        """Average evidence lower bound per sample of ``X``, in nats (higher is better).

        The expectation over the posterior is estimated with ``n_draws`` reparameterised draws
        per sample, from a generator seeded with ``seed``, so repeated calls agree.
        """
        n_draws = check_count(n_draws, "n_draws", 1)
        X = self._check_fitted_data(X)
        x_in, target, log_factorial = self._tensors(X, self.input_mean_, self.input_scale_, self.device_)
        generator = torch.Generator().manual_seed(check_count(self.seed, "seed", 0))
        total = 0.0
        with torch.inference_mode():
            for _ in range(n_draws):
                total += _elbo_sum(self.module_, x_in, target, log_factorial, generator)
        return total / (n_draws * X.shape[0]) - self._log_jacobian(self.input_scale_)

    # ---- saving

    def get_model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters; the network's ``state_dict`` as ``"module.<name>"`` arrays, the
        input standardisation and the training history."""
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} is not fitted (no module_)")
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params(deep=False).items()}
        arrays = {_MODULE_PREFIX + k: v.detach().to("cpu").numpy().copy()
                  for k, v in self.module_.state_dict().items()}
        arrays.update(input_mean_=self.input_mean_, input_scale_=self.input_scale_,
                      n_features_=np.array(self.n_features_, dtype=np.int64),
                      train_elbo_=self.train_elbo_, validation_elbo_=self.validation_elbo_,
                      best_epoch_=np.array(self.best_epoch_, dtype=np.int64))
        return params, arrays

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "VariationalAutoencoder":
        """Rebuild the model from :meth:`get_model_state`'s output (on the CPU where a model saved
        with ``device="cuda"`` finds no CUDA)."""
        model = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()})
        needed = ("input_mean_", "input_scale_", "n_features_", "train_elbo_", "validation_elbo_", "best_epoch_")
        missing = [name for name in needed if name not in arrays]
        if missing:
            raise ValueError(f"the saved {cls.__name__} lacks its array {missing[0]!r}")
        arch = model._check_architecture()
        n_features = int(arrays["n_features_"])
        module = _VAENet(n_features, arch["hidden_sizes"], arch["n_components"], arch["likelihood"])
        state = {k[len(_MODULE_PREFIX):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                 if k.startswith(_MODULE_PREFIX)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # missing, unexpected or misshapen weights
            raise ValueError(f"the saved {cls.__name__} does not match its parameters: {exc}") from None
        device = resolve_device(model.device, fitting=False)
        model.module_ = module.to(device).eval()
        model.input_mean_ = np.asarray(arrays["input_mean_"], dtype=np.float64)
        model.input_scale_ = np.asarray(arrays["input_scale_"], dtype=np.float64)
        model.n_features_ = n_features
        model.train_elbo_ = np.asarray(arrays["train_elbo_"])
        model.validation_elbo_ = np.asarray(arrays["validation_elbo_"])
        model.best_epoch_ = int(arrays["best_epoch_"])
        model.device_ = device
        return model


# ------------------------------------------------------------------------------------------------
# training


def _noise(generator: torch.Generator, rows: int, n_components: int, device: torch.device) -> torch.Tensor:
    # drawn on the CPU from the model's own generator: the same draws on every device
    return torch.randn((rows, n_components), generator=generator).to(device)


def _elbo_sum(module: _VAENet, x_in: torch.Tensor, target: torch.Tensor, log_factorial: torch.Tensor | None,
              generator: torch.Generator) -> float:
    """Sum over rows of the ELBO (one draw each), in batches, without gradients."""
    module.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, x_in.shape[0], _BATCH):
            stop = start + _BATCH
            noise = _noise(generator, x_in[start:stop].shape[0], module.n_components, x_in.device)
            log_lik, kl = module.terms(x_in[start:stop], target[start:stop], noise,
                                       None if log_factorial is None else log_factorial[start:stop])
            total += float((log_lik - kl).sum(dtype=torch.float64))
    return total


def _train(module: _VAENet, x_in: torch.Tensor, target: torch.Tensor, log_factorial: torch.Tensor | None, *,
           n_fit: int, n_val: int, offset: float, report: Report | None, epochs: int, batch_size: int,
           learning_rate: float, kl_warmup_epochs: int, patience: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Adam on the negative (KL-weighted) ELBO of the first ``n_fit`` rows; early stopping on the
    true ELBO of the last ``n_val``. ``offset`` converts the ELBO to the units of the data.

    Returns the training ELBO per epoch, the validation ELBO per epoch (empty without validation)
    and the 0-based epoch whose weights the module holds at the end.
    """
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    order_rng = torch.Generator().manual_seed(seed)
    noise_rng = torch.Generator().manual_seed(seed + 1)
    steps_per_epoch = math.ceil(n_fit / batch_size)
    warmup_steps = kl_warmup_epochs * steps_per_epoch
    val = slice(x_in.shape[0] - n_val, x_in.shape[0])
    val_factorial = None if log_factorial is None else log_factorial[val]
    train_elbos, val_elbos = [], []
    best = BestEpoch(patience, higher_is_better=True)
    step = 0
    for epoch in range(epochs):
        module.train()
        order = torch.randperm(n_fit, generator=order_rng).to(x_in.device)
        total = torch.zeros((), dtype=torch.float64, device=x_in.device)
        for start in range(0, n_fit, batch_size):
            rows = order[start:start + batch_size]
            beta = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
            noise = _noise(noise_rng, rows.numel(), module.n_components, x_in.device)
            log_lik, kl = module.terms(x_in[rows], target[rows], noise,
                                       None if log_factorial is None else log_factorial[rows])
            loss = -(log_lik - beta * kl).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += (log_lik - kl).detach().sum(dtype=torch.float64)
            step += 1
        train_elbos.append(float(total) / n_fit + offset)
        if not math.isfinite(train_elbos[-1]):
            raise ValueError(f"training diverged in epoch {epoch + 1} (the ELBO is {train_elbos[-1]}); "
                             f"try a smaller learning_rate than {learning_rate:g}")
        message = f"epoch {epoch + 1} of {epochs}: training ELBO {train_elbos[-1]:.4g} nats per sample"
        stop = False
        if n_val:
            # the same noise every epoch, so the epochs are compared on equal terms
            val_rng = torch.Generator().manual_seed(seed + 2)
            val_elbos.append(_elbo_sum(module, x_in[val], target[val], val_factorial, val_rng) / n_val + offset)
            message += f", validation ELBO {val_elbos[-1]:.4g}"
            # never stop during the KL warm-up, while the objective is still changing
            stop = best.update(epoch, val_elbos[-1], module, may_stop=epoch + 1 >= kl_warmup_epochs)
            if stop:
                message += best.stop_message()
        if report is not None:
            report(1.0 if stop else (epoch + 1) / epochs, message)
        if stop:
            break
    best_epoch = best.restore(module, last_epoch=len(train_elbos) - 1)
    return np.array(train_elbos), np.array(val_elbos), best_epoch
