"""The Client: explicit settings, the local stack's state file, NEUROMESH_* variables, its lifetime;
and every example in the SDK's docstrings runs."""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pytest

from neuromesh.sdk import Client, Deadlines, FailedPrecondition, InvalidArgument, TlsConfig
from neuromesh.sdk.client import find_state_dir

SDK_MODULES = ["neuromesh.sdk", "neuromesh.sdk.errors", "neuromesh.sdk.connection", "neuromesh.sdk.progress",
               "neuromesh.sdk.artifacts", "neuromesh.sdk.fields", "neuromesh.sdk.requests", "neuromesh.sdk.results",
               "neuromesh.sdk.service", "neuromesh.sdk.decoding", "neuromesh.sdk.reduction",
               "neuromesh.sdk.simulation", "neuromesh.sdk.segmentation", "neuromesh.sdk.connectomics",
               "neuromesh.sdk.client", "neuromesh.client"]


def write_stack(folder, *, gateway=True):
    """A state file as `neuromesh up` writes it."""
    components = [
        {"name": "object-store", "pid": 11, "endpoint": "127.0.0.1:18333", "kind": "s3"},
        {"name": "decoding", "pid": 12, "endpoint": "127.0.0.1:50151", "kind": "grpc", "metrics": "127.0.0.1:9251",
         "health_service": "neuromesh.decoding.v1.DecodingService"},
        {"name": "simulation", "pid": 13, "endpoint": "127.0.0.1:50153", "kind": "grpc",
         "metrics": "127.0.0.1:9253", "health_service": "neuromesh.simulation.v1.SimulationService"},
    ] + ([{"name": "gateway", "pid": 14, "endpoint": "127.0.0.1:8180", "kind": "http"}] if gateway else [])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stack.json").write_text(json.dumps({"s3_endpoint": "127.0.0.1:18333", "bucket": "lab-bucket",
                                                   "components": components}))


@pytest.mark.parametrize("name", SDK_MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_class_and_method_has_an_example():
    import inspect

    missing = []
    for name in SDK_MODULES[1:-1]:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not callable(obj) or getattr(obj, "__module__", name) != name:
                continue
            targets = [obj] + ([m for n, m in vars(obj).items() if not n.startswith("_") and
                                (inspect.isfunction(m) or isinstance(m, property))] if inspect.isclass(obj) else [])
            for target in targets:
                doc = (target.fget if isinstance(target, property) else target).__doc__ or ""
                is_short = isinstance(target, property) or (inspect.isclass(obj) and target is not obj
                                                            and len(doc.splitlines()) <= 1)
                if ">>>" not in doc and not is_short:
                    missing.append(f"{name}.{attr}.{getattr(target, '__name__', '')}")
    assert missing == []


def test_local_reads_the_stack_that_neuromesh_up_recorded(tmp_path, monkeypatch):
    write_stack(tmp_path / ".neuromesh")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("NEUROMESH_STATE_DIR", raising=False)
    monkeypatch.setenv("NEUROMESH_S3_ACCESS_KEY", "lab-key")
    with Client.local(progress=False) as client:
        assert client.endpoints == {"decoding": "127.0.0.1:50151", "simulation": "127.0.0.1:50153"}
        assert (client.s3_endpoint, client.bucket, client.gateway_endpoint) == ("127.0.0.1:18333", "lab-bucket",
                                                                                "127.0.0.1:8180")
        assert client._s3["access_key"] == "lab-key"
        with pytest.raises(FailedPrecondition, match="no endpoint for the reduction service"):
            client.reduction.fit(np.zeros((10, 3)))


def test_local_without_a_stack_says_to_run_neuromesh_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROMESH_STATE_DIR", raising=False)
    with pytest.raises(FailedPrecondition, match="neuromesh up"):
        Client.local()
    monkeypatch.setenv("NEUROMESH_STATE_DIR", str(tmp_path / "elsewhere"))
    assert find_state_dir() == (tmp_path / "elsewhere").resolve()
    with pytest.raises(FailedPrecondition, match="no local stack recorded"):
        Client.local()


def test_from_env_reads_the_same_variables_as_the_services():
    client = Client.from_env({"NEUROMESH_DECODING_ENDPOINT": "dns:///decoding.lab.svc:50051",
                              "NEUROMESH_S3_ENDPOINT": "minio.lab:9000", "NEUROMESH_S3_SECURE": "true",
                              "NEUROMESH_BUCKET": "lab", "NEUROMESH_TOKEN": "t0k", "NEUROMESH_TLS": "1",
                              "NEUROMESH_TLS_SERVER_NAME": "decoding.lab", "NEUROMESH_STREAM_TIMEOUT_S": "3600"})
    assert client.endpoints["decoding"] == "dns:///decoding.lab.svc:50051"
    assert client.endpoints["simulation"] == "127.0.0.1:50053"
    assert (client.s3_endpoint, client.bucket, client.token) == ("minio.lab:9000", "lab", "t0k")
    assert client.tls == TlsConfig(server_name="decoding.lab") and client.deadlines.stream_s == 3600.0
    with pytest.raises(InvalidArgument, match="NEUROMESH_TLS"):
        Client.from_env({"NEUROMESH_TLS": "maybe"})
    with pytest.raises(InvalidArgument, match="NEUROMESH_UNARY_TIMEOUT_S"):
        Client.from_env({"NEUROMESH_UNARY_TIMEOUT_S": "-3"})


def test_bad_settings_are_refused_at_construction():
    with pytest.raises(InvalidArgument, match="unknown service 'decodnig'"):
        Client({"decodnig": "127.0.0.1:50051"})
    with pytest.raises(InvalidArgument, match="host:port"):
        Client({"decoding": "localhost"})
    with pytest.raises(InvalidArgument, match="token"):
        Client(token="")
    with pytest.raises(InvalidArgument, match="private_key and certificate_chain"):
        TlsConfig(private_key=b"k")
    with pytest.raises(InvalidArgument, match="unary_s"):
        Deadlines(unary_s=0)


def test_a_closed_client_refuses_calls_and_closes_its_channels(scripted):
    _, target = scripted
    client = Client({"simulation": target}, progress=False)
    with client:
        assert client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}}).fits
        connection = client.simulation.connection
    assert connection._channel is None and "closed" in repr(client)
    with pytest.raises(FailedPrecondition, match="closed"):
        client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}})


def test_health_of_a_service_that_is_not_there_is_unavailable_not_an_exception(scripted):
    from neuromesh.sdk import RetryPolicy

    with Client({"decoding": "127.0.0.1:9"}, retry=RetryPolicy(max_attempts=1)) as client:
        assert client.health() == {"decoding": "UNAVAILABLE"}
        assert "cannot be reached" in client.info()["decoding"]["error"]
