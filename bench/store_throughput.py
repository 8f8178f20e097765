"""Artifact store throughput against the raw ``minio`` SDK, side by side, on one S3 server.

What a user would otherwise write to move an array through S3 is one object per array:
``client.put_object(bucket, key, io.BytesIO(a.tobytes()), a.nbytes)`` and
``np.frombuffer(client.get_object(bucket, key).read(), a.dtype)``. ``ArtifactStore`` does more
(Zarr v3 chunks that can be read piecewise, a CRC32C per chunk, a sha256 of the whole array,
the no-overwrite check), and this bench measures what that costs: the median MiB/s of each
over several repetitions and the ratio store/raw for writing and for reading.

Both sides use the same client (``make_minio_client``) against one ``weed mini`` that this
script starts and stops, and move the same bytes. Each repetition writes a new object and a
new array, then reads both back; the side that goes first alternates between repetitions, so
that a drift of the server or of the machine (disk filling, page cache, memory the kernel took
back) favours neither. The median is the figure; the best run of each side is printed too,
as the capability of each path with the machine's noise removed.

Run from the repository root::

    python bench/store_throughput.py --mib 256 --repeats 9 --json bench/results/store_throughput.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuromesh.stack.seaweedfs import SeaweedS3
from services.common.store import ArtifactStore, choose_chunks, make_minio_client

BUCKET = "bench-store"
ROW = (512, 512)  # the array is (mib, 512, 512) float32: one MiB per index of the first axis


def timed(fn, warm_bytes: int) -> tuple[float, object]:
    """Seconds ``fn`` takes, started from the same machine state for every operation.

    Two things an operation would otherwise inherit from the one before it, which favours
    whichever side happens to run second:

    - dirty pages: the server's files of a 256 MiB write take about a second to reach the disk
      here, so ``os.sync()`` first;
    - cold memory: the bench VM hands free memory back to its host, and faulting it in again
      took up to twice as long as the transfer itself. A read right after a write that freed
      much memory (the store's) got warm pages; after one that freed little (raw minio), cold
      ones. Touching and freeing ``warm_bytes`` first gives every operation warm pages.
    """
    np.ones(warm_bytes, dtype=np.uint8)
    os.sync()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(mib: int, repeats: int, data_dir: Path, chunk_mib: float | None = None) -> dict:
    array = np.random.default_rng(0).standard_normal((mib, *ROW), dtype=np.float32)
    payload = array.tobytes()
    server = SeaweedS3(data_dir)
    server.start()
    try:
        client = make_minio_client(server.endpoint, server.access_key, server.secret_key)
        store = ArtifactStore(client, BUCKET)
        store.ensure_bucket()

        def raw_write(i: int) -> None:
            client.put_object(BUCKET, f"raw/{i}", io.BytesIO(payload), len(payload))

        def raw_read(i: int) -> np.ndarray:
            response = client.get_object(BUCKET, f"raw/{i}")
            try:
                return np.frombuffer(response.read(), dtype=array.dtype).reshape(array.shape)
            finally:
                response.close()
                response.release_conn()

        chunks = None if chunk_mib is None else choose_chunks(array.shape, array.itemsize,
                                                              target_bytes=int(chunk_mib * 2**20))

        def store_write(i: int) -> None:
            store.put_array(f"store/{i}", array, chunks=chunks)

        def store_read(i: int) -> np.ndarray:
            return store.get_array(f"store/{i}")

        seconds = {name: [] for name in ("raw_write", "raw_read", "store_write", "store_read")}
        warm = 2 * array.nbytes
        sides = [("raw", raw_write, raw_read), ("store", store_write, store_read)]
        for i in range(repeats):
            order = sides if i % 2 == 0 else sides[::-1]
            for side, write, _ in order:
                seconds[f"{side}_write"].append(timed(lambda: write(i), warm)[0])
            for side, _, read in order:
                elapsed, back = timed(lambda: read(i), warm)
                seconds[f"{side}_read"].append(elapsed)
                if not np.array_equal(back, array):
                    raise AssertionError(f"{side} read back different data in repetition {i}")
                # free it now: held on, it would make the other side's read allocate elsewhere
                del back
    finally:
        server.stop()

    mib_s = {name: [mib / s for s in values] for name, values in seconds.items()}
    median = {name: statistics.median(values) for name, values in mib_s.items()}
    best = {name: max(values) for name, values in mib_s.items()}
    return {
        "mib": mib, "repeats": repeats, "dtype": "float32", "shape": list(array.shape),
        "chunks": list(chunks or choose_chunks(array.shape, array.itemsize)),
        "median_mib_s": median,
        "ratio": {op: median[f"store_{op}"] / median[f"raw_{op}"] for op in ("write", "read")},
        "best_mib_s": best,
        "best_ratio": {op: best[f"store_{op}"] / best[f"raw_{op}"] for op in ("write", "read")},
        "all_mib_s": mib_s,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }


def table(result: dict) -> str:
    med, best = result["median_mib_s"], result["best_mib_s"]
    lines = [f"{result['mib']} MiB float32 {tuple(result['shape'])} in chunks {tuple(result['chunks'])}, "
             f"{result['repeats']} repetitions, MiB/s",
             f"{'':7}{'raw median':>12}{'store median':>14}{'ratio':>7}  |{'raw best':>10}{'store best':>12}{'ratio':>7}"]
    for op in ("write", "read"):
        lines.append(f"{op:7}{med[f'raw_{op}']:12.1f}{med[f'store_{op}']:14.1f}{result['ratio'][op]:7.2f}  |"
                     f"{best[f'raw_{op}']:10.1f}{best[f'store_{op}']:12.1f}{result['best_ratio'][op]:7.2f}")
    lines.append("ratio = ArtifactStore / raw minio; the goal is >= 0.8 for the medians")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="array size in MiB (float32, (mib, 512, 512))")
    parser.add_argument("--repeats", type=int, default=9, help="repetitions; medians are reported")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--data-dir", type=Path, help="where weed mini keeps its data (default: a temp dir)")
    parser.add_argument("--chunk-mib", type=float, help="chunk size target of the store's array (default: the "
                                                        "store's automatic choice)")
    args = parser.parse_args(argv)
    if args.mib < 1 or args.repeats < 1:
        parser.error("--mib and --repeats must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        result = run(args.mib, args.repeats, args.data_dir or Path(tmp), args.chunk_mib)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
