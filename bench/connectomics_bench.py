"""Diffusion-MRI connectome: the NeuroMesh pipeline against a plain dipy script, side by side.

Data: the diffusion phantom of ``services.connectomics.core.phantom`` at ``--size`` voxels per
side (2 mm voxels; three straight bundles of radius size/12 voxels, two of them crossing at 90
degrees; 1 b = 0 + 45 directions at b = 2000 s/mm^2; Rician noise at SNR 30), seeded in every
voxel with FA > 0.2 (``--seeds-per-voxel`` seeds each).

Sides, with the same settings (``--model`` CSD by default, step 0.5 mm, max angle 30 degrees, FA
threshold 0.2, streamlines kept between 10 and 250 mm, the same cap on the steps of each half):

* **dipy**: the single-process script a dipy user writes: ``TensorModel`` for FA,
  ``auto_response_ssst`` (ROI of radius 10 at the centre, ``size // 4`` on smaller grids, FA >
  0.7), the model fitted on the
  white-matter mask ``FA > 0.2``, a direction getter ``from_shcoeff`` (dipy's defaults: the SH
  evaluated at every step), ``ThresholdStoppingCriterion`` on FA, ``random_seeds_from_mask``,
  ``LocalTracking``, the length filter with ``dipy.tracking.streamline.length``, then
  ``connectivity_matrix``.
* **NeuroMesh**: ``dmri_connectome(..., n_processes=1)`` and ``n_processes=2`` (a spawn process
  pool; the pool's start-up is inside its tracking time), end to end.

Every process is held to one BLAS/OpenMP thread (``threadpoolctl``), as the service runs, so
"per process" is "per core". Figures per tracking method:

* ``tracked_per_s``: streamlines the tracker produced (before the length filter) per second of
  tracking wall time; ``tracked_per_cpu_s``: per second of the tracking's CPU time (summed over
  the processes, their start-up left out), which a shared machine's load changes much less;
  ``end_to_end_s``: from the arrays to the matrix (mask given);
* ground truth: the smallest count among the bundles' region pairs and the largest share of any
  other pair (both sides should find the same connections);
* binning: the 2-process tractogram binned by dipy's ``connectivity_matrix`` and by
  ``connectivity_matrices`` (counts only, and all three normalisations with the lengths they
  need), median of ``--repeats`` runs, streamlines per second.

Ratios (JSON ``"ratio"``, all positive): ``tracking_<method>_1proc`` and ``_2proc`` = NeuroMesh
streamlines/s over dipy's (above 1 is faster; ``_1proc`` is the per-core comparison),
``speedup_<method>`` = 2-process over 1-process streamlines/s, ``tracking_<method>_per_cpu_s`` =
NeuroMesh (1 process) over dipy streamlines per CPU-second, ``binning_count`` and
``binning_all`` = NeuroMesh binned streamlines/s over dipy's.

Run from the repository root::

    python bench/connectomics_bench.py --json bench/results/connectomics_bench.json

``--tiny`` is the smoke run: a 20-voxel phantom, one seed per voxel, probabilistic tracking only.
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
import threadpoolctl

METHODS = ("deterministic", "probabilistic")
PMF_THRESHOLD = {"csd": 0.1, "csa": 0.5}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ground_truth(count: np.ndarray, labels, pairs) -> dict:
    """Smallest count of a true pair and largest share of a false one, over the upper triangle."""
    labels = list(int(v) for v in labels)
    total = int(np.triu(count).sum())
    true_min, false_max = None, 0
    for i, a in enumerate(labels):
        for j in range(i, len(labels)):
            value = int(count[i, j])
            if (a, labels[j]) in pairs:
                true_min = value if true_min is None else min(true_min, value)
            else:
                false_max = max(false_max, value)
    return {"connecting": total, "true_pair_min": true_min or 0,
            "false_pair_max_fraction": false_max / total if total else 0.0}


# ================================================================================================
# the two sides


def plain_dipy(ph, method: str, args) -> dict:
    """What a dipy user writes for the same steps, in one process (timed in stages)."""
    from dipy.core.gradients import gradient_table
    from dipy.data import default_sphere
    from dipy.direction import DeterministicMaximumDirectionGetter, ProbabilisticDirectionGetter
    from dipy.reconst.csdeconv import ConstrainedSphericalDeconvModel, auto_response_ssst
    from dipy.reconst.dti import TensorModel
    from dipy.reconst.shm import CsaOdfModel
    from dipy.tracking.local_tracking import LocalTracking
    from dipy.tracking.stopping_criterion import ThresholdStoppingCriterion
    from dipy.tracking.streamline import Streamlines, length
    from dipy.tracking.utils import connectivity_matrix, random_seeds_from_mask

    start = time.perf_counter()
    gtab = gradient_table(ph.bvals, bvecs=ph.bvecs)
    fa = np.nan_to_num(TensorModel(gtab).fit(ph.dwi, mask=ph.mask).fa)
    white = ph.mask & (fa > args.fa_threshold)
    if args.model == "csd":
        # dipy's usual ROI of radius 10 at the centre; on the tiny phantom it would reach the air
        # outside the brain, whose noise voxels can pass FA > 0.7, so it shrinks with the grid
        response, _ = auto_response_ssst(gtab, ph.dwi, roi_radii=min(10, args.size // 4), fa_thr=0.7)
        fit = ConstrainedSphericalDeconvModel(gtab, response, sh_order_max=8).fit(ph.dwi, mask=white)
    else:
        fit = CsaOdfModel(gtab, 8).fit(ph.dwi, mask=white)
    getter_class = DeterministicMaximumDirectionGetter if method == "deterministic" else ProbabilisticDirectionGetter
    getter = getter_class.from_shcoeff(fit.shm_coeff, max_angle=args.max_angle, sphere=default_sphere,
                                       pmf_threshold=PMF_THRESHOLD[args.model])
    stopping = ThresholdStoppingCriterion(fa, args.fa_threshold)
    seeds = random_seeds_from_mask(white, ph.affine, seeds_count=args.seeds_per_voxel, seed_count_per_voxel=True,
                                   random_seed=args.seed)
    model_s = time.perf_counter() - start

    start, cpu = time.perf_counter(), time.thread_time()
    tracker = LocalTracking(getter, stopping, seeds, ph.affine, step_size=args.step_size,
                            maxlen=int(args.max_length // args.step_size) + 1, random_seed=args.seed)
    streamlines = Streamlines(tracker)
    tracking_s, tracking_cpu = time.perf_counter() - start, time.thread_time() - cpu
    n_tracked = len(streamlines)

    start = time.perf_counter()
    lengths = length(streamlines)
    kept = streamlines[(lengths >= args.min_length) & (lengths <= args.max_length)]
    matrix = connectivity_matrix(kept, ph.affine, ph.parcellation)
    binning_s = time.perf_counter() - start
    labels = np.unique(ph.parcellation)[1:]
    return {"n_seeds": int(len(seeds)), "n_tracked": n_tracked, "n_kept": len(kept), "model_s": model_s,
            "tracking_s": tracking_s, "binning_s": binning_s, "end_to_end_s": model_s + tracking_s + binning_s,
            "tracked_per_s": n_tracked / tracking_s, "tracking_cpu_s": tracking_cpu,
            "tracked_per_cpu_s": n_tracked / tracking_cpu,
            **ground_truth(matrix[np.ix_(labels, labels)], labels, ph.connected_pairs)}


def neuromesh(ph, method: str, n_processes: int, args):
    from services.connectomics.core.dmri import dmri_connectome
    start = time.perf_counter()
    result = dmri_connectome(ph.dwi, ph.bvals, ph.bvecs, ph.affine, ph.parcellation, mask=ph.mask, model=args.model,
                             tracking=method, seeds_per_voxel=args.seeds_per_voxel, step_size_mm=args.step_size,
                             max_angle_deg=args.max_angle, fa_threshold=args.fa_threshold,
                             min_length_mm=args.min_length, max_length_mm=args.max_length, n_processes=n_processes,
                             seed=args.seed)
    end_to_end = time.perf_counter() - start
    s = result.seconds
    row = {"n_seeds": result.n_seeds, "n_tracked": result.n_tracked, "n_kept": result.n_kept,
           "n_processes": result.n_processes, "batch_size": result.batch_size, "representation": result.representation,
           "model_s": s["mask"] + s["dti"] + s["model"], "tracking_s": s["tracking"], "binning_s": s["connectivity"],
           "end_to_end_s": end_to_end, "tracked_per_s": result.n_tracked / s["tracking"],
           "tracking_cpu_s": s["tracking_cpu"], "tracked_per_cpu_s": result.n_tracked / s["tracking_cpu"],
           **ground_truth(result.matrices["count"], result.labels, ph.connected_pairs)}
    return row, result


def binning(result, ph, repeats: int) -> dict:
    """dipy's connectivity_matrix against ours on one tractogram (median seconds of ``repeats``)."""
    from dipy.tracking.utils import connectivity_matrix

    from services.connectomics.core.connectivity import NORMALISATIONS, connectivity_matrices
    streamlines = result.streamlines
    runs = {"dipy": lambda: connectivity_matrix(streamlines, ph.affine, ph.parcellation),
            "neuromesh_count": lambda: connectivity_matrices(streamlines, ph.affine, ph.parcellation,
                                                             normalisations=("count",)),
            "neuromesh_all": lambda: connectivity_matrices(streamlines, ph.affine, ph.parcellation,
                                                           normalisations=NORMALISATIONS)}
    times = {name: [] for name in runs}
    for r in range(repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):   # alternate who goes first
            start = time.perf_counter()
            out = runs[name]()
            times[name].append(time.perf_counter() - start)
            if name == "dipy":
                theirs = out
            elif name == "neuromesh_count":
                ours = out
    labels = ours.labels
    equal = bool(np.array_equal(ours.matrices["count"], theirs[np.ix_(labels, labels)]))
    n = len(streamlines)
    return {"n_streamlines": n, "points": int(streamlines._data.shape[0]), "equal_to_dipy": equal,
            "seconds": {k: statistics.median(v) for k, v in times.items()},
            "per_s": {k: n / statistics.median(v) for k, v in times.items()}}


# ================================================================================================


def run(args) -> dict:
    from services.connectomics.core.phantom import diffusion_phantom
    load_start = os.getloadavg()
    start = time.perf_counter()
    ph = diffusion_phantom(size=args.size, n_directions=45, bval=2000.0, snr=30.0, seed=args.seed)
    phantom_s = time.perf_counter() - start
    log(f"phantom {ph.dwi.shape} in {phantom_s:.1f} s")
    runs, ratios, goals, last = {}, {}, {}, None
    for method in args.methods:
        rows = {}
        log(f"{method}: plain dipy")
        rows["dipy"] = plain_dipy(ph, method, args)
        log(f"  {rows['dipy']['n_tracked']} streamlines, {rows['dipy']['tracked_per_s']:.0f}/s")
        for n in (1, 2):
            log(f"{method}: NeuroMesh, {n} process{'es' if n > 1 else ''}")
            rows[f"neuromesh_{n}"], last = neuromesh(ph, method, n, args)
            log(f"  {rows[f'neuromesh_{n}']['n_tracked']} streamlines, {rows[f'neuromesh_{n}']['tracked_per_s']:.0f}/s")
        runs[method] = rows
        one, two, ref = (rows[k]["tracked_per_s"] for k in ("neuromesh_1", "neuromesh_2", "dipy"))
        ratios[f"tracking_{method}_1proc"] = one / ref
        ratios[f"tracking_{method}_2proc"] = two / ref
        ratios[f"speedup_{method}"] = two / one
        ratios[f"tracking_{method}_per_cpu_s"] = (rows["neuromesh_1"]["tracked_per_cpu_s"]
                                                  / rows["dipy"]["tracked_per_cpu_s"])
        goals[f"{method}_per_core_not_slower_than_dipy"] = one >= ref
        goals[f"{method}_speedup_at_least_1.7"] = two / one >= 1.7
        goals[f"{method}_same_streamlines_1_and_2_processes"] = (
            rows["neuromesh_1"]["n_kept"] == rows["neuromesh_2"]["n_kept"]
            and rows["neuromesh_1"]["connecting"] == rows["neuromesh_2"]["connecting"])
    log("binning")
    bins = binning(last, ph, args.repeats)
    ratios["binning_count"] = bins["per_s"]["neuromesh_count"] / bins["per_s"]["dipy"]
    ratios["binning_all"] = bins["per_s"]["neuromesh_all"] / bins["per_s"]["dipy"]
    goals["binning_equal_to_dipy"] = bins["equal_to_dipy"]
    goals["binning_at_least_200000_per_s"] = bins["per_s"]["neuromesh_all"] >= 200_000
    import dipy
    import nibabel
    return {
        "tiny": args.tiny,
        "config": {"size": args.size, "voxel_mm": 2.0, "n_directions": 45, "bval": 2000.0, "snr": 30.0,
                   "model": args.model, "methods": list(args.methods), "seeds_per_voxel": args.seeds_per_voxel,
                   "step_size_mm": args.step_size, "max_angle_deg": args.max_angle, "fa_threshold": args.fa_threshold,
                   "min_length_mm": args.min_length, "max_length_mm": args.max_length, "seed": args.seed,
                   "repeats": args.repeats},
        "phantom_s": phantom_s, "runs": runs, "binning": bins, "goals": goals, "ratio": ratios,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "numpy": np.__version__, "dipy": dipy.__version__, "nibabel": nibabel.__version__,
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
    }


def table(result: dict) -> str:
    c = result["config"]
    lines = [f"phantom {c['size']}^3 x 2 mm, {c['model'].upper()}, {c['seeds_per_voxel']} seed(s) per voxel, "
             f"step {c['step_size_mm']} mm, max angle {c['max_angle_deg']} deg, FA > {c['fa_threshold']}",
             f"{'method':14}{'side':14}{'seeds':>8}{'tracked':>9}{'kept':>8}{'track s':>9}{'tracked/s':>11}"
             f"{'cpu s':>8}{'/cpu s':>8}{'end-to-end s':>14}{'true min':>10}{'false max':>11}{'ratio':>8}"]
    for method, rows in result["runs"].items():
        ref = rows["dipy"]["tracked_per_s"]
        for side, row in rows.items():
            lines.append(f"{method:14}{side:14}{row['n_seeds']:8d}{row['n_tracked']:9d}{row['n_kept']:8d}"
                         f"{row['tracking_s']:9.1f}{row['tracked_per_s']:11.0f}{row['tracking_cpu_s']:8.1f}"
                         f"{row['tracked_per_cpu_s']:8.0f}{row['end_to_end_s']:14.1f}"
                         f"{row['true_pair_min']:10d}{row['false_pair_max_fraction']:11.3f}"
                         f"{row['tracked_per_s'] / ref:8.2f}")
    b = result["binning"]
    lines.append(f"binning {b['n_streamlines']} streamlines ({b['points']} points), streamlines/s: dipy "
                 f"{b['per_s']['dipy']:.0f}, NeuroMesh counts {b['per_s']['neuromesh_count']:.0f}, all normalisations "
                 f"{b['per_s']['neuromesh_all']:.0f}; equal to dipy: {b['equal_to_dipy']}")
    lines.append("ratio (NeuroMesh / dipy streamlines/s; speedup = 2 processes / 1): "
                 + ", ".join(f"{k} {v:.2f}" for k, v in result["ratio"].items()))
    m = result["machine"]
    lines.append(f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end; "
                 f"{m['cpus']} CPUs")
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the smoke run (20^3 phantom, probabilistic only)")
    parser.add_argument("--size", type=int, default=64, help="phantom voxels per side")
    parser.add_argument("--seeds-per-voxel", type=int, default=2)
    parser.add_argument("--model", choices=("csd", "csa"), default="csd")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated tracking methods")
    parser.add_argument("--step-size", type=float, default=0.5, help="mm")
    parser.add_argument("--max-angle", type=float, default=30.0, help="degrees")
    parser.add_argument("--fa-threshold", type=float, default=0.2)
    parser.add_argument("--min-length", type=float, default=10.0, help="mm")
    parser.add_argument("--max-length", type=float, default=250.0, help="mm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each binning (tracking runs once)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        for name, value in {"size": 20, "seeds_per_voxel": 1, "methods": "probabilistic", "repeats": 1}.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if not args.methods or set(args.methods) - set(METHODS):
        parser.error(f"--methods must be among {', '.join(METHODS)}")
    if min(args.size, args.seeds_per_voxel, args.repeats) < 1:
        parser.error("--size, --seeds-per-voxel and --repeats must be at least 1")
    with threadpoolctl.threadpool_limits(limits=1):
        result = run(args)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
