"""The contracts under protos/: committed stubs are fresh, and names follow buf's STANDARD rules."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neuromesh

REPO = Path(__file__).resolve().parents[2]


def generated_modules():
    mods = []
    for info in pkgutil.walk_packages(neuromesh.__path__, prefix="neuromesh."):
        if info.name.endswith("_pb2"):
            mods.append(importlib.import_module(info.name))
    return mods


def test_committed_stubs_match_the_protos():
    run = subprocess.run([sys.executable, str(REPO / "protos" / "generate.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"stale stubs:\n{run.stdout}{run.stderr}"


def test_every_proto_has_a_stub():
    protos = {p.relative_to(REPO / "protos").with_suffix("").as_posix() for p in (REPO / "protos").rglob("*.proto")}
    stubs = {m.DESCRIPTOR.name.removesuffix(".proto") for m in generated_modules()}
    assert protos == stubs


@pytest.mark.parametrize("module", generated_modules(), ids=lambda m: m.__name__)
def test_buf_standard_naming(module):
    fd = module.DESCRIPTOR
    # Package neuromesh.<area>.v<N>, in a folder of the same path.
    assert re.fullmatch(r"neuromesh\.[a-z_]+\.v[0-9]+", fd.package), fd.package
    assert fd.name.rsplit("/", 1)[0] == fd.package.replace(".", "/")
    for service in fd.services_by_name.values():
        assert service.name.endswith("Service")
        for method in service.methods:
            # Each RPC has its own XRequest / XResponse (so either can grow alone).
            assert method.input_type.name == f"{method.name}Request"
            assert method.output_type.name == f"{method.name}Response"
    for enum in fd.enum_types_by_name.values():
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert enum.values[0].number == 0 and enum.values[0].name == prefix + "UNSPECIFIED"
        assert all(v.name.startswith(prefix) for v in enum.values)
    for message in fd.message_types_by_name.values():
        for f in message.fields:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", f.name), f"{message.name}.{f.name}"
