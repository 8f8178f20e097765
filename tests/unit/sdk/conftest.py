"""Fixtures of the SDK's unit tests: a scripted simulation service on loopback, an in-memory store."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from neuromesh.sdk.artifacts import Artifacts
from neuromesh.simulation.v1 import simulation_pb2_grpc
from sdk_fakes import DictStore, ScriptedSimulation


@pytest.fixture
def scripted():
    """A scripted simulation service on a free loopback port: (servicer, "127.0.0.1:port")."""
    servicer = ScriptedSimulation()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    simulation_pb2_grpc.add_SimulationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def store() -> DictStore:
    return DictStore()


@pytest.fixture
def artifacts(store) -> Artifacts:
    return Artifacts(store)
