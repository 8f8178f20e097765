"""``python -m services.common.healthcheck``: exit 0 iff a service answers SERVING on grpc.health.v1.

The container HEALTHCHECK of every service image runs it (deploy/docker/Dockerfile), so it
needs no extra binary such as ``grpc_health_probe`` in the image. Exit codes follow Docker's
HEALTHCHECK convention: 0 healthy, 1 unhealthy (anything but SERVING, including nothing
answering). The status is printed, so ``docker inspect`` shows why a container is unhealthy.

Defaults come from the same environment as the service itself:

- ``--address``: ``127.0.0.1:$NEUROMESH_GRPC_PORT`` (50051 when unset), or
  ``$NEUROMESH_GRPC_HOST:$NEUROMESH_GRPC_PORT`` when the service binds one specific address;
- ``--service``: the grpc.health.v1 name of the service ``$NEUROMESH_SERVICE`` declares in its
  :class:`~services.common.registry.ServiceSpec` (e.g. ``neuromesh.decoding.v1.DecodingService``),
  or ``""`` (the whole server) when that variable is unset.

Example
-------
>>> main(["--address", "127.0.0.1:1", "--timeout", "0.2"])  # doctest: +SKIP
UNREACHABLE 127.0.0.1:1 service=''
1
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping

from neuromesh.stack.health import grpc_health_status

DEFAULT_GRPC_PORT = 50051
# Addresses a server binds to mean "every interface"; a probe inside the container dials loopback.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def default_address(environ: Mapping[str, str] = os.environ) -> str:
    """``host:port`` the service of this process's environment listens on, as seen from inside it."""
    port = environ.get("NEUROMESH_GRPC_PORT", "").strip() or str(DEFAULT_GRPC_PORT)
    host = environ.get("NEUROMESH_GRPC_HOST", "").strip()
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal needs brackets before the port
    return f"{host}:{port}"


def default_service(environ: Mapping[str, str] = os.environ) -> str:
    """The health service name declared by ``services.$NEUROMESH_SERVICE``; ``""`` when unset."""
    name = environ.get("NEUROMESH_SERVICE", "").strip()
    if not name:
        return ""
    # Importing the service package reads only its ServiceSpec: servers start in __main__.
    spec = getattr(importlib.import_module(f"services.{name}"), "SERVICE", None)
    if spec is None:
        raise LookupError(f"services.{name} declares no SERVICE (a ServiceSpec)")
    return spec.health_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.common.healthcheck",
        description="Exit 0 iff the gRPC health service reports SERVING (Docker HEALTHCHECK).")
    parser.add_argument("--address", default=None,
                        help="host:port of the gRPC server (default: 127.0.0.1:$NEUROMESH_GRPC_PORT)")
    parser.add_argument("--service", default=None,
                        help="grpc.health.v1 service name (default: that of $NEUROMESH_SERVICE; '' = server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)

    address = args.address or default_address()
    try:
        service = default_service() if args.service is None else args.service
    except (ImportError, LookupError) as exc:
        print(f"UNKNOWN_SERVICE {exc}")
        return 1
    status = grpc_health_status(address, service, timeout_s=args.timeout)
    print(f"{status} {address} service={service!r}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
