"""Regenerate the Python stubs of every contract under ``protos/`` into the ``neuromesh`` package.

One command, reproducible (grpcio-tools and mypy-protobuf are pinned in pyproject.toml)::

    python protos/generate.py          # write neuromesh/<service>/v1/*_pb2*.py(i)
    python protos/generate.py --check  # exit 1 listing the stubs that are stale or missing

The proto package ``neuromesh.<service>.v1`` maps to the Python package of the same name, so the
generated modules import one another as ``from neuromesh.common.v1 import artifact_pb2``.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every proto into ``out_dir``; return the generated paths relative to it."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    # Look beside this interpreter too: a venv's scripts are there even when it is not activated.
    plugin = shutil.which("protoc-gen-mypy_grpc") or shutil.which(
        "protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if plugin is None:
        raise SystemExit("protoc-gen-mypy_grpc not found: pip install -e '.[dev]' (mypy-protobuf)")
    include_wkt = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include_wkt}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed (see the message above)")
    generated = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))
    # Every generated folder is a regular package (neuromesh/ itself holds hand-written code).
    for rel in generated:
        for parent in rel.parents:
            if parent != Path(".") and parent != Path("neuromesh"):
                (out_dir / parent / "__init__.py").touch()
    return generated


def committed_stubs() -> set[Path]:
    root = REPO_ROOT / "neuromesh"
    return {p.relative_to(REPO_ROOT) for p in root.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed stubs, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = set(generate(out))
        if args.check:
            stale = sorted(str(p) for p in fresh if not (REPO_ROOT / p).exists()
                           or not filecmp.cmp(out / p, REPO_ROOT / p, shallow=False))
            orphans = sorted(str(p) for p in committed_stubs() - fresh)
            for p in stale:
                print(f"stale or missing: {p}")
            for p in orphans:
                print(f"no longer generated (delete it): {p}")
            if stale or orphans:
                print("run: python protos/generate.py", file=sys.stderr)
                return 1
            print(f"{len(fresh)} generated stubs are up to date")
            return 0
        for p in committed_stubs() - fresh:
            (REPO_ROOT / p).unlink()
        for p in out.rglob("*"):
            if p.is_file():
                dest = REPO_ROOT / p.relative_to(out)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists() or not filecmp.cmp(p, dest, shallow=False):
                    shutil.copyfile(p, dest)
        print(f"wrote {len(fresh)} stubs under neuromesh/")
        return 0


if __name__ == "__main__":
    sys.exit(main())
