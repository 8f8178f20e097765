"""A sequential variational autoencoder of population dynamics: LFADS without a controller.

:class:`SequentialDynamicsModel` (registered as ``"lfads"``) follows LFADS, *latent factor
analysis via dynamical systems* (Sussillo et al. 2016, arXiv:1608.06315; Pandarinath et al.
2018, Nature Methods 15:805). It reads trials of spike counts, shape ``(n_trials, n_time,
n_neurons)``, and explains every trial as the output of one learned, autonomous nonlinear
dynamical system started from a trial-specific initial condition.

The model
---------
* **Encoder.** A bidirectional GRU (``encoder_size`` units each way) reads the trial's
  ``log1p`` counts of the *held-in* neurons (``log1p`` tames the heavy right tail of counts
  without losing zeros), with dropout on the input. Its two final states (the forward one after
  the last bin, the backward one after the first) are concatenated, passed through dropout and
  mapped linearly to the mean ``mu`` and log-variance ``log s^2`` of a diagonal Gaussian
  posterior ``q(g0 | x)`` over the generator's initial state ``g0`` (``hidden_size`` values).
* **Prior and KL.** ``p(g0) = N(0, I)``; the KL divergence ``KL(q || p) = 1/2 sum(s^2 + mu^2 - 1
  - log s^2)`` enters the loss with weight ``kl_weight``, ramped linearly from 0 over the first
  ``kl_ramp_epochs`` epochs (as LFADS does), so the encoder learns to use ``g0`` before the
  prior pulls the posterior towards it (otherwise the KL term can win early and the posterior
  collapses onto the prior).
* **Generator.** A GRU with no input, ``g_t = GRU(g_{t-1})`` for ``t = 1 .. n_time`` (bin ``t``
  is read from ``g_t``), started at a sample of ``q(g0 | x)`` while training (the
  reparameterisation ``g0 = mu + s * eps``) and at the posterior mean ``mu`` for inference. Its
  update gate is biased towards keeping the state at initialisation (LFADS' forget bias of 1),
  which eases learning slow dynamics.
* **Factors and rates.** ``f_t = W_f g_t`` (``n_factors`` values, no offset: the
  low-dimensional summary of the population, what :meth:`~SequentialDynamicsModel.transform`
  returns) and log-rates ``log r_t = W_r f_t + b``, one per neuron, ``r`` being the expected
  count per bin. ``b`` starts at the log mean count of each neuron.
* **Loss.** The negative evidence lower bound: the Poisson negative log-likelihood of the counts
  of *all* neurons (without the ``log n!`` term, which does not depend on the model) plus the
  weighted KL, both divided by ``n_time * n_neurons`` so the loss is per bin and neuron and one
  learning rate suits trials of any size. Counts may be non-negative floats (the likelihood is
  then the usual continuous extension), never negative.
* **Training.** Adam (``learning_rate``, decayed along a cosine to a tenth of it over
  ``epochs``) over minibatches of ``batch_size`` trials, in a fresh random order each epoch,
  with the gradient norm clipped at ``max_grad_norm`` (recurrent networks have rare, huge
  gradients that would otherwise undo many steps).

What is left out, and why
-------------------------
LFADS' **controller** (a second RNN that infers time-varying inputs ``u_t`` to the generator) is
not implemented: this is the "no controller" (``co_dim = 0``) variant. Inferred inputs are for
data with unobserved, trial-specific perturbations (e.g. cued corrections); with them the
generator can explain anything as input, and without them the dynamics are **autonomous**, so
the model is a dynamical system in the strict sense: the initial condition determines the whole
trial, and running the generator past the data is a genuine forecast
(:meth:`~SequentialDynamicsModel.predict_future`).

Regularisation
--------------
Input dropout and the KL bottleneck always regularise. Two more of later LFADS versions are
options, off by default:

* **Coordinated dropout** (Keshtkaran & Pandarinath 2019, NeurIPS; ``coordinated_dropout=p``):
  in every training step each held-in count is hidden from the encoder with probability ``p``
  (the rest scaled by ``1 / (1 - p)``), and the held-in neurons' likelihood is taken on the
  hidden counts only (weighted by ``1 / p``). The network then cannot lower the loss by passing
  a count from its input to its own output (the identity overfitting of autoencoders of
  spikes); it must infer each count from the others, which is what co-smoothing asks of it.
  Held-out neurons (not in the encoder's input) are always in the loss.
* **L2 on the generator** (``l2_generator=c``): ``c`` times the mean square of the generator's
  recurrent weights is added to the loss, favouring smooth, simple dynamics.

On the same Lorenz data with 800 training trials (``bench/reduction_bench.py``, part 2),
``coordinated_dropout=0.2`` and 80 epochs (about 3.5 minutes on one thread) reach 0.543
bits/spike against 0.521 for factor analysis of smoothed spikes and 0.558 for the true rates;
without it, more epochs overfit (validation co-smoothing fell from 60 to 90 epochs). The L2
penalty was not found to matter there and was not tuned.

Held-out neurons (co-smoothing)
-------------------------------
``heldin_neurons`` names the neurons the encoder sees; the generator and the readout still
predict every neuron, and the loss is taken on all neurons of the training trials. On new trials
:meth:`~SequentialDynamicsModel.predict_rates` then predicts the held-out neurons from the
held-in ones alone: the Neural Latents Benchmark's *co-smoothing* test.

Cost
----
The defaults are sized for a CPU: on the Lorenz benchmark of
:func:`~services.reduction.core.synthetic.lorenz_poisson_dataset` (300 trials of 50 bins, 100
neurons, 25 held out) 30 epochs take about 25 s on one shared CPU thread and reach 0.46
bits/spike of co-smoothing (true rates: 0.53; factor analysis of single bins: 0.41), with the
Lorenz state an affine function of the factors to R² 0.9. Time grows linearly with trials and
bins; the recurrences are sequential, so wider networks cost little more on a CPU.

Reproducibility, progress, validation
-------------------------------------
``seed`` seeds the weights, the batch order, the posterior samples and dropout in a forked torch
random state (the caller's random state is neither used nor changed); on the CPU the same seed
and thread count give bit-identical models. ``report(fraction_done, message)`` is called after
every epoch; an exception it raises stops ``fit`` at once and leaves the model as it was.
With ``validation_fraction > 0`` a random subset of the trials (trials are independent, so a
random subset is an honest test) is held out; the loss (with the full KL weight) is computed
on it after every epoch once the KL ramp is over, training stops after ``patience`` epochs without
improvement, and the best epoch's weights are kept. The library never sets torch's thread count.

Example
-------
>>> from services.reduction.core.base import load_model, save_model
>>> rng = np.random.default_rng(0)
>>> X = rng.poisson(2.0, size=(16, 10, 6))
>>> model = SequentialDynamicsModel(hidden_size=8, encoder_size=8, n_factors=2, epochs=2,
...                                 batch_size=8).fit(X)
>>> model.transform(X).shape, model.predict_rates(X).shape, model.predict_future(X, 3).shape
((16, 10, 2), (16, 10, 6), (16, 3, 6))
>>> bool(np.array_equal(load_model(save_model(model)).predict_rates(X), model.predict_rates(X)))
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from services.common.estimators import BestEpoch, check_count, check_real, resolve_device

from .base import Reducer, Report, check_activity, register_reducer

__all__ = ["SequentialDynamicsModel"]

_MODULE_PREFIX = "module."
#: trials per forward pass at inference and in the validation loss (bounds memory)
_PREDICT_BATCH = 512
#: log-rates are clipped here inside the loss: exp(20) counts per bin is already absurd, and an
#: early wild step must not overflow to inf and poison the weights with NaN
_MAX_LOG_RATE = 20.0
#: the smallest mean count that initialises a readout offset (a silent neuron gets log(1e-4))
_MIN_MEAN_COUNT = 1e-4


# ------------------------------------------------------------------------------------------------
# parameter checks


def _check_counts(X, name: str = "X") -> np.ndarray:
    """Finite, non-negative counts of shape (n_trials, n_time, n_neurons), as float32."""
    X = check_activity(X, ndim=3, name=name)
    if (X < 0).any():
        first = tuple(int(i) for i in np.argwhere(X < 0)[0])
        raise ValueError(f"{name} holds negative spike counts (first at index {first}); counts must be >= 0")
    return X.astype(np.float32, copy=False)


def _check_heldin(heldin, n_neurons: int) -> np.ndarray:
    if heldin is None:
        return np.arange(n_neurons, dtype=np.int64)
    values = np.asarray(heldin)
    # a list of Python ints becomes an integer array; floats, booleans and strings do not
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"heldin_neurons must be None or a non-empty sequence of neuron indices, got {heldin!r}")
    values = values.astype(np.int64)
    if values.min() < 0 or values.max() >= n_neurons:
        raise ValueError(f"heldin_neurons must index the {n_neurons} neurons (0 .. {n_neurons - 1}), "
                         f"got indices from {values.min()} to {values.max()}")
    if np.unique(values).size != values.size:
        raise ValueError("heldin_neurons holds repeated indices")
    return values


# ------------------------------------------------------------------------------------------------
# the network


class _LFADSNet(nn.Module):
    def __init__(self, n_inputs: int, n_neurons: int, encoder_size: int, hidden_size: int, n_factors: int,
                 dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.GRU(n_inputs, encoder_size, batch_first=True, bidirectional=True)
        self.posterior = nn.Linear(2 * encoder_size, 2 * hidden_size)
        # torch's GRU runs the time loop in C++ (about twice as fast as a Python loop of cells here),
        # but needs an input: it gets a constant zero of width 1, so its input weights receive no
        # gradient and stay inert, and the generator is autonomous
        self.generator = nn.GRU(1, hidden_size, batch_first=True)
        with torch.no_grad():
            # torch's gates are (reset, update, candidate), h' = (1 - z) n + z h: an update-gate
            # bias of +1 makes the state mostly persist at the start (LFADS' forget bias of 1),
            # which eases learning slow dynamics
            self.generator.bias_hh_l0[hidden_size:2 * hidden_size].fill_(1.0)
        self.factors = nn.Linear(hidden_size, n_factors, bias=False)
        self.readout = nn.Linear(n_factors, n_neurons)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of g0 from held-in counts (n_trials, n_time, n_inputs)."""
        _, last = self.encoder(self.dropout(torch.log1p(x)))      # last: (2, n_trials, encoder_size)
        summary = self.dropout(torch.cat([last[0], last[1]], dim=-1))
        mean, log_var = self.posterior(summary).chunk(2, dim=-1)
        return mean, log_var

    def generate(self, g0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Factors (n_trials, n_steps, n_factors) of the generator run n_steps from g0."""
        silence = g0.new_zeros((g0.shape[0], n_steps, 1))
        states, _ = self.generator(silence, g0.unsqueeze(0).contiguous())
        return self.factors(states)


# ------------------------------------------------------------------------------------------------
# the estimator


@register_reducer("lfads")
class SequentialDynamicsModel(Reducer):
    """LFADS without a controller: GRU encoder -> initial condition -> autonomous GRU generator ->
    factors -> Poisson rates (see the module docstring).

    Parameters
    ----------
    hidden_size : int, default 64
        Units of the generator GRU (and dimension of ``g0``), >= 1.
    encoder_size : int, default 64
        Units of each direction of the bidirectional encoder GRU, >= 1.
    n_factors : int, default 8
        Dimension of the factors ``f_t``, >= 1.
    heldin_neurons : sequence of int or None, default None
        Indices of the neurons the encoder reads (None: all); the rates of all neurons are
        modelled.
    dropout : float, default 0.05
        Dropout probability on the encoder's input and its summary while training, in [0, 1).
    kl_weight : float, default 1.0
        Final weight of the KL term, >= 0.
    kl_ramp_epochs : int, default 10
        Epochs over which the KL weight grows linearly from 0 to ``kl_weight`` (per step), >= 0.
    epochs : int, default 100
        Passes over the training trials (at most, with early stopping), >= 1.
    batch_size : int, default 32
        Trials per Adam step, >= 1.
    learning_rate : float, default 1e-2
        Initial Adam step size, > 0 (it decays along a cosine to a tenth over ``epochs``).
    max_grad_norm : float, default 5.0
        The gradient norm is clipped to this, > 0.
    validation_fraction : float, default 0
        In [0, 1): the fraction of trials held out at random for early stopping.
    patience : int, default 10
        Epochs without a better validation loss before training stops (with validation only).
    coordinated_dropout : float, default 0
        In [0, 1): probability that a held-in count is hidden from the encoder in a training
        step and scored in the loss instead (module docstring); 0 turns it off.
    l2_generator : float, default 0
        Weight, >= 0, of the mean square of the generator's recurrent weights in the loss.
    seed : int, default 0
        Seeds everything random in ``fit``; the same seed gives the same model on the CPU.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and predict; "auto" is CUDA when ``torch.cuda.is_available()``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network, in eval mode.
    heldin_neurons_ : ndarray of int64, shape (n_heldin,)
        The neurons the encoder reads.
    n_neurons_ : int
        Neurons of the training data (all of them are predicted).
    train_loss_, validation_loss_ : ndarray
        Loss per epoch (per bin and neuron, with the KL weight of that epoch); validation loss is
        NaN during the KL ramp and empty without validation.
    best_epoch_ : int
        0-based epoch whose weights are kept.
    device_ : torch.device

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.poisson(1.0, size=(12, 8, 5))
    >>> model = SequentialDynamicsModel(hidden_size=4, encoder_size=4, n_factors=2, epochs=1,
    ...                                 heldin_neurons=[0, 1, 2]).fit(X)
    >>> model.predict_rates(X[:, :, :3]).shape       # all 5 neurons from the 3 held-in ones
    (12, 8, 5)
    """

    input_ndim = 3

    def __init__(self, *, hidden_size: int = 64, encoder_size: int = 64, n_factors: int = 8, heldin_neurons=None,
                 dropout: float = 0.05, kl_weight: float = 1.0, kl_ramp_epochs: int = 10, epochs: int = 100,
                 batch_size: int = 32, learning_rate: float = 1e-2, max_grad_norm: float = 5.0,
                 validation_fraction: float = 0.0, patience: int = 10, coordinated_dropout: float = 0.0,
                 l2_generator: float = 0.0, seed: int = 0, device: str = "auto") -> None:
        self.hidden_size = hidden_size
        self.encoder_size = encoder_size
        self.n_factors = n_factors
        self.heldin_neurons = heldin_neurons
        self.dropout = dropout
        self.kl_weight = kl_weight
        self.kl_ramp_epochs = kl_ramp_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.coordinated_dropout = coordinated_dropout
        self.l2_generator = l2_generator
        self.seed = seed
        self.device = device

    # ---- checks

    def _architecture(self) -> dict[str, Any]:
        return {"encoder_size": check_count(self.encoder_size, "encoder_size", 1),
                "hidden_size": check_count(self.hidden_size, "hidden_size", 1),
                "n_factors": check_count(self.n_factors, "n_factors", 1),
                "dropout": check_real(self.dropout, "dropout", low=0.0, high=1.0)}

    def _training(self) -> dict[str, Any]:
        return {"kl_weight": check_real(self.kl_weight, "kl_weight", low=0.0),
                "kl_ramp_epochs": check_count(self.kl_ramp_epochs, "kl_ramp_epochs", 0),
                "epochs": check_count(self.epochs, "epochs", 1),
                "batch_size": check_count(self.batch_size, "batch_size", 1),
                "learning_rate": check_real(self.learning_rate, "learning_rate", low=0.0, low_open=True),
                "max_grad_norm": check_real(self.max_grad_norm, "max_grad_norm", low=0.0, low_open=True),
                "validation_fraction": check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0),
                "patience": check_count(self.patience, "patience", 1),
                "coordinated_dropout": check_real(self.coordinated_dropout, "coordinated_dropout", low=0.0, high=1.0),
                "l2_generator": check_real(self.l2_generator, "l2_generator", low=0.0),
                "seed": check_count(self.seed, "seed", 0)}

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ValueError(f"{type(self).__name__} is not fitted")

    def _encoder_input(self, X) -> np.ndarray:
        """The held-in counts of ``X``, which holds either all neurons or only the held-in ones."""
        self._check_fitted()
        X = _check_counts(X)
        n_heldin = self.heldin_neurons_.size
        if X.shape[2] == self.n_neurons_:
            return X[:, :, self.heldin_neurons_] if n_heldin != self.n_neurons_ else X
        if X.shape[2] == n_heldin:
            return X
        raise ValueError(f"X has {X.shape[2]} neurons; the model was fitted on {self.n_neurons_} neurons, "
                         f"{n_heldin} of them held in (give all {self.n_neurons_} or the {n_heldin} held-in ones)")

    # ---- fitting

    def fit(self, X, *, report: Report | None = None) -> "SequentialDynamicsModel":
        """Train on trials of counts ``X``, shape (n_trials, n_time, n_neurons).

        Parameters
        ----------
        X : array_like, shape (n_trials, n_time, n_neurons)
            Non-negative spike counts (integers or floats) of every neuron, held-in and held-out.
        report : callable, optional
            ``report(fraction_done, message)`` after every epoch; an exception it raises stops the
            fit, propagates, and leaves the model unchanged.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            A rank other than 3, NaN or infinite or negative counts, a parameter out of range,
            held-in indices outside the neurons, too few trials for the validation split.
        """
        arch = self._architecture()
        train = self._training()
        device = resolve_device(self.device, fitting=True)
        X = _check_counts(X)
        n_trials, n_time, n_neurons = X.shape
        heldin = _check_heldin(self.heldin_neurons, n_neurons)

        n_val = math.ceil(train["validation_fraction"] * n_trials) if train["validation_fraction"] > 0 else 0
        if n_val and n_trials - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n_trials} trials leaves no "
                             f"training trials")
        order = np.random.default_rng(train["seed"]).permutation(n_trials)
        fit_rows, val_rows = np.sort(order[n_val:]), np.sort(order[:n_val])

        counts = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        mean_count = X[fit_rows].mean(axis=(0, 1), dtype=np.float64)
        fork_devices = [device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(train["seed"])
            module = _LFADSNet(heldin.size, n_neurons, arch["encoder_size"], arch["hidden_size"], arch["n_factors"],
                               arch["dropout"])
            with torch.no_grad():
                # start every neuron at its mean rate, so early steps shape dynamics, not offsets
                module.readout.bias.copy_(torch.from_numpy(np.log(np.maximum(mean_count, _MIN_MEAN_COUNT))))
            module = module.to(device)
            history = _train(module, counts, torch.from_numpy(heldin).to(device),
                             torch.from_numpy(fit_rows).to(device), torch.from_numpy(val_rows).to(device),
                             report=report, **train)
        module.eval()
        # only now, after training ran to its end, does the model change
        self.module_ = module
        self.heldin_neurons_ = heldin
        self.n_neurons_ = n_neurons
        self.train_loss_, self.validation_loss_, self.best_epoch_ = history
        self.device_ = device
        return self

    # ---- inference (posterior mean of g0, no sampling, no dropout)

    def _run(self, X, n_future: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Factors and log-rates for the observed bins of ``X`` and ``n_future`` bins after them."""
        x = self._encoder_input(X)
        module = self.module_
        if module.training:
            module.eval()
        n_trials, n_time = x.shape[:2]
        n_steps = n_time + n_future
        factors = np.empty((n_trials, n_steps, module.factors.out_features), dtype=np.float64)
        log_rates = np.empty((n_trials, n_steps, self.n_neurons_), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, n_trials, _PREDICT_BATCH):
                block = torch.from_numpy(x[start:start + _PREDICT_BATCH]).to(self.device_)
                mean, _ = module.encode(block)
                f = module.generate(mean, n_steps)
                stop = start + block.shape[0]
                factors[start:stop] = f.to(device="cpu", dtype=torch.float64).numpy()
                log_rates[start:stop] = module.readout(f).to(device="cpu", dtype=torch.float64).numpy()
        return factors, log_rates

    def transform(self, X) -> np.ndarray:
        """Factors of every bin, shape (n_trials, n_time, n_factors).

        ``X`` holds either all ``n_neurons_`` neurons or only the held-in ones (in the order of
        ``heldin_neurons_``); trials may have any number of bins.
        """
        return self._run(X)[0]

    def predict_rates(self, X) -> np.ndarray:
        """Expected counts per bin of **all** neurons, shape (n_trials, n_time, n_neurons_), inferred
        from the held-in neurons of ``X`` (which holds all neurons or only the held-in ones)."""
        return np.exp(self._run(X)[1])

    def reconstruct(self, X) -> np.ndarray:
        """The denoised activity: :meth:`predict_rates` (expected counts per bin of all neurons)."""
        return self.predict_rates(X)

    def predict_future(self, X, n_future: int) -> np.ndarray:
        """Expected counts per bin of all neurons in the ``n_future`` bins after the trials of ``X``.

        The initial condition is inferred from the observed bins and the (autonomous) generator is
        run on past them, so this is a forecast from the observed window alone.

        Returns
        -------
        ndarray, shape (n_trials, n_future, n_neurons_)
        """
        n_future = check_count(n_future, "n_future", 1)
        n_time = np.shape(X)[1] if np.ndim(X) == 3 else 0
        return np.exp(self._run(X, n_future)[1][:, n_time:])

    # ---- saving

    def get_model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters, the network's ``state_dict`` as ``"module.<name>"`` arrays, the
        held-in indices, the neuron count and the loss history."""
        self._check_fitted()
        params = self.get_params(deep=False)
        if params["heldin_neurons"] is not None:
            params["heldin_neurons"] = [int(i) for i in np.asarray(params["heldin_neurons"]).ravel()]
        arrays = {_MODULE_PREFIX + k: v.detach().to("cpu").numpy().copy() for k, v in self.module_.state_dict().items()}
        arrays.update(heldin_neurons_=self.heldin_neurons_, n_neurons_=np.array(self.n_neurons_, dtype=np.int64),
                      train_loss_=self.train_loss_, validation_loss_=self.validation_loss_,
                      best_epoch_=np.array(self.best_epoch_, dtype=np.int64))
        return params, arrays

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SequentialDynamicsModel":
        """Rebuild the model saved by :meth:`get_model_state` (on the CPU where there is no CUDA)."""
        model = cls(**params)
        missing = [name for name in ("heldin_neurons_", "n_neurons_", "train_loss_", "validation_loss_",
                                     "best_epoch_") if name not in arrays]
        if missing:
            raise ValueError(f"the saved {cls.__name__} lacks its array {missing[0]!r}")
        arch = model._architecture()
        heldin = np.asarray(arrays["heldin_neurons_"], dtype=np.int64)
        n_neurons = int(arrays["n_neurons_"])
        module = _LFADSNet(heldin.size, n_neurons, arch["encoder_size"], arch["hidden_size"], arch["n_factors"],
                           arch["dropout"])
        state = {k[len(_MODULE_PREFIX):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                 if k.startswith(_MODULE_PREFIX)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # missing, unexpected or misshapen weights
            raise ValueError(f"the saved {cls.__name__} does not match its parameters: {exc}") from None
        device = resolve_device(model.device, fitting=False)
        model.module_ = module.to(device).eval()
        model.heldin_neurons_ = heldin
        model.n_neurons_ = n_neurons
        model.train_loss_ = np.asarray(arrays["train_loss_"])
        model.validation_loss_ = np.asarray(arrays["validation_loss_"])
        model.best_epoch_ = int(arrays["best_epoch_"])
        model.device_ = device
        return model


# ------------------------------------------------------------------------------------------------
# training


def _elbo_loss(module: _LFADSNet, counts: torch.Tensor, heldin: torch.Tensor, kl_scale: float, *,
               sample: bool, coordinated_dropout: float = 0.0) -> torch.Tensor:
    """Poisson NLL of all neurons + kl_scale * KL(q(g0|x) || N(0, I)), per bin and neuron.

    With ``coordinated_dropout`` p > 0 (training only) each held-in count is hidden from the
    encoder with probability p (the others scaled by 1 / (1 - p)), and the held-in part of the
    likelihood is taken on the hidden counts alone, weighted by 1 / p (an unbiased estimate of the
    full sum): no count can be predicted by copying it through the network.
    """
    n_trials, n_time, n_neurons = counts.shape
    x = counts[:, :, heldin]
    weights = None
    if coordinated_dropout > 0:
        seen = torch.rand_like(x) >= coordinated_dropout
        x = torch.where(seen, x / (1.0 - coordinated_dropout), torch.zeros_like(x))
        weights = torch.ones_like(counts)
        weights[:, :, heldin] = (~seen).to(counts.dtype) / coordinated_dropout
    mean, log_var = module.encode(x)
    g0 = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean) if sample else mean
    log_rates = module.readout(module.generate(g0, n_time)).clamp(max=_MAX_LOG_RATE)
    if weights is None:
        nll = F.poisson_nll_loss(log_rates, counts, log_input=True, full=False, reduction="sum")
    else:
        nll = (F.poisson_nll_loss(log_rates, counts, log_input=True, full=False, reduction="none") * weights).sum()
    kl = 0.5 * (log_var.exp() + mean ** 2 - 1.0 - log_var).sum()
    return (nll + kl_scale * kl) / (n_trials * n_time * n_neurons)


def _train(module: _LFADSNet, counts: torch.Tensor, heldin: torch.Tensor, fit_rows: torch.Tensor,
           val_rows: torch.Tensor, *, report: Report | None, kl_weight: float, kl_ramp_epochs: int, epochs: int,
           batch_size: int, learning_rate: float, max_grad_norm: float, validation_fraction: float,
           patience: int, coordinated_dropout: float, l2_generator: float,
           seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Adam on the ELBO with a KL ramp; early stopping on ``val_rows`` after the ramp.

    Returns the training loss per epoch, the validation loss per epoch (NaN during the ramp,
    empty without validation) and the 0-based epoch whose weights the module holds.
    """
    del validation_fraction  # already turned into val_rows
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    # cosine decay of the step size to a tenth over the epochs: the loss is an estimate from
    # sampled g0s, so a constant step keeps the weights jittering at the end
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda epoch: 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(epoch, epochs - 1) / max(epochs - 1, 1))))
    # batch order from its own generator on the CPU: the same on every device
    order_rng = torch.Generator().manual_seed(seed)
    n_fit, n_val = fit_rows.numel(), val_rows.numel()
    batches_per_epoch = math.ceil(n_fit / batch_size)
    ramp_steps = kl_ramp_epochs * batches_per_epoch
    step = 0
    train_losses, val_losses = [], []
    best = BestEpoch(patience)
    for epoch in range(epochs):
        module.train()
        order = fit_rows[torch.randperm(n_fit, generator=order_rng).to(fit_rows.device)]
        total = 0.0
        for start in range(0, n_fit, batch_size):
            rows = order[start:start + batch_size]
            kl_scale = kl_weight * min(1.0, (step + 1) / ramp_steps) if ramp_steps else kl_weight
            loss = _elbo_loss(module, counts[rows], heldin, kl_scale, sample=True,
                              coordinated_dropout=coordinated_dropout)
            if l2_generator > 0:
                # LFADS' L2 penalty on the generator's recurrent weights, as a mean square
                loss = loss + l2_generator * module.generator.weight_hh_l0.pow(2).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
            optimiser.step()
            total += float(loss.detach()) * rows.numel()
            step += 1
        schedule.step()
        train_losses.append(total / n_fit)
        message = f"epoch {epoch + 1} of {epochs}: training loss {train_losses[-1]:.5g}"
        stop = False
        if n_val:
            ramped = step >= ramp_steps
            val_losses.append(_validation_loss(module, counts, heldin, val_rows, kl_weight) if ramped else math.nan)
            if ramped:
                message += f", validation loss {val_losses[-1]:.5g}"
                stop = best.update(epoch, val_losses[-1], module)
                if stop:
                    message += best.stop_message()
        if report is not None:
            report(1.0 if stop else (epoch + 1) / epochs, message)
        if stop:
            break
    best_epoch = best.restore(module, last_epoch=len(train_losses) - 1)
    return np.array(train_losses), np.array(val_losses), best_epoch


def _validation_loss(module: _LFADSNet, counts: torch.Tensor, heldin: torch.Tensor, rows: torch.Tensor,
                     kl_weight: float) -> float:
    """The loss at the posterior mean (no sampling, no dropout), averaged over the validation trials."""
    module.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, rows.numel(), _PREDICT_BATCH):
            block = rows[start:start + _PREDICT_BATCH]
            total += float(_elbo_loss(module, counts[block], heldin, kl_weight, sample=False)) * block.numel()
    return total / rows.numel()
