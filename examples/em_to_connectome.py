"""From an EM volume to a wiring diagram: segment the neurons, then graph who touches whom.

A synthetic EM volume with known neurites (tubes with dark membranes, blur and noise; the
segmentation core's generator) is uploaded as a Zarr array. The segmentation service cuts it
into neurons with the classical boundary map (smoothed intensity, seeded watershed, one
agglomeration) and scores the result against the known neurons; the connectomics service then
builds the contact graph of the segmentation (segments as nodes, shared membrane area as edge
weights) and its graph measures, and the same for the ground truth, so the two graphs can be
compared. Prints the scores, both graphs' sizes and measures, and the keys of the tables,
GraphML files and figures.

Run it against a stack started by ``neuromesh up``::

    python examples/em_to_connectome.py --size 48
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from minio import Minio

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2, connectomics_pb2_grpc
from neuromesh.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc
from neuromesh.stack.local import LocalStack, default_state_dir
from services.common.settings import load_settings
from services.common.store import ArtifactStore
from services.segmentation.core import synthetic_em_volume

VOXEL_SIZE_NM = [8.0, 8.0, 8.0]
MEASURES = connectomics_pb2.GraphMeasuresOptions(measures=["degree", "strength", "clustering", "communities"])


def last(stream):
    result = None
    for event in stream:
        if event.HasField("result"):
            result = event.result
    return result


def contact_graph(stub, ref) -> connectomics_pb2.ContactGraphResult:
    return last(stub.ContactGraph(connectomics_pb2.ContactGraphRequest(
        segmentation=segmentation_pb2.Volume(ref=ArtifactRef(key=ref.key)), voxel_size_nm=VOXEL_SIZE_NM,
        min_contact_faces=4, measures=MEASURES), timeout=600))


def describe(name: str, graph: connectomics_pb2.ContactGraphResult) -> None:
    scalars = graph.measures.scalars
    print(f"{name:<13} {graph.n_nodes:4d} segments, {graph.n_edges:4d} contacts, "
          f"mean degree {2 * graph.n_edges / max(graph.n_nodes, 1):.2f}, "
          f"clustering {scalars['average_clustering']:.3f}, modularity {scalars['modularity']:.3f} "
          f"({scalars['n_communities']:.0f} communities)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(default_state_dir()))
    parser.add_argument("--size", type=int, default=48, help="voxels per side of the synthetic volume")
    parser.add_argument("--neurites", type=int, default=14)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)

    settings = load_settings()
    state = LocalStack(Path(args.state_dir), settings).read_state()
    if state is None:
        print(f"no local stack in {args.state_dir}: run `neuromesh up` first", file=sys.stderr)
        return 1
    endpoints = {c.name: c.endpoint for c in state.components}
    missing = [name for name in ("segmentation", "connectomics") if name not in endpoints]
    if missing:
        print(f"the stack has no {' or '.join(missing)} service", file=sys.stderr)
        return 1
    store = ArtifactStore(Minio(state.s3_endpoint, access_key=settings.s3_access_key,
                                secret_key=settings.s3_secret_key, secure=settings.s3_secure), state.bucket)

    raw, truth = synthetic_em_volume((args.size,) * 3, n_neurites=args.neurites, seed=args.seed)
    raw_ref = store.put_array(f"examples/em/{args.size}-{args.seed}/raw", raw, if_exists="return_existing")
    truth_ref = store.put_array(f"examples/em/{args.size}-{args.seed}/truth", truth, if_exists="return_existing")
    print(f"synthetic EM volume {raw.shape} with {len(set(truth.ravel()) - {0})} neurites: "
          f"s3://{raw_ref.bucket}/{raw_ref.key}")

    with grpc.insecure_channel(endpoints["segmentation"]) as channel:
        segmented = last(segmentation_pb2_grpc.SegmentationServiceStub(channel).Segment(
            segmentation_pb2.SegmentRequest(
                raw=segmentation_pb2.Volume(ref=ArtifactRef(key=raw_ref.key)),
                classical=segmentation_pb2.ClassicalBoundaries(), voxel_size_nm=VOXEL_SIZE_NM,
                thresholds=[0.5], min_segment_size=20,
                ground_truth=segmentation_pb2.Volume(ref=ArtifactRef(key=truth_ref.key))), timeout=900))
    labels = segmented.segmentations[0]
    print(f"segmentation: {labels.n_segments} segments, adapted Rand error {labels.scores.adapted_rand_error:.3f}, "
          f"VOI split {labels.scores.voi_split:.3f} merge {labels.scores.voi_merge:.3f}")

    with grpc.insecure_channel(endpoints["connectomics"]) as channel:
        stub = connectomics_pb2_grpc.ConnectomicsServiceStub(channel)
        found = contact_graph(stub, labels.labels)
        known = contact_graph(stub, truth_ref)
    describe("segmentation", found)
    describe("ground truth", known)
    print(f"contact table: s3://{found.edge_table.bucket}/{found.edge_table.key}")
    print(f"GraphML: s3://{found.graphml.bucket}/{found.graphml.key}")
    print(f"heatmap: s3://{found.heatmap.bucket}/{found.heatmap.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
