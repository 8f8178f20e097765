"""How a service plugs into the platform: it declares a :class:`ServiceSpec` named ``SERVICE`` in
its package's ``__init__.py``, and the local stack (and the tests) find it by
:func:`discover_services`. A service that does not exist yet is simply not there.

Example
-------
In ``services/decoding/__init__.py``::

    SERVICE = ServiceSpec(name="decoding", grpc_port=50051, metrics_port=9151,
                          health_service="neuromesh.decoding.v1.DecodingService")

>>> [spec.name for spec in discover_services()]  # doctest: +SKIP
['decoding']
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    """A gRPC service of the platform, started as ``python -m services.<name>``.

    ``grpc_port`` and ``metrics_port`` are the defaults of the local stack (and the ports in
    docker-compose and Kubernetes); ``health_service`` is the name the service reports in
    grpc.health.v1, its fully-qualified proto service name.
    """

    name: str
    grpc_port: int
    metrics_port: int
    health_service: str

    @property
    def module(self) -> str:
        return f"services.{self.name}"


def discover_services() -> list[ServiceSpec]:
    """Every service package under ``services/`` that declares ``SERVICE``, sorted by name."""
    import services

    specs = []
    for info in pkgutil.iter_modules(services.__path__):
        if not info.ispkg or info.name == "common":
            continue
        spec = getattr(importlib.import_module(f"services.{info.name}"), "SERVICE", None)
        if isinstance(spec, ServiceSpec):
            specs.append(spec)
    return sorted(specs, key=lambda s: s.name)
