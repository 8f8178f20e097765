"""A 3-D U-Net that predicts neuron boundaries in EM volumes, as affinities or a boundary map.

Axes are ``(z, y, x)`` everywhere in this module: volumes are ``(z, y, x)``, network inputs
``(batch, 1, z, y, x)``, outputs ``(batch, channels, z, y, x)``, and every per-axis tuple
(kernel sizes, pooling factors, shapes) is ordered ``(z, y, x)``.

The network
-----------
The U-Net of Ronneberger et al. (2015) in its 3-D form (Çiçek et al. 2016, "3D U-Net"):

* ``levels`` resolution levels (>= 2). Level ``l`` has ``base_channels * channel_multiplier**l``
  feature maps (rounded). The encoder applies, per level, two convolutions with 'same' padding
  (zeros), each followed by a normalisation (GroupNorm or InstanceNorm) and a ReLU, then
  max-pools to the next level. The decoder upsamples (a transposed convolution, or trilinear
  interpolation followed by a 1x1x1 convolution), **concatenates** the encoder's features of
  the same level (the skip connection) and applies the same double convolution. A 1x1x1
  convolution maps the finest features to the output channels.
* **Anisotropic data** (ssTEM, serial-section data with z steps several times the in-plane
  pixel): with ``anisotropic=True`` the first ``anisotropic_levels`` levels convolve with
  ``(1, 3, 3)`` kernels and pool by ``(1, 2, 2)``, i.e. only in y and x, so the z resolution is
  kept until the in-plane resolution has come closer to it; deeper levels are isotropic
  (``(3, 3, 3)`` kernels, ``(2, 2, 2)`` pooling). By default ``levels - 2`` levels (at least
  one) are anisotropic, the pattern of the CREMI networks (Funke et al. 2018).
* **Outputs** (``target``), as *logits*; :meth:`BoundaryUNet.probabilities` (and the tiled
  inference of :mod:`.training`) applies the sigmoid:

  - ``"affinities"`` (default): 3 channels, the nearest-neighbour affinities along z, y and x
    (Turaga et al. 2010; Lee et al. 2017): channel ``a`` at voxel ``v`` is the probability
    that ``v`` and its neighbour ``v - e_a`` at offset -1 along axis ``a`` belong to the same
    object (1 inside an object, 0 across a boundary).
  - ``"boundaries"``: 1 channel, the probability that a voxel lies on an object boundary
    (1 on the boundary).

Because of the pooling, the network accepts spatial shapes divisible by the total pooling
factor per axis (:attr:`UNetConfig.pooling_factor`); the output then has the input's shape.
:func:`valid_input_shape` rounds a shape up to the next valid one, and a forward pass on any
other shape raises a ValueError that names it.

Example
-------
>>> import torch
>>> config = UNetConfig(levels=3, base_channels=4)
>>> config.pooling_factor, config.channels
((4, 4, 4), (4, 8, 16))
>>> valid_input_shape((10, 17, 16), config=config)
(12, 20, 16)
>>> net = BoundaryUNet(config)
>>> net(torch.zeros(1, 1, 8, 12, 16)).shape
torch.Size([1, 3, 8, 12, 16])
>>> sstem = UNetConfig(levels=3, base_channels=4, anisotropic=True)
>>> sstem.pool_factors, sstem.kernel_sizes
(((1, 2, 2), (2, 2, 2)), ((1, 3, 3), (3, 3, 3), (3, 3, 3)))
>>> BoundaryUNet(sstem).probabilities(torch.zeros(1, 1, 6, 8, 8)).shape
torch.Size([1, 3, 6, 8, 8])
>>> check_input_shape((10, 16, 16), config=config)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: input spatial shape (z, y, x) = (10, 16, 16) is not divisible ...; the next valid shape is (12, 16, 16)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from services.common.estimators import check_count, check_real

__all__ = ["UNetConfig", "BoundaryUNet", "valid_input_shape", "check_input_shape", "TARGETS", "NORMS",
           "UPSAMPLINGS"]

TARGETS = ("affinities", "boundaries")
NORMS = ("group", "instance")
UPSAMPLINGS = ("transposed", "trilinear")

#: output channels per target: one affinity per axis (z, y, x), or one boundary probability
_OUT_CHANNELS = {"affinities": 3, "boundaries": 1}
#: GroupNorm uses this many groups, or the largest divisor of the channel count below it
_MAX_GROUPS = 8


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`BoundaryUNet`; JSON-able through :meth:`to_dict`.

    Parameters
    ----------
    levels : int, default 3
        Resolution levels, >= 2 (``levels - 1`` poolings).
    base_channels : int, default 8
        Feature maps at the finest level, >= 1.
    channel_multiplier : float, default 2
        Factor on the feature maps from one level to the next coarser one, >= 1.
    anisotropic : bool, default False
        Convolve and pool only in (y, x) on the first levels, for data whose z step is much
        larger than its in-plane pixel (ssTEM).
    anisotropic_levels : int, optional
        With ``anisotropic``, how many of the first levels use ``(1, 3, 3)`` kernels and
        ``(1, 2, 2)`` pooling, in ``[1, levels - 1]``; default ``max(1, levels - 2)``. Must be
        left unset (or 0) without ``anisotropic``.
    target : {"affinities", "boundaries"}, default "affinities"
        Three nearest-neighbour affinities (z, y, x), or one boundary probability.
    norm : {"group", "instance"}, default "group"
        Normalisation after each convolution: GroupNorm (up to 8 groups) or InstanceNorm
        (with learned scale and shift).
    upsampling : {"transposed", "trilinear"}, default "transposed"
        A transposed convolution, or trilinear interpolation then a 1x1x1 convolution.
    """

    levels: int = 3
    base_channels: int = 8
    channel_multiplier: float = 2.0
    anisotropic: bool = False
    anisotropic_levels: int | None = None
    target: str = "affinities"
    norm: str = "group"
    upsampling: str = "transposed"

    def __post_init__(self) -> None:
        levels = check_count(self.levels, "levels", 2)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "base_channels", check_count(self.base_channels, "base_channels", 1))
        object.__setattr__(self, "channel_multiplier",
                           check_real(self.channel_multiplier, "channel_multiplier", low=1.0))
        if not isinstance(self.anisotropic, bool):
            raise ValueError(f"anisotropic must be True or False, got {self.anisotropic!r}")
        if self.anisotropic:
            if self.anisotropic_levels is None:
                n_aniso = max(1, levels - 2)
            else:
                n_aniso = check_count(self.anisotropic_levels, "anisotropic_levels", 1)
                if n_aniso > levels - 1:
                    raise ValueError(f"anisotropic_levels must be in [1, levels - 1] = [1, {levels - 1}] "
                                     f"(one per pooling), got {self.anisotropic_levels!r}")
        else:
            if self.anisotropic_levels not in (None, 0):
                raise ValueError(f"anisotropic_levels={self.anisotropic_levels!r} needs anisotropic=True")
            n_aniso = 0
        object.__setattr__(self, "anisotropic_levels", n_aniso)
        for name, allowed in (("target", TARGETS), ("norm", NORMS), ("upsampling", UPSAMPLINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    # ---- derived architecture, all per level or per axis (z, y, x)

    @property
    def out_channels(self) -> int:
        """3 for affinities (z, y, x), 1 for boundaries."""
        return _OUT_CHANNELS[self.target]

    @property
    def channels(self) -> tuple[int, ...]:
        """Feature maps per level, finest first."""
        return tuple(max(1, int(round(self.base_channels * self.channel_multiplier ** level)))
                     for level in range(self.levels))

    @property
    def kernel_sizes(self) -> tuple[tuple[int, int, int], ...]:
        """Convolution kernel (z, y, x) per level, finest first."""
        return tuple((1, 3, 3) if level < self.anisotropic_levels else (3, 3, 3) for level in range(self.levels))

    @property
    def pool_factors(self) -> tuple[tuple[int, int, int], ...]:
        """Max-pooling factor (z, y, x) below each level but the coarsest."""
        return tuple((1, 2, 2) if level < self.anisotropic_levels else (2, 2, 2) for level in range(self.levels - 1))

    @property
    def pooling_factor(self) -> tuple[int, int, int]:
        """Total pooling per axis (z, y, x): valid input shapes are its multiples."""
        return tuple(math.prod(f[axis] for f in self.pool_factors) for axis in range(3))

    # ---- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (``anisotropic_levels`` resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "UNetConfig":
        """The config from :meth:`to_dict`'s output; ValueError naming an unknown field."""
        if not isinstance(values, Mapping):
            raise ValueError(f"a U-Net config must be a UNetConfig or a mapping of its fields, got {values!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown U-Net config field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def coerce(cls, config: "UNetConfig | Mapping[str, Any] | None") -> "UNetConfig":
        """A UNetConfig from itself, a dict of fields, or None (the defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        return cls.from_dict(config)


def _check_shape(shape, name: str) -> tuple[int, int, int]:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"{name} must be 3 sizes (z, y, x), got {shape!r}")
    for size in shape:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"{name} must be 3 positive integers (z, y, x), got {tuple(shape)!r}")
    return tuple(int(s) for s in shape)


def valid_input_shape(shape, *, config: UNetConfig | Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """The smallest spatial shape (z, y, x) >= ``shape`` that the U-Net accepts.

    Each size is rounded up to a multiple of the total pooling factor along its axis.

    Example
    -------
    >>> valid_input_shape((5, 30, 30), config=UNetConfig(levels=3, anisotropic=True))
    (6, 32, 32)
    """
    config = UNetConfig.coerce(config)
    shape = _check_shape(shape, "shape")
    return tuple(-(-size // factor) * factor for size, factor in zip(shape, config.pooling_factor))


def check_input_shape(shape, *, config: UNetConfig | Mapping[str, Any] | None = None,
                      name: str = "input spatial shape") -> tuple[int, int, int]:
    """``shape`` (z, y, x) as a tuple if the U-Net accepts it, else a ValueError that names it,
    the total pooling factor and the next valid shape."""
    config = UNetConfig.coerce(config)
    shape = _check_shape(shape, name)
    valid = valid_input_shape(shape, config=config)
    if valid != shape:
        raise ValueError(f"{name} (z, y, x) = {shape} is not divisible by the U-Net's total pooling factor "
                         f"{config.pooling_factor}; the next valid shape is {valid}")
    return shape


# ------------------------------------------------------------------------------------------------
# the network


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    groups = min(_MAX_GROUPS, channels)
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class _DoubleConv(nn.Sequential):
    """(conv 'same' -> norm -> ReLU) twice; no conv bias, the norm's shift replaces it."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int], norm: str) -> None:
        padding = tuple(k // 2 for k in kernel)
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel, padding=padding, bias=False),
            _norm(norm, out_channels), nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel, padding=padding, bias=False),
            _norm(norm, out_channels), nn.ReLU(inplace=True))


def _upsampler(in_channels: int, out_channels: int, factor: tuple[int, int, int], kind: str) -> nn.Module:
    if kind == "transposed":
        return nn.ConvTranspose3d(in_channels, out_channels, kernel_size=factor, stride=factor)
    return nn.Sequential(nn.Upsample(scale_factor=factor, mode="trilinear", align_corners=False),
                         nn.Conv3d(in_channels, out_channels, kernel_size=1))


class BoundaryUNet(nn.Module):
    """3-D U-Net from a raw EM volume to boundary logits; see the module docstring.

    Parameters
    ----------
    config : UNetConfig or dict, optional
        The architecture (default ``UNetConfig()``).

    Attributes
    ----------
    config : UNetConfig
    encoders, decoders : torch.nn.ModuleList
        Double convolutions per level: ``encoders[l]`` at level ``l`` (finest first),
        ``decoders[l]`` at level ``l`` for ``l < levels - 1``, whose input is the upsampled
        coarser features concatenated with ``encoders[l]``'s output.
    pools, upsamplers : torch.nn.ModuleList
        ``pools[l]`` from level ``l`` to ``l + 1``; ``upsamplers[l]`` back from ``l + 1`` to ``l``.
    head : torch.nn.Conv3d
        1x1x1 convolution to the output channels.

    Notes
    -----
    The input is ``(batch, 1, z, y, x)`` intensities in [0, 1] (see
    :func:`services.segmentation.core.training.normalize_intensity`), with z, y and x
    multiples of ``config.pooling_factor``; :meth:`forward` returns logits
    ``(batch, config.out_channels, z, y, x)``.

    Example
    -------
    >>> import torch
    >>> net = BoundaryUNet({"levels": 2, "base_channels": 2, "target": "boundaries"})
    >>> net(torch.rand(2, 1, 4, 6, 8)).shape
    torch.Size([2, 1, 4, 6, 8])
    """

    def __init__(self, config: UNetConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config = UNetConfig.coerce(config)
        channels, kernels, pools = config.channels, config.kernel_sizes, config.pool_factors
        self.encoders = nn.ModuleList()
        in_channels = 1
        for level in range(config.levels):
            self.encoders.append(_DoubleConv(in_channels, channels[level], kernels[level], config.norm))
            in_channels = channels[level]
        self.pools = nn.ModuleList(nn.MaxPool3d(kernel_size=f, stride=f) for f in pools)
        self.upsamplers = nn.ModuleList(_upsampler(channels[level + 1], channels[level], pools[level],
                                                   config.upsampling) for level in range(config.levels - 1))
        self.decoders = nn.ModuleList(_DoubleConv(2 * channels[level], channels[level], kernels[level], config.norm)
                                      for level in range(config.levels - 1))
        self.head = nn.Conv3d(channels[0], config.out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, out_channels, z, y, x)`` of a ``(batch, 1, z, y, x)`` input."""
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"the U-Net input must be (batch, 1, z, y, x), got shape {tuple(x.shape)}")
        check_input_shape(tuple(x.shape[2:]), config=self.config)
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x)
            if level < len(self.pools):
                skips.append(x)
                x = self.pools[level](x)
        for level in reversed(range(len(self.decoders))):
            x = self.upsamplers[level](x)
            x = self.decoders[level](torch.cat([skips[level], x], dim=1))
        return self.head(x)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid of :meth:`forward`: affinities or boundary probabilities in [0, 1]."""
        return torch.sigmoid(self.forward(x))
