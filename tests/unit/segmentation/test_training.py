"""Training the boundary U-Net and tiled inference: targets, augmentations that keep raw and labels
aligned, the balanced loss, learning a synthetic volume (loss drop, held-out AUC), checkpoints,
progress and cancellation, seamless tiling into numpy and Zarr arrays, and the input checks.

Every volume is tiny (at most 24^3) and every network has 2 levels of 2-4 channels, so the
whole file runs in seconds on one CPU thread. Axes are (z, y, x)."""

from __future__ import annotations

import doctest
import io

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from services.segmentation.core import training
from services.segmentation.core.training import (Augmentation, affinity_targets, balanced_bce_loss, blank_section,
                                                 boundary_targets, checkpoint_info, jitter_intensity, load_checkpoint,
                                                 normalize_intensity, predict_affinities, random_flip,
                                                 random_transpose, save_checkpoint, train_boundary_model,
                                                 transpose_axes)
from services.segmentation.core.training import COSINE_FINAL_FRACTION, cosine_learning_rate
from services.segmentation.core.unet import BoundaryUNet, UNetConfig, check_input_shape

TINY = UNetConfig(levels=2, base_channels=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, extra threads spin-wait, and equal results on
    repeated runs need a fixed thread count anyway."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def shifted(axis):
    here = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
    there = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
    return here, there


def voronoi_volume(seed, shape=(24, 24, 24), n_cells=8, noise=0.08):
    """Voronoi cells (labels 1..n, touching), grey levels per cell, dark 1-voxel membranes on the
    voxels whose -1 neighbour along some axis is another cell, Gaussian noise; uint8 raw."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, shape, size=(n_cells, 3))
    grid = np.indices(shape).reshape(3, -1).T + 0.5
    labels = ((grid[:, None, :] - points[None]) ** 2).sum(-1).argmin(1).reshape(shape) + 1
    membrane = np.zeros(shape, dtype=bool)
    for axis in range(3):
        here, there = shifted(axis)
        membrane[here] |= labels[here] != labels[there]
    raw = rng.uniform(0.55, 0.9, n_cells)[labels - 1]
    raw[membrane] = 0.15
    raw = np.clip(raw + noise * rng.normal(size=shape), 0, 1)
    return (raw * 255).round().astype(np.uint8), labels


def affinity_auc(affinities, labels) -> float:
    """ROC AUC of the predicted affinities against the true ones, over the labelled pairs:
    boundary (0) against interior (1) links."""
    targets, mask = affinity_targets(labels)
    return roc_auc_score(targets[mask], affinities[mask])


class Pointwise(torch.nn.Module):
    """A stand-in for the U-Net whose output at a voxel depends on that voxel alone: tiled
    inference must then reproduce the one-piece prediction exactly, so any seam, gap, wrong
    offset or badly normalised blending weight shows."""

    def __init__(self, target="affinities"):
        super().__init__()
        self.config = UNetConfig(levels=2, base_channels=1, target=target)
        self.conv = torch.nn.Conv3d(1, self.config.out_channels, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(-6, 6, self.config.out_channels).view(-1, 1, 1, 1, 1))
            self.conv.bias.fill_(1.0)

    def forward(self, x):
        check_input_shape(tuple(x.shape[2:]), config=self.config)
        return self.conv(x)


@pytest.fixture(scope="module")
def trained():
    """A 2-level U-Net trained for 200 steps on one synthetic volume (about 5-10 s)."""
    raw, labels = voronoi_volume(0)
    reports = []
    model, history = train_boundary_model(
        raw, labels, config=UNetConfig(levels=2, base_channels=4), iterations=200, batch_size=2,
        patch_shape=(16, 16, 16), learning_rate=0.01, seed=0, device="cpu",
        report=lambda **kwargs: reports.append(kwargs))
    return model, history, reports


# ---- docstrings, intensities, targets


def test_docstring_examples():
    result = doctest.testmod(training, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_intensities_map_their_range_to_0_1(dtype, top):
    out = normalize_intensity(np.array([0, top // 2, top], dtype=dtype))
    assert out.dtype == np.float32 and out[0] == 0 and out[-1] == 1 and abs(out[1] - 0.5) < 3e-3
    floats = np.array([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(normalize_intensity(floats), floats.astype(np.float32))
    assert normalize_intensity(np.array([-32768, 32767], dtype=np.int16)).tolist() == [0.0, 1.0]


def test_affinity_and_boundary_targets_known_answer():
    labels = np.zeros((2, 2, 3), dtype=np.int64)
    labels[0] = [[1, 1, 2], [1, 0, 2]]
    labels[1] = [[1, 1, 2], [3, 3, 2]]
    targets, mask = affinity_targets(labels)
    assert targets.shape == mask.shape == (3, 2, 2, 3)
    # x links (v, v - x): 1-1 same, 1-2 differ; 1-0 and 0-2 unknown
    np.testing.assert_array_equal(targets[2, 0], [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask[2, 0], [[False, True, True], [False, False, False]])
    # z links: (1, ., .) against (0, ., .); the first z slice has no neighbour
    np.testing.assert_array_equal(targets[0, 1], [[1, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(mask[0, 1], [[True, True, True], [True, False, True]])
    assert not mask[0, 0].any() and not mask[1, :, 0].any()
    boundary, known = boundary_targets(labels)
    assert boundary.shape == known.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(known[0], labels != 0)
    np.testing.assert_array_equal(boundary[0, 1], [[1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(boundary[0, 0], [[0, 1, 1], [1, 0, 0]])   # 0 next to 0 is not a boundary


def test_affinity_convention_matches_the_synthetic_module():
    synthetic = pytest.importorskip("services.segmentation.core.synthetic")
    _, labels = voronoi_volume(3, shape=(6, 7, 8))
    labels[0, :2, :3] = 0
    np.testing.assert_array_equal(affinity_targets(labels)[0], synthetic.affinities_from_labels(labels))


# ---- augmentations keep raw, labels and targets aligned


def index_volume(shape):
    """Raw = the flat index of every voxel, so an augmented patch says where each voxel came from."""
    return np.arange(np.prod(shape)).reshape(shape)


def assert_targets_follow_the_voxels(origin, labels_aug, labels):
    """``origin`` (augmented) holds each voxel's flat index in the original volume: the labels
    must have moved with it, every link of the augmented patch must join two voxels that are
    neighbours in the original, and its target must be the original pair's."""
    np.testing.assert_array_equal(labels_aug, labels.reshape(-1)[origin])
    targets, mask = affinity_targets(labels_aug)
    flat = labels.reshape(-1)
    for axis in range(3):
        here, there = shifted(axis)
        a, b = origin[here], origin[there]
        distance = np.abs(np.array(np.unravel_index(a, labels.shape)) - np.array(np.unravel_index(b, labels.shape)))
        assert np.all(distance.sum(axis=0) == 1), "a link of the augmented patch joins non-neighbours"
        expected = (flat[a] == flat[b]) & (flat[a] != 0) & (flat[b] != 0)
        np.testing.assert_array_equal(targets[axis][here], expected)
        np.testing.assert_array_equal(mask[axis][here], (flat[a] != 0) & (flat[b] != 0))


@pytest.fixture
def small_labels():
    _, labels = voronoi_volume(5, shape=(6, 7, 8), n_cells=5)
    labels[2, 3:, :4] = 0          # an unlabelled corner
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_flips_keep_raw_labels_and_targets_aligned(seed, small_labels):
    origin, labels = random_flip(index_volume(small_labels.shape), small_labels, np.random.default_rng(seed))
    assert_targets_follow_the_voxels(origin, labels, small_labels)


def test_flip_along_x_gives_the_flipped_and_shifted_targets_of_the_original(small_labels):
    targets, mask = affinity_targets(small_labels)
    flipped = affinity_targets(np.flip(small_labels, 2))
    # link (x, x - 1) of the flipped volume is link (X - 1 - x + 1, X - 1 - x) of the original
    np.testing.assert_array_equal(flipped[0][2][..., 1:], np.flip(targets[2], 2)[..., :-1])
    np.testing.assert_array_equal(flipped[1][2][..., 1:], np.flip(mask[2], 2)[..., :-1])
    # links along the other axes just flip
    np.testing.assert_array_equal(flipped[0][:2], np.flip(targets[:2], 3))


@pytest.mark.parametrize("isotropic", [True, False])
def test_transposes_keep_raw_labels_and_targets_aligned(isotropic, small_labels):
    orders = set()
    for seed in range(40):
        origin, labels = random_transpose(index_volume(small_labels.shape), small_labels,
                                          np.random.default_rng(seed), isotropic=isotropic)
        orders.add(origin.shape)
        assert_targets_follow_the_voxels(origin, labels, small_labels)
    assert len(orders) == (6 if isotropic else 2)
    # the y/x swap also swaps the y and x target channels
    targets, _ = affinity_targets(small_labels)
    swapped, _ = affinity_targets(transpose_axes(small_labels, small_labels, (0, 2, 1))[1])
    np.testing.assert_array_equal(swapped[1], targets[2].transpose(0, 2, 1))


@pytest.mark.parametrize("isotropic", [True, False])
def test_sampled_training_patches_are_aligned_after_all_augmentations(isotropic):
    _, labels = voronoi_volume(2, shape=(16, 20, 24), n_cells=6)
    raw = index_volume(labels.shape) / (labels.size - 1)          # exact in float32
    rng = np.random.default_rng(0)
    for _ in range(8):
        patch, targets, mask = training._sample_patch(
            raw.astype(np.float32), labels, rng, patch_shape=(8, 12, 16),
            augmentation=Augmentation(contrast=0, brightness=0, gamma=0, missing_section=0),
            isotropic=isotropic, target="affinities")
        assert patch.shape == (8, 12, 16) and targets.shape == mask.shape == (3, 8, 12, 16)
        origin = np.rint(patch.astype(np.float64) * (labels.size - 1)).astype(np.int64)
        if not isotropic:   # z stays z
            z = np.unravel_index(origin, labels.shape)[0]
            assert np.all(np.ptp(z, axis=(1, 2)) == 0)
        labels_aug = labels.reshape(-1)[origin]
        assert_targets_follow_the_voxels(origin, labels_aug, labels)
        expected, expected_mask = affinity_targets(labels_aug)
        np.testing.assert_array_equal(targets, expected)
        np.testing.assert_array_equal(mask, expected_mask)


def test_intensity_jitter_is_monotone_and_stays_in_range():
    raw = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    order = np.argsort(raw, axis=None, kind="stable")
    for seed in range(5):
        out = jitter_intensity(raw, np.random.default_rng(seed), contrast=0.3, brightness=0.2, gamma=0.5)
        assert out.shape == raw.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert np.all(np.diff(out.reshape(-1)[order]) >= -1e-7)     # voxel ranks kept: nothing moves
        assert not np.allclose(out, raw)
    same = jitter_intensity(raw, np.random.default_rng(0), contrast=0, brightness=0, gamma=0)
    np.testing.assert_allclose(same, raw, atol=1e-7)


def test_missing_section_blanks_exactly_one_z_slice():
    raw = np.full((5, 3, 4), 0.6, dtype=np.float32)
    blanked = {}
    for seed in range(10):
        out = blank_section(raw, np.random.default_rng(seed))
        blank = [z for z in range(5) if np.all(out[z] == 0)]
        assert len(blank) == 1 and np.all(np.delete(out, blank[0], axis=0) == 0.6)
        blanked[blank[0]] = True
    assert len(blanked) > 1 and np.all(raw == 0.6)      # the input is left alone


# ---- loss


def test_balanced_loss_gives_each_class_half_and_ignores_masked_voxels():
    targets = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    mask = torch.tensor([True, True, True, True, True, False])
    logits = torch.tensor([2.0, 1.0, -1.0, 0.5, 0.3, -9.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    expected = 0.5 * bce[:4].mean() + 0.5 * bce[4]
    assert torch.isclose(balanced_bce_loss(logits, targets, mask), expected)
    changed = logits.clone()
    changed[5] = 9.0                           # a masked voxel changes nothing
    assert torch.isclose(balanced_bce_loss(changed, targets, mask), expected)
    only_pos = balanced_bce_loss(logits[:4], targets[:4], mask[:4])
    assert torch.isclose(only_pos, bce[:4].mean())
    assert float(balanced_bce_loss(logits, targets, torch.zeros(6, dtype=torch.bool))) == 0.0


# ---- learning


def test_training_lowers_the_loss_and_predicts_held_out_boundaries(trained):
    model, history, reports = trained
    losses = history["loss"]
    assert losses.shape == (200,) and np.all(np.isfinite(losses))
    first, last = losses[:10].mean(), losses[-20:].mean()
    assert last < 0.6 * first, (first, last)
    assert not model.training and history["best_iteration"] == 200
    raw, labels = voronoi_volume(1)                  # held out: another seed
    affinities = predict_affinities(model, raw, patch_shape=(32, 32, 32), device="cpu")
    assert affinities.shape == (3, 24, 24, 24) and affinities.dtype == np.float32
    assert affinity_auc(affinities, labels) > 0.9
    # tiled into 16^3 windows: still good, and close to the one-piece prediction (not equal:
    # GroupNorm statistics and zero padding make a U-Net's output depend on its window)
    tiled = predict_affinities(model, raw, patch_shape=(16, 16, 16), overlap=8, batch_size=4, device="cpu")
    assert affinity_auc(tiled, labels) > 0.9
    assert np.abs(tiled - affinities).mean() < 0.06


def test_channels_last_and_bfloat16_inference_agree_with_float32(trained):
    model, _, _ = trained
    raw, labels = voronoi_volume(1)
    kwargs = dict(patch_shape=(16, 16, 16), overlap=8, batch_size=2, device="cpu")
    reference = predict_affinities(model, raw, **kwargs)
    # a memory layout only: the same numbers up to float32 rounding
    np.testing.assert_allclose(predict_affinities(model, raw, channels_last=True, **kwargs), reference, atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())            # the model's layout restored
    # bfloat16 keeps 8 bits of mantissa: probabilities move by a few hundredths at most, and
    # the held-out boundaries are found as well
    bf16 = predict_affinities(model, raw, precision="bfloat16", channels_last=True, **kwargs)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - reference).max() < 0.05 and np.abs(bf16 - reference).mean() < 0.01
    assert affinity_auc(bf16, labels) > 0.9


def test_cosine_schedule():
    rates = [cosine_learning_rate(0.01, k, 101) for k in range(101)]
    assert rates[0] == 0.01 and rates[-1] == pytest.approx(0.01 * COSINE_FINAL_FRACTION)
    assert rates[50] == pytest.approx(0.5 * (0.01 + 0.01 * COSINE_FINAL_FRACTION))    # halfway: the mean
    assert all(a > b for a, b in zip(rates, rates[1:]))
    raw, labels = voronoi_volume(0)
    kwargs = dict(config=UNetConfig(levels=2, base_channels=4), iterations=30, batch_size=1,
                  patch_shape=(16, 16, 16), learning_rate=0.01, seed=0, device="cpu")
    cosine, history = train_boundary_model(raw, labels, lr_schedule="cosine", **kwargs)
    again, _ = train_boundary_model(raw, labels, lr_schedule="cosine", **kwargs)
    constant, _ = train_boundary_model(raw, labels, **kwargs)
    assert np.all(np.isfinite(history["loss"]))
    first = lambda m: next(m.parameters()).detach()                     # noqa: E731
    assert torch.equal(first(cosine), first(again))                     # deterministic
    assert not torch.equal(first(cosine), first(constant))               # the rates differ after step 1


def test_reports_cover_the_run(trained):
    _, _, reports = trained
    assert len(reports) == 100 and all(r["stage"] == "train" for r in reports)
    fractions = [r["fraction_done"] for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert reports[-1]["message"].startswith("iteration 200 of 200: loss ")


def test_same_seed_same_model():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    kwargs = dict(config=TINY, iterations=3, batch_size=1, patch_shape=(4, 4, 4), seed=7, device="cpu")
    first, h1 = train_boundary_model(raw, labels, **kwargs)
    second, h2 = train_boundary_model(raw, labels, **kwargs)
    np.testing.assert_array_equal(h1["loss"], h2["loss"])
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    _, h3 = train_boundary_model(raw, labels, **{**kwargs, "seed": 8})
    assert not np.array_equal(h1["loss"], h3["loss"])


def test_boundary_target_training_and_prediction():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    model, history = train_boundary_model(raw, labels, config=UNetConfig(levels=2, base_channels=2,
                                                                         target="boundaries"),
                                          iterations=2, batch_size=1, patch_shape=(8, 8, 8), device="cpu")
    out = predict_affinities(model, raw, patch_shape=(8, 8, 8), device="cpu")
    assert out.shape == (1, 8, 8, 8) and out.min() >= 0 and out.max() <= 1


def test_anisotropic_training_runs_on_thin_patches():
    raw, labels = voronoi_volume(0, shape=(4, 16, 16), n_cells=3)
    config = UNetConfig(levels=3, base_channels=2, anisotropic=True)
    model, history = train_boundary_model(raw, labels, config=config, iterations=2, batch_size=2,
                                          patch_shape=(2, 8, 12), device="cpu")
    assert history["patch_shape"] == (2, 8, 12)
    assert predict_affinities(model, raw, patch_shape=(2, 8, 8), overlap=(0, 4, 4)).shape == (3, 4, 16, 16)


def test_validation_keeps_the_best_weights():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    val_raw, val_labels = voronoi_volume(1, shape=(8, 12, 8), n_cells=3)
    model, history = train_boundary_model(raw, labels, config=TINY, iterations=4, batch_size=1,
                                          patch_shape=(4, 4, 4), learning_rate=0.05, device="cpu",
                                          validation=(val_raw, val_labels))
    assert history["validation_iteration"].tolist() == [1, 2, 3, 4]
    assert history["validation_loss"].shape == (4,)
    best = history["validation_iteration"][np.argmin(history["validation_loss"])]
    assert history["best_iteration"] == best
    assert np.isclose(training._batch_loss(model, training._validation_patches(
        normalize_intensity(val_raw), val_labels, (4, 4, 4), "affinities"), torch.device("cpu")),
        history["validation_loss"].min())


# ---- checkpoints, progress, cancellation


def test_checkpoints_round_trip_to_identical_predictions():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    saved = []
    model, history = train_boundary_model(raw, labels, config=TINY, iterations=6, batch_size=1,
                                          patch_shape=(4, 8, 8), device="cpu", checkpoint_every=3,
                                          checkpoint_fn=saved.append)
    assert len(saved) == 2 and all(isinstance(b, bytes) for b in saved)
    info = checkpoint_info(saved[-1])
    assert info["iteration"] == 6 and info["loss"] == pytest.approx(history["loss"][-1])
    assert info["config"] == TINY.to_dict() and info["metadata"]["patch_shape"] == [4, 8, 8]
    assert checkpoint_info(saved[0])["iteration"] == 3
    # plain tensors, strings and numbers only: the safe loader reads it
    payload = torch.load(io.BytesIO(saved[-1]), weights_only=True)
    assert set(payload["state_dict"]) == set(model.state_dict())
    again = load_checkpoint(saved[-1])
    assert isinstance(again, BoundaryUNet) and not again.training and again.config == TINY
    kwargs = dict(patch_shape=(4, 8, 8), overlap=2, device="cpu")
    np.testing.assert_array_equal(predict_affinities(again, raw, **kwargs), predict_affinities(model, raw, **kwargs))
    earlier = predict_affinities(load_checkpoint(saved[0]), raw, **kwargs)
    assert not np.array_equal(earlier, predict_affinities(model, raw, **kwargs))
    # the final model, saved explicitly, also round-trips
    np.testing.assert_array_equal(predict_affinities(load_checkpoint(save_checkpoint(model)), raw, **kwargs),
                                  predict_affinities(model, raw, **kwargs))


def test_bad_checkpoints_raise():
    with pytest.raises(ValueError, match="not a NeuroMesh boundary-model checkpoint"):
        load_checkpoint(b"not a checkpoint")
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    with pytest.raises(ValueError, match="no format marker"):
        load_checkpoint(buffer.getvalue())
    data = save_checkpoint(BoundaryUNet(TINY))
    payload = torch.load(io.BytesIO(data), weights_only=True)
    payload["config"]["base_channels"] = 3
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with pytest.raises(ValueError, match="do not match its U-Net config"):
        load_checkpoint(buffer.getvalue())
    with pytest.raises(ValueError, match="needs a BoundaryUNet"):
        save_checkpoint(torch.nn.Linear(1, 1))


def test_a_raising_report_cancels_training_at_once():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    calls, saved = [], []

    def report(**kwargs):
        calls.append(kwargs)
        if len(calls) == 3:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        train_boundary_model(raw, labels, config=TINY, iterations=50, batch_size=1, patch_shape=(4, 4, 4),
                             device="cpu", report=report, checkpoint_every=1, checkpoint_fn=saved.append)
    assert len(calls) == 3 and [c["fraction_done"] for c in calls] == [0.02, 0.04, 0.06]
    assert len(saved) == 3                 # no step after the third


def test_prediction_reports_and_can_be_cancelled():
    raw = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    calls = []
    predict_affinities(Pointwise(), raw, patch_shape=(4, 4, 4), overlap=0, batch_size=3,
                       report=lambda **kw: calls.append(kw))
    assert [c["fraction_done"] for c in calls] == [3 / 8, 6 / 8, 1.0] and calls[0]["stage"] == "predict"

    def stop(**kwargs):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        predict_affinities(Pointwise(), raw, patch_shape=(4, 4, 4), overlap=0, report=stop)


# ---- tiled inference


@pytest.mark.parametrize("patch, overlap, batch_size", [((8, 8, 8), 3, 1), ((4, 6, 8), (2, 1, 0), 5),
                                                        ((6, 10, 4), (5, 5, 2), 2)])
def test_tiling_is_seamless(patch, overlap, batch_size):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(13, 21, 18)).astype(np.uint8)      # no axis a multiple of the patch
    model = Pointwise()
    whole = predict_affinities(model, raw, patch_shape=(32, 32, 32), device="cpu")   # one window
    tiled = predict_affinities(model, raw, patch_shape=patch, overlap=overlap, batch_size=batch_size, device="cpu")
    assert tiled.shape == whole.shape == (3, 13, 21, 18)
    np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)
    expected = torch.sigmoid(model(torch.from_numpy(normalize_intensity(np.pad(raw, ((0, 1), (0, 1), (0, 0)))))
                                   [None, None]))[0, :, :13, :21, :18].detach().numpy()
    np.testing.assert_allclose(whole, expected, atol=1e-6)


def test_tiling_reads_and_writes_zarr_arrays():
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(11, 14, 17)).astype(np.uint8)
    source = zarr.create_array(store=zarr.storage.MemoryStore(), shape=raw.shape, chunks=(4, 5, 6), dtype="uint8")
    source[...] = raw
    # never initialised: NaN everywhere until written
    target = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(1,) + raw.shape, chunks=(1, 3, 7, 5),
                               dtype="float32", fill_value=float("nan"))
    model = Pointwise(target="boundaries")
    returned = predict_affinities(model, source, patch_shape=(4, 6, 8), overlap=2, batch_size=2, out=target)
    assert returned is target
    written = target[...]
    assert not np.isnan(written).any()
    np.testing.assert_allclose(written, predict_affinities(model, raw, patch_shape=(12, 16, 18)), atol=1e-5)
    numpy_out = np.full((1,) + raw.shape, np.nan, dtype=np.float32)
    predict_affinities(model, raw, patch_shape=(4, 6, 8), overlap=2, out=numpy_out)
    np.testing.assert_allclose(numpy_out, written, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_training_and_prediction():
    raw, labels = voronoi_volume(0, shape=(8, 8, 8), n_cells=3)
    model, history = train_boundary_model(raw, labels, config=TINY, iterations=2, batch_size=1,
                                          patch_shape=(4, 4, 4), device="cuda")
    assert history["device"].startswith("cuda") and next(model.parameters()).is_cuda
    cpu = predict_affinities(load_checkpoint(save_checkpoint(model)), raw, patch_shape=(8, 8, 8), device="cpu")
    np.testing.assert_allclose(predict_affinities(model, raw, patch_shape=(8, 8, 8), device="cuda"), cpu, atol=1e-4)


# ---- input checks


def good_volume():
    return voronoi_volume(0, shape=(8, 8, 8), n_cells=3)


@pytest.mark.parametrize("change, message", [
    (lambda raw, labels, kw: (raw[0], labels, kw), r"raw must be a 3-D \(z, y, x\) volume, got shape \(8, 8\)"),
    (lambda raw, labels, kw: (raw, labels[:, :, :4], kw), r"labels shape \(8, 8, 4\) does not match raw shape"),
    (lambda raw, labels, kw: (np.where(np.arange(8) == 3, np.nan, raw / 255.0), labels, kw), "raw holds NaN"),
    (lambda raw, labels, kw: (raw / 100.0, labels, kw), r"must be scaled to \[0, 1\]"),
    (lambda raw, labels, kw: (raw, labels.astype(float), kw), "integer object ids"),
    (lambda raw, labels, kw: (raw, 0 * labels, kw), "no labelled voxel"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "patch_shape": (3, 4, 4)}),
     r"patch_shape \(z, y, x\) = \(3, 4, 4\) is not divisible .* next valid shape is \(4, 4, 4\)"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "patch_shape": (4, 4)}), "patch_shape must be 3 sizes"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "patch_shape": (16, 4, 4)}), "larger than the volume"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "iterations": 0}), "iterations must be an integer >= 1"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "batch_size": 0}), "batch_size must be an integer >= 1"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "learning_rate": 0.0}), "learning_rate"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "checkpoint_every": 2}), "checkpoint_fn is None"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "device": "tpu"}), "device must be one of"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "validation": (raw[:2], labels[:2])}),
     "larger than the volume"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "config": {"levels": 1}}), "levels must be an integer >= 2"),
    (lambda raw, labels, kw: (raw, labels, {**kw, "lr_schedule": "linear"}), "lr_schedule must be one of"),
])
def test_bad_training_inputs_raise_naming_the_problem(change, message):
    raw, labels = good_volume()
    raw, labels, kwargs = change(raw, labels, dict(config=TINY, iterations=1, batch_size=1, patch_shape=(4, 4, 4),
                                                   device="cpu"))
    with pytest.raises(ValueError, match=message):
        train_boundary_model(raw, labels, **kwargs)


@pytest.mark.parametrize("raw, kwargs, message", [
    (np.zeros((8, 8)), {}, r"raw must be a 3-D \(z, y, x\) volume"),
    (np.full((8, 8, 8), np.nan), {}, r"raw block \[0:8, 0:8, 0:8\] holds NaN"),
    (np.zeros((8, 8, 8)), {"patch_shape": (5, 8, 8)}, "not divisible by the U-Net's total pooling factor"),
    (np.zeros((8, 8, 8)), {"overlap": 8}, "overlap along z must be smaller than the patch"),
    (np.zeros((8, 8, 8)), {"overlap": (1, 2)}, "overlap must be an integer or 3 integers"),
    (np.zeros((8, 8, 8)), {"out": np.zeros((3, 8, 8, 4), np.float32)}, r"out has shape \(3, 8, 8, 4\)"),
    (np.zeros((8, 8, 8)), {"batch_size": 0}, "batch_size must be an integer >= 1"),
    (np.zeros((8, 8, 8)), {"precision": "float16"}, "precision must be one of"),
    (np.zeros((8, 8, 8)), {"channels_last": "yes"}, "channels_last must be True or False"),
])
def test_bad_prediction_inputs_raise_naming_the_problem(raw, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predict_affinities(Pointwise(), raw, **{"patch_shape": (8, 8, 8), **kwargs})
    with pytest.raises(ValueError, match="model must be a BoundaryUNet"):
        predict_affinities(torch.nn.Identity(), np.zeros((8, 8, 8)))
