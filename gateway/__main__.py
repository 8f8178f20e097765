"""``python -m gateway``: the HTTP API, the web page and the job runner in one process (uvicorn).

Settings come from ``NEUROMESH_*`` variables (:mod:`services.common.settings` for the object store
and logs, :mod:`gateway.jobs.settings` for the job database and runner, :mod:`gateway.settings` for
HTTP, endpoints and tokens); a bad one stops the process with status 2 and a message naming it.
SIGTERM or SIGINT stop it gracefully: uvicorn stops taking connections, open event streams end,
and the job runner drains (running steps get ``NEUROMESH_GATEWAY_DRAIN_S`` to finish, the rest
are released for another replica at once).

Example
-------
::

    NEUROMESH_GATEWAY_DATABASE_URL=sqlite:///.neuromesh/jobs.db \\
    NEUROMESH_GATEWAY_TOKENS_FILE=.neuromesh/gateway-tokens \\
        python -m gateway
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from gateway.api.app import Gateway, create_app
from gateway.auth import TokenFileError
from gateway.jobs.settings import load_job_settings
from gateway.settings import load_gateway_settings
from services.common.logs import configure_logging
from services.common.settings import SettingsError, load_settings

logger = logging.getLogger("gateway")


def main() -> int:
    try:
        settings = load_settings()
        job_settings = load_job_settings()
        gateway_settings = load_gateway_settings()
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, service="gateway")
    try:
        gateway = Gateway(settings, job_settings, gateway_settings, run_jobs=gateway_settings.run_jobs)
    except (TokenFileError, ValueError) as err:
        print(f"invalid NeuroMesh gateway settings: {err}", file=sys.stderr)
        return 2
    config = uvicorn.Config(create_app(gateway), host=gateway_settings.http_host, port=gateway_settings.http_port,
                            log_config=None, access_log=False, lifespan="on", proxy_headers=False,
                            server_header=False, timeout_graceful_shutdown=gateway_settings.graceful_shutdown_s)
    server = uvicorn.Server(config)
    logger.info("serving http", extra={"http_address": f"{gateway_settings.http_host}:{gateway_settings.http_port}"})
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
