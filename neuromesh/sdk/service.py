"""What every per-service client shares: its connection, unary and streaming calls, service info.

Example
-------
>>> client = Client.local()                                   # doctest: +SKIP
>>> client.decoding.info()                                    # doctest: +SKIP
{'name': 'decoding', 'service': 'neuromesh.decoding.v1.DecodingService', 'version': '...', 'package_version': '0.1.0'}
>>> client.decoding.health()                                  # doctest: +SKIP
'SERVING'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from neuromesh.common.v1 import service_info_pb2, service_info_pb2_grpc

from .connection import ServiceConnection, _timeout
from .errors import NeuroMeshError
from .progress import ProgressCallback, ProgressReporter
from .results import Result

if TYPE_CHECKING:
    from .client import Client

__all__ = ["ServiceClient"]


class ServiceClient:
    """Base of ``client.decoding``, ``client.reduction``, ...: one service's calls.

    Made by :class:`~neuromesh.sdk.Client`; use its attributes rather than this class.

    Examples
    --------
    >>> client.simulation.connection.target                     # doctest: +SKIP
    '127.0.0.1:50053'
    """

    #: Short name of the service ("decoding"), the key of its endpoint
    name: ClassVar[str] = ""
    #: Fully qualified proto service, the name it reports in grpc.health.v1
    proto_service: ClassVar[str] = ""
    #: The generated stub class
    stub_class: ClassVar[type] = object

    def __init__(self, client: "Client") -> None:
        self._client = client

    def __repr__(self) -> str:
        target = self._client.endpoints.get(self.name, "(no endpoint)")
        return f"<{type(self).__name__} {self.name} at {target}>"

    @property
    def connection(self) -> ServiceConnection:
        """The service's channel and call settings (opened on first use)."""
        return self._client.connection(self.name, self.stub_class)

    @property
    def artifacts(self) -> Any:
        """The client's uploads and downloads (:class:`~neuromesh.sdk.artifacts.Artifacts`).

        Reached only through a usable service: a client without this service's endpoint (or a
        closed one) fails here, before a method uploads its inputs for nothing.
        """
        self.connection
        return self._client.artifacts

    def _unary(self, method: str, request: Any, result_class: type[Result], timeout: float | None) -> Result:
        answer = self.connection.unary(method, request, timeout=timeout)
        return result_class(answer, self.artifacts, service=self.name, method=method)

    def _stream(self, method: str, request: Any, result_class: type[Result], *, timeout: float | None,
                progress: bool | None, on_progress: ProgressCallback | None) -> Result:
        show = self._client.progress if progress is None else progress
        reporter = ProgressReporter(f"{self.name}.{method}", show=show, callback=on_progress, service=self.name,
                                    method=method)
        answer = self.connection.stream(method, request, timeout=timeout, observer=reporter)
        return result_class(answer, self.artifacts, service=self.name, method=method)

    def info(self, *, timeout: float | None = None) -> dict[str, str]:
        """What the service runs: its name, proto service, algorithm version and package version.

        The version is part of every content-addressed output key: a new version computes
        results again instead of returning stored ones.

        Examples
        --------
        >>> client.segmentation.info()["service"]                # doctest: +SKIP
        'neuromesh.segmentation.v1.SegmentationService'
        """
        connection = self.connection
        stub = service_info_pb2_grpc.ServiceInfoServiceStub(connection.channel)
        answer = connection.unary("GetServiceInfo", service_info_pb2.GetServiceInfoRequest(),
                                  timeout=_timeout(timeout, connection.deadlines.info_s), stub=stub)
        return {"name": answer.name, "service": answer.service, "version": answer.version,
                "package_version": answer.package_version}

    def health(self, *, timeout: float | None = None) -> str:
        """The service's grpc.health.v1 status: ``"SERVING"``, ``"NOT_SERVING"`` (draining), or
        ``"UNAVAILABLE"`` when it cannot be reached. Never raises for an unreachable service.

        Examples
        --------
        >>> client.connectomics.health()                        # doctest: +SKIP
        'SERVING'
        """
        connection = self.connection
        stub = health_pb2_grpc.HealthStub(connection.channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=self.proto_service),
                                timeout=_timeout(timeout, connection.deadlines.info_s), metadata=connection.metadata)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return "UNAVAILABLE"
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return "SERVICE_UNKNOWN"
            raise NeuroMeshError(f"health check of {self.name} failed: {err.details()}", service=self.name,
                                 method="Check") from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
