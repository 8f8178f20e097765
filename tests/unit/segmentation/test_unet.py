"""The boundary U-Net: shapes for isotropic and anisotropic configurations, depth and width,
skip connections, and the checks on configurations and input shapes. Axes are (z, y, x)."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch

from services.segmentation.core import unet
from services.segmentation.core.unet import BoundaryUNet, UNetConfig, check_input_shape, valid_input_shape


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and extra threads spin-wait."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_docstring_examples():
    result = doctest.testmod(unet, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("levels, shape", [(2, (2, 4, 6)), (2, (8, 8, 8)), (3, (8, 12, 16)), (4, (8, 8, 16))])
@pytest.mark.parametrize("norm, upsampling", [("group", "transposed"), ("instance", "trilinear")])
def test_isotropic_output_has_the_input_shape(levels, shape, norm, upsampling):
    net = BoundaryUNet(UNetConfig(levels=levels, base_channels=2, norm=norm, upsampling=upsampling))
    out = net(torch.rand((2, 1) + shape))
    assert out.shape == (2, 3) + shape
    probabilities = net.probabilities(torch.rand((1, 1) + shape))
    assert probabilities.min() >= 0 and probabilities.max() <= 1


def test_boundary_target_has_one_channel():
    net = BoundaryUNet(UNetConfig(levels=2, base_channels=2, target="boundaries"))
    assert net(torch.rand(1, 1, 4, 4, 4)).shape == (1, 1, 4, 4, 4)


def encoder_input_shapes(net: BoundaryUNet, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Spatial (z, y, x) shape of the input of every encoder level during one forward pass."""
    shapes = []
    hooks = [encoder.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape[2:])))
             for encoder in net.encoders]
    net(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_anisotropic_levels_pool_and_convolve_in_y_x_only():
    config = UNetConfig(levels=3, base_channels=2, anisotropic=True)
    assert config.anisotropic_levels == 1
    assert config.pool_factors == ((1, 2, 2), (2, 2, 2))
    assert config.pooling_factor == (2, 4, 4)
    net = BoundaryUNet(config)
    convs = [m for m in net.encoders[0] if isinstance(m, torch.nn.Conv3d)]
    assert [c.kernel_size for c in convs] == [(1, 3, 3), (1, 3, 3)]
    assert all(c.kernel_size == (3, 3, 3) for c in net.encoders[1] if isinstance(c, torch.nn.Conv3d))
    assert [c.kernel_size for c in net.decoders[0] if isinstance(c, torch.nn.Conv3d)] == [(1, 3, 3), (1, 3, 3)]
    assert net.pools[0].kernel_size == (1, 2, 2)
    x = torch.rand(1, 1, 6, 16, 16)       # 6 z slices: not a multiple of 4, but of 2
    # z resolution kept on the first level, halved in y and x; isotropic below
    assert encoder_input_shapes(net, x) == [(6, 16, 16), (6, 8, 8), (3, 4, 4)]
    assert net(x).shape == (1, 3, 6, 16, 16)
    iso = BoundaryUNet(UNetConfig(levels=3, base_channels=2))
    assert encoder_input_shapes(iso, torch.rand(1, 1, 8, 8, 8)) == [(8, 8, 8), (4, 4, 4), (2, 2, 2)]


def test_fully_anisotropic_network_keeps_every_z_slice():
    config = UNetConfig(levels=4, base_channels=2, anisotropic=True, anisotropic_levels=3)
    assert config.pooling_factor == (1, 8, 8)
    net = BoundaryUNet(config)
    assert net(torch.rand(1, 1, 3, 8, 16)).shape == (1, 3, 3, 8, 16)
    assert valid_input_shape((3, 9, 16), config=config) == (3, 16, 16)


def test_depth_and_width_add_parameters_and_modules():
    counts = [n_parameters(BoundaryUNet(UNetConfig(levels=levels, base_channels=4))) for levels in (2, 3, 4)]
    modules = [len(list(BoundaryUNet(UNetConfig(levels=levels, base_channels=4)).modules())) for levels in (2, 3, 4)]
    assert counts[0] < counts[1] < counts[2]
    assert modules[0] < modules[1] < modules[2]
    assert n_parameters(BoundaryUNet(UNetConfig(levels=3, base_channels=8))) > counts[1]
    wide = UNetConfig(levels=3, base_channels=4, channel_multiplier=3)
    assert wide.channels == (4, 12, 36)
    assert n_parameters(BoundaryUNet(wide)) > counts[1]
    assert UNetConfig(levels=3, base_channels=4, channel_multiplier=1.5).channels == (4, 6, 9)


def test_decoders_concatenate_the_encoder_features_of_their_level():
    net = BoundaryUNet(UNetConfig(levels=3, base_channels=2))
    encoded, decoder_inputs = {}, {}
    hooks = []
    for level, encoder in enumerate(net.encoders):
        hooks.append(encoder.register_forward_hook(
            lambda module, args, output, level=level: encoded.__setitem__(level, output.detach().clone())))
    for level, decoder in enumerate(net.decoders):
        hooks.append(decoder.register_forward_pre_hook(
            lambda module, args, level=level: decoder_inputs.__setitem__(level, args[0].detach().clone())))
    out = net(torch.rand(1, 1, 8, 8, 8))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, 3, 8, 8, 8)
    for level, channels in enumerate(net.config.channels[:-1]):
        skip = decoder_inputs[level][:, :channels]
        assert decoder_inputs[level].shape[1] == 2 * channels
        assert torch.equal(skip, encoded[level])     # the skip connection, concatenated first
    # and every weight takes part: one backward pass reaches all of them
    net.zero_grad()
    net(torch.rand(1, 1, 8, 8, 8)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_input_shape_checks_name_the_shape_and_the_next_valid_one():
    config = UNetConfig(levels=3, base_channels=2)
    assert valid_input_shape((4, 4, 4), config=config) == (4, 4, 4)
    assert valid_input_shape((1, 5, 9), config=config) == (4, 8, 12)
    assert check_input_shape((8, 12, 4), config=config) == (8, 12, 4)
    net = BoundaryUNet(config)
    with pytest.raises(ValueError, match=r"\(9, 8, 8\) is not divisible .*\(4, 4, 4\).*\(12, 8, 8\)"):
        net(torch.zeros(1, 1, 9, 8, 8))
    with pytest.raises(ValueError, match=r"\(batch, 1, z, y, x\)"):
        net(torch.zeros(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match=r"\(batch, 1, z, y, x\)"):
        net(torch.zeros(8, 8, 8))
    with pytest.raises(ValueError, match="3 sizes"):
        valid_input_shape((8, 8), config=config)
    with pytest.raises(ValueError, match="positive integers"):
        valid_input_shape((8, 0, 8), config=config)


@pytest.mark.parametrize("fields, message", [
    ({"levels": 1}, "levels must be an integer >= 2"),
    ({"base_channels": 0}, "base_channels must be an integer >= 1"),
    ({"channel_multiplier": 0.5}, "channel_multiplier"),
    ({"target": "edges"}, "target must be one of"),
    ({"norm": "batch"}, "norm must be one of"),
    ({"upsampling": "nearest"}, "upsampling must be one of"),
    ({"anisotropic": "yes"}, "anisotropic must be True or False"),
    ({"anisotropic_levels": 1}, "needs anisotropic=True"),
    ({"anisotropic": True, "levels": 3, "anisotropic_levels": 3}, r"anisotropic_levels must be in \[1, levels - 1\]"),
])
def test_bad_configurations_raise_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        UNetConfig(**fields)


def test_config_round_trips_through_json():
    config = UNetConfig(levels=4, base_channels=3, channel_multiplier=1.5, anisotropic=True, target="boundaries",
                        norm="instance", upsampling="trilinear")
    again = UNetConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.anisotropic_levels == 2
    assert UNetConfig.coerce(None) == UNetConfig()
    with pytest.raises(ValueError, match=r"unknown U-Net config field\(s\) \['depth'\]"):
        UNetConfig.from_dict({"depth": 3})
