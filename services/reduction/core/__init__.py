"""The science of the reduction service, free of transport.

* preprocessing: Gaussian smoothing along time, soft normalisation, trial averages
  (:mod:`.preprocessing`);
* methods, one contract (:mod:`.base`), all in :data:`REDUCERS`: PCA, exact, randomized and out
  of core (:mod:`.pca`); factor analysis by EM in torch (:mod:`.factor_analysis`); a
  variational autoencoder (:mod:`.vae`); t-SNE embeddings (:mod:`.embedding`); an LFADS-style
  sequential dynamics model (:mod:`.dynamics`);
* scores: explained variance, latent recovery, Poisson likelihood, co-smoothing bits per
  spike, forward prediction (:mod:`.scores`);
* synthetic data with known latents (:mod:`.synthetic`).

Example
-------
>>> from services.reduction.core import REDUCERS, low_rank_gaussian
>>> data = low_rank_gaussian(n_samples=500, n_neurons=20, rank=2, noise_std=0.1, seed=0)
>>> pca = REDUCERS["pca"](n_components=2).fit(data.activity)
>>> bool(pca.explained_variance_ratio_.sum() > 0.9)
True
>>> sorted(REDUCERS)
['factor_analysis', 'lfads', 'pca', 'tsne', 'vae']
"""

from .base import REDUCERS, Reducer, load_model, save_model
from .dynamics import SequentialDynamicsModel
from .embedding import TSNEEmbedding
from .factor_analysis import FactorAnalysis
from .pca import PCA, fit_pca_streaming, transform_streaming
from .synthetic import lorenz_poisson_dataset, low_rank_gaussian
from .vae import VariationalAutoencoder

__all__ = ["REDUCERS", "Reducer", "load_model", "save_model", "PCA", "fit_pca_streaming", "transform_streaming",
           "FactorAnalysis", "VariationalAutoencoder", "TSNEEmbedding", "SequentialDynamicsModel",
           "low_rank_gaussian", "lorenz_poisson_dataset"]
