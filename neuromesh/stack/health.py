"""Health probes of the local stack: the standard gRPC health protocol (grpc.health.v1)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_health_status(address: str, service: str = "", timeout_s: float = 1.0) -> str:
    """The status name a gRPC server reports for ``service`` ("SERVING", "NOT_SERVING", ...),
    or "UNREACHABLE" when nothing answers."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as err:
            return "UNREACHABLE" if err.code() in (grpc.StatusCode.UNAVAILABLE,
                                                    grpc.StatusCode.DEADLINE_EXCEEDED) else err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
