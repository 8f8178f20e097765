"""Neuron segmentation on real EM: the boundary U-Net pipeline against a classical watershed, side by side.

The data: FIB-25 ``training_sample2`` (FlyEM, Janelia Research Campus; CC-BY), a 250^3 FIB-SEM
volume of Drosophila medulla at 10 nm isotropic with dense ground truth, from
``shared/data/fib25_training_sample2.npz`` (``--data``). It is cut along z into three slabs that
never share a voxel:

* **training** ``z < 100`` (``--train-z``): the only voxels whose labels the U-Net is trained on;
* **validation** ``100 <= z < 175`` (``--val-z``): the training's model selection (lowest
  validation loss) and *every* choice of parameters of both pipelines (watershed seeds,
  agglomeration threshold, small-fragment size; the baseline's smoothing and seeds). It is the
  held-out top of the training slab ``z < 150`` plus the gap ``150 <= z < 175``: 75 slices, as
  thick as the scoring slab. ``150..175`` alone is 59 % one body (the sum of squared body
  fractions, which the Rand scores weigh by, is 0.35 there, 0.14 in the scoring slab and 0.19
  in ``100..175``), so thresholds chosen on it alone would be chosen for a different volume;
* **scoring** ``z >= 175`` (``--test-z``): scored once per pipeline with the parameters chosen
  on validation.

NeuroMesh pipeline (``services.segmentation.core``):

1. :func:`train_boundary_model` (nearest-neighbour affinities, balanced BCE, flips, transposes
   and intensity jitter; Adam with a cosine-decayed rate, ``--lr-schedule``) on the training slab for ``--train-minutes`` of wall time on
   ``--threads`` torch threads: a few iterations are timed first, the iteration count is set from
   that, and a deadline at 1.25x the budget stops a run that the machine slowed down (the last
   checkpoint is used then). The model is saved under ``~/.cache/neuromesh/bench/``;
   ``--reuse-model`` loads it instead of training (same architecture, patch, rate and seed).
2. :func:`predict_affinities` over the slab (``--infer-patch``, ``--infer-overlap``,
   ``--infer-batch``; bfloat16 in the channels_last_3d layout, ``--precision``; the float32
   result at the chosen parameters is scored on validation alongside);
3. :func:`affinities_to_boundaries` (``min`` or ``mean`` of each voxel's links, optionally
   Gaussian-smoothed), :func:`seeded_watershed` fragments (distance-transform seeds, capped at
   a depth or not; the native bucket-queue flood);
4. :func:`region_adjacency_graph` on the affinities and :func:`agglomerate` (average linkage on
   mean affinity), cut at a threshold; :func:`remove_small_fragments`.

Reference (what a user writes with scikit-image alone): the Gaussian-smoothed intensity
(membranes are dark, so ``1 - smoothed / 255``) as the boundary map and
:func:`skimage.segmentation.watershed` from seeds that are either the h-minima of the map
(:func:`skimage.morphology.h_minima`) or the maxima of the distance transform of the voxels below
a quantile of the map (:func:`skimage.feature.peak_local_max`), the smoothing, the kind of seeds
and their parameter chosen by adapted Rand error on the validation slab.

Figures, on the scoring slab: adapted Rand error (ARAND), VOI split and merge (bits), the CREMI
score (:func:`segmentation_scores`; ground-truth label 0 ignored); throughput in megavoxels per
second of the scoring slab: the U-Net inference alone, the whole NeuroMesh pipeline (inference,
boundaries, watershed, graph, agglomeration, cut, clean-up) and the whole baseline (smoothing,
seeds, watershed), medians over ``--repeats`` runs, the side that goes first alternating; and
the ARAND of :func:`blockwise_segmentation` (``--blocks`` per axis, ``--halo`` grown to the
seed cap plus the seed distance where seeds are capped) on the same affinities and parameters
against the whole-volume result, stitched across block faces and not.

The parameters are chosen on the validation slab for both goals: the best four fragment
settings (each at its best cut) are run blockwise on validation too, and the one with the lowest
ARAND among those whose blockwise ARAND is within 0.005 of their whole-volume ARAND is taken
(none such: the lowest ARAND; ``--lowest-arand-choice`` skips this and takes the lowest ARAND).

Ratios (JSON ``"ratio"``, positive by convention; a non-positive one, possible only in tiny runs,
is left out): ``arand``, ``voi``, ``cremi`` = NeuroMesh / baseline (below 1 is better);
``pipeline_throughput`` and ``inference_throughput`` = NeuroMesh Mvox/s / baseline Mvox/s (above 1
is faster); ``blockwise_arand`` = blockwise / whole-volume ARAND.

Run from the repository root::

    nice python bench/segmentation_bench.py --train-minutes 20 --threads 1 \\
        --json bench/results/segmentation_bench.json

(``--threads 2`` is the default for a machine of two free cores; where another process holds
one of them, two torch threads wait on each other at every barrier and a training step took
5-11 s against 0.9 s with one thread, so the recorded run used one.)

``--tiny`` is the smoke run: 32 x 32 voxels in y and x, slabs of 16 slices (train z 84..100,
validation 100..116, scoring 175..191), a two-level U-Net with 2 base channels trained for 20
iterations on one thread, one-point parameter grids.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import skimage
import threadpoolctl
import torch
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.morphology import h_minima
from skimage.segmentation import watershed

from services.segmentation.core.blockwise import blockwise_segmentation
from services.segmentation.core.metrics import segmentation_scores
from services.segmentation.core.training import (Augmentation, checkpoint_info, load_checkpoint,
                                                 predict_affinities, save_checkpoint, train_boundary_model)
from services.segmentation.core.unet import UNetConfig
from services.segmentation.core.watershed import (affinities_to_boundaries, agglomerate, region_adjacency_graph,
                                                  remove_small_fragments, seeded_watershed)

REPO = Path(__file__).resolve().parent.parent
DATA_NAME = "fib25_training_sample2.npz"
MODEL_DIR = Path.home() / ".cache" / "neuromesh" / "bench"

#: z slabs [start, stop) of the full run (never overlapping) and of the tiny run, which also
#: keeps only the first TINY_YX voxels in y and x
SLABS = {"train": (0, 100), "val": (100, 175), "test": (175, 250)}
TINY_SLABS = {"train": (84, 100), "val": (100, 116), "test": (175, 191)}
TINY_YX = 32

#: parameter grids searched on the validation slab (full run, tiny run)
GRIDS = {
    "full": {
        "reduce": ("min", "mean"),
        "smooth": (0.0,),
        "ws_threshold": (0.5, 0.7),
        "min_seed_distance": (4, 6),
        "max_seed_depth": (None, 4.0, 8.0),
        "merge_threshold": tuple(np.round(np.arange(0.1, 0.91, 0.1), 2)),
        "min_size": (0, 200, 1000),
        "baseline_sigma": (1.0, 2.0, 3.0),
        "baseline_h": (0.06, 0.1, 0.14, 0.2),
        "baseline_quantile": (0.6, 0.75),
        "baseline_min_distance": (10, 15),
    },
    "tiny": {
        "reduce": ("min",), "smooth": (0.0,), "ws_threshold": (0.5,), "min_seed_distance": (2,), "max_seed_depth": (None,),
        "merge_threshold": (0.3, 0.6, 0.9), "min_size": (0, 20),
        "baseline_sigma": (1.0,), "baseline_h": (0.05,), "baseline_quantile": (0.5,), "baseline_min_distance": (4,),
    },
}
#: the merge threshold is refined by this step on both sides of the best one of the grid
MERGE_REFINE = 0.05


def log(message: str) -> None:
    """Progress on stderr (a full run takes about half an hour); the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def find_data(path: Path | None) -> Path:
    if path is not None:
        return path
    for folder in (os.environ.get("NEUROMESH_DATA_DIR"), REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        if folder and (Path(folder) / DATA_NAME).is_file():
            return Path(folder) / DATA_NAME
    raise SystemExit(f"{DATA_NAME} not found in $NEUROMESH_DATA_DIR, ./shared/data or ../shared/data; pass --data")


def load_slabs(path: Path, slabs: dict, tiny: bool) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """``{name: (raw, gt, (z0, z1))}`` for the training, validation and scoring slabs."""
    with np.load(path) as data:
        raw, gt = data["raw"], data["gt"]
    if raw.shape != gt.shape or raw.ndim != 3:
        raise SystemExit(f"{path}: raw {raw.shape} and gt {gt.shape} must be the same 3-D shape")
    yx = slice(0, TINY_YX) if tiny else slice(None)
    out = {}
    for name, (z0, z1) in slabs.items():
        if z1 > raw.shape[0]:
            raise SystemExit(f"{path}: the {name} slab z {z0}:{z1} is beyond the volume's {raw.shape[0]} slices")
        out[name] = (np.ascontiguousarray(raw[z0:z1, yx, yx]), np.ascontiguousarray(gt[z0:z1, yx, yx]), (z0, z1))
    return out


def scores_dict(segmentation: np.ndarray, gt: np.ndarray) -> dict:
    s = segmentation_scores(segmentation, gt)
    return {"arand": s.adapted_rand_error, "voi_split": s.voi_split, "voi_merge": s.voi_merge, "voi": s.voi,
            "cremi": s.cremi_score, "rand_precision": s.rand_precision, "rand_recall": s.rand_recall,
            "n_segments": int(np.unique(segmentation).size)}


# ------------------------------------------------------------------------------------------------
# the U-Net: training within a wall-time budget, or the cached model


class _OutOfTime(Exception):
    pass


def model_path(args, config: UNetConfig) -> Path:
    """One file per architecture, patch, batch, rate, seed, slab and budget (iterations)."""
    key = json.dumps({"config": config.to_dict(), "patch": args.patch, "batch": args.batch_size, "lr": args.lr,
                      "seed": args.seed, "tiny": args.tiny, "train_z": args.train_z, "val_z": args.val_z,
                      "lr_schedule": args.lr_schedule,
                      "iterations": args.iterations,
                      "minutes": None if args.iterations else args.train_minutes}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return args.model_dir / f"segmentation_unet_{'tiny_' if args.tiny else ''}{digest}.pt"


def train_model(args, config: UNetConfig, slabs) -> tuple[torch.nn.Module, dict]:
    raw, gt, _ = slabs["train"]
    val_raw, val_gt, _ = slabs["val"]
    options = dict(config=config, batch_size=args.batch_size, patch_shape=tuple(args.patch),
                   learning_rate=args.lr, seed=args.seed, device="cpu", lr_schedule=args.lr_schedule,
                   augmentation=Augmentation(missing_section=0.0))  # FIB-SEM has no lost sections
    start = time.perf_counter()
    per_iteration = None
    iterations = args.iterations
    if iterations is None:
        # time a few iterations (each report is one step here), skipping the first two
        stamps = []
        train_boundary_model(raw, gt, iterations=args.calibration_iterations,
                             report=lambda **_: stamps.append(time.perf_counter()), **options)
        per_iteration = statistics.median(np.diff(stamps[1:])) if len(stamps) > 2 else (
            time.perf_counter() - start) / args.calibration_iterations
        left = args.train_minutes * 60 - (time.perf_counter() - start)
        # 20 validations of up to 8 patches cost about 5% more
        iterations = max(1, int(0.95 * left / per_iteration))
        log(f"training: {per_iteration:.2f} s per iteration -> {iterations} iterations")
    deadline = start + 1.25 * args.train_minutes * 60 if args.iterations is None else math.inf
    last_checkpoint: list[bytes] = []

    log_every = max(1, iterations // 10)
    logged = [-1]

    def report(fraction_done, stage, message):
        # the core reports about 100 times and at least once a second; log about 10 of them
        bucket = int(round(fraction_done * iterations)) // log_every
        if bucket > logged[0] or "validation" in message:
            logged[0] = bucket
            log(f"training: {message}")
        if time.perf_counter() > deadline:
            raise _OutOfTime

    train_start = time.perf_counter()
    stopped_early = False
    try:
        model, history = train_boundary_model(
            raw, gt, iterations=iterations, validation=(val_raw, val_gt), report=report,
            checkpoint_every=max(1, iterations // 20), checkpoint_fn=last_checkpoint.append, **options)
        history = {"best_iteration": history["best_iteration"],
                   "final_loss": float(np.mean(history["loss"][-max(1, iterations // 20):])),
                   "validation_iteration": history["validation_iteration"].tolist(),
                   "validation_loss": [float(v) for v in history["validation_loss"]]}
    except _OutOfTime:
        if not last_checkpoint:
            raise SystemExit("training ran past its deadline before the first checkpoint; give it more time")
        stopped_early = True
        model = load_checkpoint(last_checkpoint[-1])
        info = checkpoint_info(last_checkpoint[-1])
        history = {"best_iteration": info["iteration"], "final_loss": info["loss"]}
        log(f"training: deadline reached, using the checkpoint of iteration {info['iteration']}")
    info = {"iterations": iterations, "train_s": time.perf_counter() - train_start,
            "total_s": time.perf_counter() - start, "calibration_s_per_iteration": per_iteration,
            "stopped_at_deadline": stopped_early, **history}
    return model, info


def get_model(args, config: UNetConfig, slabs) -> tuple[torch.nn.Module, dict]:
    path = model_path(args, config)
    if args.reuse_model and path.is_file():
        data = path.read_bytes()
        meta = checkpoint_info(data)["metadata"]
        log(f"reusing {path} (trained {meta.get('iterations')} iterations)")
        return load_checkpoint(data), {**meta, "reused": str(path)}
    model, info = train_model(args, config, slabs)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the checkpoint holds plain numbers and strings only (it is read back with weights_only=True)
    info = json.loads(json.dumps(info, default=float))
    path.write_bytes(save_checkpoint(model, iteration=info["iterations"], metadata=info))
    log(f"saved the model to {path}")
    return model, {**info, "saved": str(path)}


def predict(args, model, raw: np.ndarray, precision: str | None = None) -> np.ndarray:
    return predict_affinities(model, raw, patch_shape=tuple(args.infer_patch), overlap=tuple(args.infer_overlap),
                              batch_size=args.infer_batch, device="cpu", precision=precision or args.precision,
                              channels_last=args.channels_last)


# ------------------------------------------------------------------------------------------------
# the NeuroMesh pipeline after inference


def boundary_map(affinities: np.ndarray, reduce: str, smooth: float) -> np.ndarray:
    boundaries = affinities_to_boundaries(affinities, reduce=reduce)
    return ndimage.gaussian_filter(boundaries, smooth) if smooth > 0 else boundaries


def fragment_fn(params: dict):
    """Fragments of a block of affinities (channels first), for whole volumes and blocks alike."""
    def fragments(affinities):
        return seeded_watershed(boundary_map(affinities, params["reduce"], params["smooth"]),
                                threshold=params["ws_threshold"], min_seed_distance=params["min_seed_distance"],
                                max_seed_depth=params["max_seed_depth"])
    return fragments


def cut(tree, threshold: float, min_size: int, fragments=None) -> np.ndarray:
    segmentation = tree.segmentation(threshold, fragments)
    return remove_small_fragments(segmentation, min_size) if min_size > 1 else segmentation


def segment(affinities: np.ndarray, params: dict, timings: dict | None = None) -> np.ndarray:
    """Boundaries, fragments, graph, agglomeration, cut and clean-up (each stage timed into ``timings``)."""
    stamps = [time.perf_counter()]
    fragments = fragment_fn(params)(affinities)
    stamps.append(time.perf_counter())
    tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities))
    stamps.append(time.perf_counter())
    segmentation = cut(tree, params["merge_threshold"], params["min_size"])
    stamps.append(time.perf_counter())
    if timings is not None:
        for name, a, b in zip(("watershed_s", "agglomeration_s", "cut_s"), stamps, stamps[1:]):
            timings.setdefault(name, []).append(b - a)
    return segmentation


def tune_pipeline(affinities: np.ndarray, gt: np.ndarray, grid: dict) -> tuple[dict, list]:
    """Parameters with the lowest validation ARAND: fragments x merge threshold first (no
    clean-up), then the small-fragment size at the best few of those."""
    trials, trees = [], {}
    for reduce, smooth, ws_threshold, distance, depth in itertools.product(
            grid["reduce"], grid["smooth"], grid["ws_threshold"], grid["min_seed_distance"], grid["max_seed_depth"]):
        params = {"reduce": reduce, "smooth": smooth, "ws_threshold": ws_threshold, "min_seed_distance": distance,
                  "max_seed_depth": depth}
        start = time.perf_counter()
        fragments = fragment_fn(params)(affinities)
        tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities))
        key = tuple(params.values())
        trees[key] = tree
        local = []
        for threshold in grid["merge_threshold"]:
            s = scores_dict(cut(tree, float(threshold), 0), gt)
            local.append({**params, "merge_threshold": float(threshold), "min_size": 0, **s})
        centre = min(local, key=lambda t: t["arand"])["merge_threshold"]
        for threshold in (centre - MERGE_REFINE, centre + MERGE_REFINE):
            if 0 < threshold < 1 and not any(abs(t["merge_threshold"] - threshold) < 1e-9 for t in local):
                s = scores_dict(cut(tree, round(float(threshold), 4), 0), gt)
                local.append({**params, "merge_threshold": round(float(threshold), 4), "min_size": 0, **s})
        trials += local
        best = min(t["arand"] for t in local)
        log(f"  {params}: {int(fragments.max())} fragments, best ARAND {best:.4f} "
            f"({time.perf_counter() - start:.1f} s)")
    top = sorted(trials, key=lambda t: t["arand"])[:3]
    for trial in top:
        key = (trial["reduce"], trial["smooth"], trial["ws_threshold"], trial["min_seed_distance"],
               trial["max_seed_depth"])
        for min_size in grid["min_size"]:
            if min_size > 1:
                s = scores_dict(cut(trees[key], trial["merge_threshold"], min_size), gt)
                trials.append({**trial, "min_size": int(min_size), **s})
    best = min(trials, key=lambda t: t["arand"])
    params = {k: best[k] for k in PARAM_KEYS}
    return params, trials


PARAM_KEYS = ("reduce", "smooth", "ws_threshold", "min_seed_distance", "max_seed_depth", "merge_threshold", "min_size")
FRAGMENT_KEYS = PARAM_KEYS[:5]


def blockwise_geometry(args, params: dict, shape) -> tuple[tuple, tuple]:
    """Block shape (``--blocks`` per axis) and halo (``--halo``, grown to cap + seed distance
    for capped seed depths, where blocks then find the whole volume's seeds)."""
    block_shape = tuple(-(-s // n) for s, n in zip(shape, args.blocks))
    wanted = args.halo
    if params["max_seed_depth"] is not None:
        reach = math.ceil(params["max_seed_depth"]) + params["min_seed_distance"]
        wanted = [max(h, reach) for h in wanted]
    return block_shape, tuple(min(h, b) for h, b in zip(wanted, block_shape))


def run_blockwise(args, affinities: np.ndarray, params: dict, stitch: bool) -> tuple[np.ndarray, float, int, int]:
    """Segmentation, seconds, fragments and blocks of the blockwise pipeline with these parameters."""
    block_shape, halo = blockwise_geometry(args, params, affinities.shape[1:])
    start = time.perf_counter()
    result = blockwise_segmentation(affinities, fragment_fn(params), affinities, block_shape=block_shape,
                                    halo=halo, threshold=params["merge_threshold"], stitch=stitch)
    segmented = result.segmentation
    if params["min_size"] > 1:
        segmented = remove_small_fragments(segmented, params["min_size"])
    return segmented, time.perf_counter() - start, int(np.count_nonzero(np.unique(result.fragments))), \
        len(result.blocks)


def choose_blockwise_consistent(args, affinities: np.ndarray, gt: np.ndarray, trials: list) -> tuple[dict, list]:
    """The parameters, chosen on validation, for both goals: lowest whole-volume ARAND among
    the candidates whose blockwise ARAND (stitched) is within ``BLOCKWISE_TOLERANCE`` of their
    whole-volume one, on the validation slab; the best ``CONSISTENCY_CANDIDATES`` fragment
    settings (each at its best cut) are tried. None consistent: the lowest ARAND, as before."""
    best_per_setting = {}
    for trial in sorted(trials, key=lambda t: t["arand"]):
        best_per_setting.setdefault(tuple(trial[k] for k in FRAGMENT_KEYS), trial)
    candidates = list(best_per_setting.values())[:CONSISTENCY_CANDIDATES]
    checked = []
    for trial in candidates:
        params = {k: trial[k] for k in PARAM_KEYS}
        segmented, _, _, _ = run_blockwise(args, affinities, params, args.stitch)
        blockwise_arand = scores_dict(segmented, gt)["arand"]
        checked.append({**params, "arand": trial["arand"], "blockwise_arand": blockwise_arand,
                        "difference": blockwise_arand - trial["arand"]})
        log(f"  blockwise on validation {params}: ARAND {trial['arand']:.4f}, blockwise {blockwise_arand:.4f}")
    consistent = [c for c in checked if abs(c["difference"]) <= BLOCKWISE_TOLERANCE]
    chosen = min(consistent or checked, key=lambda c: c["arand"])
    return {k: chosen[k] for k in PARAM_KEYS}, checked


#: the validation choice asks of a candidate half the goal's margin (0.01) between blockwise and whole
BLOCKWISE_TOLERANCE = 0.005
CONSISTENCY_CANDIDATES = 4


# ------------------------------------------------------------------------------------------------
# the classical baseline, as a user writes it with scipy and scikit-image


def baseline_segment(raw: np.ndarray, params: dict) -> np.ndarray:
    boundaries = 1.0 - ndimage.gaussian_filter(raw.astype(np.float32) / 255.0, params["sigma"])
    if params["seeds"] == "h_minima":
        markers, _ = ndimage.label(h_minima(boundaries, params["h"]))
    else:
        foreground = boundaries < np.quantile(boundaries, params["quantile"])
        distance = ndimage.distance_transform_edt(foreground)
        peaks = peak_local_max(distance, min_distance=params["min_distance"], labels=ndimage.label(foreground)[0],
                               exclude_border=False)
        markers = np.zeros(raw.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(boundaries, markers)


def tune_baseline(raw: np.ndarray, gt: np.ndarray, grid: dict) -> tuple[dict, list]:
    candidates = []
    for sigma in grid["baseline_sigma"]:
        candidates += [{"sigma": sigma, "seeds": "h_minima", "h": h} for h in grid["baseline_h"]]
        candidates += [{"sigma": sigma, "seeds": "distance", "quantile": q, "min_distance": d}
                       for q, d in itertools.product(grid["baseline_quantile"], grid["baseline_min_distance"])]
    trials = []
    for params in candidates:
        start = time.perf_counter()
        s = scores_dict(baseline_segment(raw, params), gt)
        trials.append({**params, **s})
        log(f"  baseline {params}: ARAND {s['arand']:.4f}, {s['n_segments']} segments "
            f"({time.perf_counter() - start:.1f} s)")
    best = min(trials, key=lambda t: t["arand"])
    return {k: v for k, v in best.items() if k in ("sigma", "seeds", "h", "quantile", "min_distance")}, trials


# ------------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    value = a / b if b else math.nan
    return value if math.isfinite(value) and value > 0 else None


def run(args) -> dict:
    grid = GRIDS["tiny" if args.tiny else "full"]
    slabs = load_slabs(find_data(args.data), {"train": args.train_z, "val": args.val_z, "test": args.test_z},
                       args.tiny)
    config = UNetConfig(levels=args.levels, base_channels=args.base_channels, upsampling=args.upsampling)
    load_start = os.getloadavg()

    model, training = get_model(args, config, slabs)

    log("validation slab: affinities, then the parameters of both pipelines")
    val_raw, val_gt, _ = slabs["val"]
    val_affinities = predict(args, model, val_raw)
    params, trials = tune_pipeline(val_affinities, val_gt, grid)
    log(f"lowest validation ARAND: {params}")
    consistency_trials = []
    if args.consistent_choice:
        params, consistency_trials = choose_blockwise_consistent(args, val_affinities, val_gt, trials)
    log(f"chosen: {params}")
    # the inference precision is checked on validation too: the chosen parameters on float32
    # affinities against the ones used
    precision_check = {args.precision: min(trials, key=lambda t: t["arand"])["arand"]}
    if args.precision != "float32":
        reference = segment(predict(args, model, val_raw, precision="float32"), params)
        precision_check["float32"] = scores_dict(reference, val_gt)["arand"]
        log(f"validation ARAND at the chosen parameters: {precision_check}")
    baseline_params, baseline_trials = tune_baseline(val_raw, val_gt, grid)
    log(f"baseline chosen: {baseline_params}")
    val_scores = {"neuromesh": min(trials, key=lambda t: t["arand"]),
                  "baseline": min(baseline_trials, key=lambda t: t["arand"])}

    log("scoring slab: timed runs")
    raw, gt, _ = slabs["test"]
    n_voxels = raw.size
    times = {"inference_s": [], "pipeline_s": [], "baseline_s": []}
    stages: dict[str, list] = {}
    for repeat in range(args.repeats):
        order = ("neuromesh", "baseline") if repeat % 2 == 0 else ("baseline", "neuromesh")
        for side in order:
            start = time.perf_counter()
            if side == "baseline":
                baseline = baseline_segment(raw, baseline_params)
                times["baseline_s"].append(time.perf_counter() - start)
            else:
                affinities = predict(args, model, raw)
                times["inference_s"].append(time.perf_counter() - start)
                segmentation = segment(affinities, params, stages)
                times["pipeline_s"].append(time.perf_counter() - start)
        log(f"  repeat {repeat + 1}: inference {times['inference_s'][-1]:.1f} s, pipeline "
            f"{times['pipeline_s'][-1]:.1f} s, baseline {times['baseline_s'][-1]:.1f} s")
    median = {k: statistics.median(v) for k, v in {**times, **stages}.items()}

    log("scoring slab: scores and the blockwise run")
    scores = {"neuromesh": scores_dict(segmentation, gt), "baseline": scores_dict(baseline, gt)}
    block_shape, halo = blockwise_geometry(args, params, raw.shape)
    blockwise_runs = {stitch: run_blockwise(args, affinities, params, stitch) for stitch in (True, False)}
    blockwise, blockwise_s, n_block_fragments, n_blocks = blockwise_runs[args.stitch]
    throughput = {"inference": n_voxels / median["inference_s"] / 1e6,
                  "pipeline": n_voxels / median["pipeline_s"] / 1e6,
                  "baseline": n_voxels / median["baseline_s"] / 1e6,
                  # inference as timed above, then the blockwise watershed, graph, agglomeration and cut
                  "blockwise_pipeline": n_voxels / (median["inference_s"] + blockwise_s) / 1e6}
    scores["blockwise"] = scores_dict(blockwise, gt)
    unstitched = scores_dict(blockwise_runs[False][0], gt)
    n_fragments = int(np.count_nonzero(np.unique(fragment_fn(params)(affinities))))

    ours, ref = scores["neuromesh"], scores["baseline"]
    ratios = {"arand": ratio(ours["arand"], ref["arand"]), "voi": ratio(ours["voi"], ref["voi"]),
              "cremi": ratio(ours["cremi"], ref["cremi"]),
              "pipeline_throughput": ratio(throughput["pipeline"], throughput["baseline"]),
              "inference_throughput": ratio(throughput["inference"], throughput["baseline"]),
              "blockwise_arand": ratio(scores["blockwise"]["arand"], ours["arand"])}
    goals = {"arand_at_most_0.15": ours["arand"] <= 0.15, "pipeline_at_least_1_mvox_s": throughput["pipeline"] >= 1.0,
             "blockwise_within_0.01": abs(scores["blockwise"]["arand"] - ours["arand"]) <= 0.01}
    return {
        "tiny": args.tiny, "data": DATA_NAME, "slabs": {name: list(s[2]) for name, s in slabs.items()},
        "yx": list(slabs["test"][0].shape[1:]), "test_voxels": n_voxels, "unet": config.to_dict(),
        "train": {"patch": args.patch, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                  "lr_schedule": args.lr_schedule,
                  "threads": args.threads, "train_minutes": args.train_minutes, **training},
        "inference": {"patch": args.infer_patch, "overlap": args.infer_overlap, "batch": args.infer_batch,
                      "precision": args.precision, "channels_last": args.channels_last},
        "params": params, "baseline_params": baseline_params, "validation_scores": val_scores,
        "validation_trials": trials, "baseline_trials": baseline_trials,
        "precision_check_validation_arand": precision_check, "consistent_choice": args.consistent_choice,
        "blockwise_validation_trials": consistency_trials,
        "scores": scores, "blockwise": {"blocks": n_blocks, "block_shape": list(block_shape), "halo": list(halo),
                                        "stitch": args.stitch, "seconds": blockwise_s,
                                        "arand_difference": scores["blockwise"]["arand"] - ours["arand"],
                                        "fragments_whole": n_fragments, "fragments_blockwise": n_block_fragments,
                                        "fragments_unstitched": blockwise_runs[False][2],
                                        "unstitched_scores": unstitched,
                                        "unstitched_arand_difference": unstitched["arand"] - ours["arand"]},
        "seconds": median, "all_seconds": times, "throughput_mvox_s": throughput, "repeats": args.repeats,
        "goals": goals, "ratio": {k: v for k, v in ratios.items() if v is not None}, "all_ratios": ratios,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
                    "scipy": scipy.__version__, "skimage": skimage.__version__,
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
    }


def table(result: dict) -> str:
    s, t, r = result["scores"], result["throughput_mvox_s"], result["all_ratios"]
    train = result["train"]
    lines = [f"FIB-25 training_sample2 (FlyEM/Janelia): train z {result['slabs']['train']}, validation z "
             f"{result['slabs']['val']}, scored z {result['slabs']['test']} ({result['test_voxels'] / 1e6:.2f} Mvox); "
             f"U-Net levels {result['unet']['levels']}, base {result['unet']['base_channels']}, "
             f"{train.get('iterations')} iterations of patch {train['patch']} x {train['batch_size']}",
             f"{'method':12}{'ARAND':>8}{'VOI split':>11}{'VOI merge':>11}{'CREMI':>8}{'segments':>10}{'Mvox/s':>9}"]
    mvox = {"neuromesh": t["pipeline"], "baseline": t["baseline"], "blockwise": t["blockwise_pipeline"]}
    for name in ("neuromesh", "baseline", "blockwise"):
        row = s[name]
        speed = f"{mvox[name]:9.2f}" if mvox[name] else f"{'-':>9}"
        lines.append(f"{name:12}{row['arand']:8.4f}{row['voi_split']:11.3f}{row['voi_merge']:11.3f}"
                     f"{row['cremi']:8.4f}{row['n_segments']:10d}{speed}")
    sec = result["seconds"]
    lines.append(f"U-Net inference alone: {t['inference']:.2f} Mvox/s; NeuroMesh seconds: inference "
                 f"{sec['inference_s']:.1f}, watershed {sec['watershed_s']:.1f}, graph + agglomeration "
                 f"{sec['agglomeration_s']:.1f}, cut + clean-up {sec['cut_s']:.1f}; baseline {sec['baseline_s']:.1f}")
    lines.append(f"blockwise ({result['blockwise']['blocks']} blocks of {result['blockwise']['block_shape']}, halo "
                 f"{result['blockwise']['halo']}) - whole-volume ARAND: "
                 f"{result['blockwise']['arand_difference']:+.4f} (stitched: {result['blockwise']['stitch']}; "
                 f"unstitched {result['blockwise']['unstitched_arand_difference']:+.4f}; fragments whole "
                 f"{result['blockwise']['fragments_whole']}, blockwise {result['blockwise']['fragments_blockwise']}, "
                 f"unstitched {result['blockwise']['fragments_unstitched']}); "
                 f"load average {result['machine']['loadavg_start'][0]:.1f} at the start, "
                 f"{result['machine']['loadavg_end'][0]:.1f} at the end")

    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"
    lines.append("ratio = NeuroMesh / baseline: " + ", ".join(f"{k} {fmt(v)}" for k, v in r.items())
                 + " (scores: below 1 is better; throughput: above 1 is faster)")
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help=f"the {DATA_NAME} file (default: shared/data)")
    parser.add_argument("--tiny", action="store_true", help="the smoke run (32 x 32 in y, x; 20 iterations)")
    parser.add_argument("--train-minutes", type=float, default=20.0, help="wall-time budget of the training")
    parser.add_argument("--iterations", type=int, help="train exactly this many iterations instead of a time budget")
    parser.add_argument("--calibration-iterations", type=int, default=8, help="iterations timed to size the budget")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (and BLAS threads)")
    for name, help_text in (("train", "training"), ("val", "validation"), ("test", "scoring")):
        parser.add_argument(f"--{name}-z", type=int, nargs=2, metavar=("START", "STOP"),
                            help=f"z range of the {help_text} slab (default {SLABS[name][0]} {SLABS[name][1]})")
    parser.add_argument("--levels", type=int, default=3, help="U-Net resolution levels")
    parser.add_argument("--base-channels", type=int, default=8, help="U-Net feature maps at the finest level")
    parser.add_argument("--upsampling", default="transposed", choices=("transposed", "trilinear"))
    parser.add_argument("--patch", type=int, nargs=3, default=[48, 48, 48], metavar=("Z", "Y", "X"),
                        help="training patch (at most the validation slab along each axis)")
    parser.add_argument("--batch-size", type=int, default=2, help="training patches per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (initial, with --lr-schedule cosine)")
    parser.add_argument("--lr-schedule", default="cosine", choices=("constant", "cosine"),
                        help="learning-rate schedule over the planned iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--infer-patch", type=int, nargs=3, default=[80, 136, 256], metavar=("Z", "Y", "X"),
                        help="inference window (an axis longer than the slab gets one window)")
    parser.add_argument("--infer-overlap", type=int, nargs=3, default=[0, 22, 0], metavar=("Z", "Y", "X"))
    parser.add_argument("--infer-batch", type=int, default=2, help="windows per forward pass")
    parser.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"),
                        help="inference arithmetic (the float32 result is scored on validation alongside)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="inference in the default memory layout instead of channels_last_3d")
    parser.add_argument("--lowest-arand-choice", dest="consistent_choice", action="store_false",
                        help="choose the parameters by validation ARAND alone, not also by the blockwise "
                             "run's agreement on validation")
    parser.add_argument("--no-stitch", dest="stitch", action="store_false",
                        help="blockwise without stitching fragments across block faces (both are run; this "
                             "picks which one is the blockwise row)")
    parser.add_argument("--blocks", type=int, nargs=3, default=[2, 2, 2], metavar=("Z", "Y", "X"),
                        help="blocks per axis of the blockwise run")
    parser.add_argument("--halo", type=int, nargs=3, default=[8, 16, 16], metavar=("Z", "Y", "X"))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each pipeline on the scoring slab")
    parser.add_argument("--reuse-model", action="store_true", help="load the saved model of these settings if any")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        defaults = {"levels": 2, "base_channels": 2, "patch": [16, 16, 16], "batch_size": 1, "threads": 1,
                    "infer_patch": [32, 32, 32], "infer_overlap": [0, 0, 0], "infer_batch": 1, "halo": [4, 4, 4],
                    "repeats": 1}
        for name, value in defaults.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
        if args.iterations is None:
            args.iterations = 20
    for name in SLABS:
        if getattr(args, f"{name}_z") is None:
            setattr(args, f"{name}_z", list((TINY_SLABS if args.tiny else SLABS)[name]))
    ranges = sorted(tuple(getattr(args, f"{name}_z")) for name in SLABS)
    if any(a >= b for a, b in ranges) or any(ranges[i][1] > ranges[i + 1][0] for i in range(2)) or ranges[0][0] < 0:
        parser.error(f"the training, validation and scoring slabs must be non-empty and disjoint, got {ranges}")
    if min(args.levels - 1, args.base_channels, args.batch_size, args.threads, args.repeats, args.infer_batch,
           args.calibration_iterations, *args.blocks) < 1 or (args.iterations is not None and args.iterations < 1):
        parser.error("sizes, counts and --levels - 1 must be at least 1")
    if not args.train_minutes > 0 or not args.lr > 0:
        parser.error("--train-minutes and --lr must be > 0")

    torch.set_num_threads(args.threads)
    with threadpoolctl.threadpool_limits(limits=args.threads):
        result = run(args)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
