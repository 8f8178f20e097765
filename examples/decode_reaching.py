"""End-to-end analysis on the local stack: decode hand velocity from simulated motor cortex.

A reaching session with known ground truth (cosine-tuned Poisson units driven by a 2-D hand
velocity) is uploaded to the object store; the decoding service bins the spikes
(BinRecording) and trains a Wiener filter (Train: blocked 5-fold cross-validation with the
ridge strength chosen by nested CV, a shuffled-label control, then a fit on all the data),
streaming its progress; the script prints the R² per velocity component, the control's R²,
and where the model, predictions, figure and report lie. Then the reduction service fits a
PCA to the smoothed counts and reports how much of the hand velocity three components carry.

Run it against a stack started by ``neuromesh up``::

    python examples/decode_reaching.py            # reads .neuromesh/stack.json for the endpoints
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import struct_pb2
from minio import Minio

from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from neuromesh.reduction.v1 import reduction_pb2, reduction_pb2_grpc
from neuromesh.stack.local import LocalStack, default_state_dir
from services.common.settings import load_settings
from services.common.store import ArtifactStore
from services.decoding.core.synthetic import simulate_reaching_session


def upload(store: ArtifactStore, name: str, array: np.ndarray):
    """Store ``array`` under a key named by its content, so a rerun reuses the upload."""
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    return store.put_array(f"inputs/{name}-{digest[:16]}", array, if_exists="return_existing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(default_state_dir()))
    parser.add_argument("--duration-s", type=float, default=300.0, help="length of the simulated session")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    settings = load_settings()
    state = LocalStack(Path(args.state_dir), settings).read_state()
    if state is None:
        print(f"no local stack in {args.state_dir}: run `neuromesh up` first", file=sys.stderr)
        return 1
    endpoints = {c.name: c.endpoint for c in state.components}
    missing = [name for name in ("decoding", "reduction") if name not in endpoints]
    if missing:
        print(f"the stack has no {' or '.join(missing)} service", file=sys.stderr)
        return 1
    store = ArtifactStore(Minio(state.s3_endpoint, access_key=settings.s3_access_key,
                                secret_key=settings.s3_secret_key, secure=settings.s3_secure), state.bucket)

    bin_width = 0.05
    session = simulate_reaching_session(duration_s=args.duration_s, bin_width_s=bin_width, seed=args.seed)
    print(f"simulated {session.spike_times.size} spikes from {session.n_units} units over {args.duration_s:.0f} s")
    times_ref = upload(store, "spike-times", session.spike_times)
    units_ref = upload(store, "spike-units", session.unit_ids)
    velocity_ref = upload(store, "hand-velocity", session.velocity)

    with grpc.insecure_channel(endpoints["decoding"]) as channel:
        stub = decoding_pb2_grpc.DecodingServiceStub(channel)
        binned = stub.BinRecording(decoding_pb2.BinRecordingRequest(
            spikes=decoding_pb2.SpikeArrays(times=times_ref, unit_ids=units_ref, n_units=session.n_units),
            bin_width_s=bin_width, start_s=0.0, stop_s=args.duration_s), timeout=120)
        print(f"binned: {binned.n_bins} bins x {binned.n_units} units -> s3://{binned.counts.bucket}/{binned.counts.key}")
        result = None
        for event in stub.Train(decoding_pb2.TrainRequest(
                features=binned.counts, targets=velocity_ref,
                decoder=decoding_pb2.DecoderSpec(name="wiener", history_bins=5), n_folds=5, n_shuffles=2),
                timeout=600):
            if event.HasField("progress"):
                print(f"  [{event.progress.fraction_done:4.0%}] {event.progress.stage}: {event.progress.message}")
            else:
                result = event.result

    scores = result.scores
    for name, r2, r in zip(("vx", "vy"), scores.r2, scores.pearson_r):
        print(f"cross-validated R2 {name}: {r2:.3f} (Pearson r {r:.3f})")
    print(f"shuffled-label control R2: {', '.join(f'{s:.3f}' for s in result.shuffled_scores)}")
    print(f"predictions: s3://{result.predictions.bucket}/{result.predictions.key} (Zarr v3, "
          f"shape {list(result.predictions.shape)}, sha256 {result.predictions.sha256[:12]}...)")
    print(f"model: s3://{result.model.bucket}/{result.model.key}")
    print(f"figure: s3://{result.figure.bucket}/{result.figure.key}")
    print(f"report: s3://{result.report.bucket}/{result.report.key}")

    # Population dynamics of the same counts: PCA of the smoothed activity, scored by how well
    # three components carry the hand velocity that drives the units (known truth here).
    with grpc.insecure_channel(endpoints["reduction"]) as channel:
        stub = reduction_pb2_grpc.ReductionServiceStub(channel)
        params = struct_pb2.Struct()
        params.update({"n_components": 3})
        reduced = None
        for event in stub.Fit(reduction_pb2.FitRequest(
                activity=binned.counts, true_latents=velocity_ref,
                method=reduction_pb2.MethodSpec(name="pca", params=params),
                preprocessing=reduction_pb2.Preprocessing(smooth_sigma_bins=2.0)), timeout=600):
            if event.HasField("result"):
                reduced = event.result
    ratios = ", ".join(f"{r:.3f}" for r in reduced.scores.explained_variance_ratio)
    print(f"PCA of the smoothed counts: explained variance ratio {ratios}")
    print(f"velocity recovered from 3 PCs: R2 {reduced.scores.latent_r2_mean:.3f}")
    print(f"latents: s3://{reduced.latents.bucket}/{reduced.latents.key}")
    print(f"trajectories: s3://{reduced.trajectories_figure.bucket}/{reduced.trajectories_figure.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
