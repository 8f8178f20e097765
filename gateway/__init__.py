"""The NeuroMesh gateway: jobs of service calls over HTTP, their artifacts, a web page, metrics.

``python -m gateway`` serves the HTTP API (``/v1``), the web page (``/``) and ``/metrics``, and runs
the job runner that executes jobs' steps as gRPC calls of the services.

=====================  ==========================================================================
``jobs/``              the durable job engine: specs (DAGs), SQL store with leases, step cache,
                       retry policy, :class:`~gateway.jobs.runner.JobRunner`
``calls/``             how a step becomes a gRPC call: the method table by reflection
                       (``methods``), replicas and their health (``endpoints``), the executor
``artifacts/``         tenants' artifacts: key validation and prefixing, presigned uploads and
                       their completion, listings, download URLs
``api/``               the FastAPI app: routes, JSON models, errors, auth/limit/metrics
                       middleware, event streams, the :class:`~gateway.api.app.Gateway` itself
``auth``               bearer tokens as SHA-256 digests, tenants
``settings``           ``NEUROMESH_GATEWAY_*`` settings of the HTTP layer and executor
``client``             a small Python client of the HTTP API (standard library only)
``web/``               the page (plain HTML, CSS, JavaScript; no build step, no CDN) and API docs
=====================  ==========================================================================

A job, as submitted (``POST /v1/jobs``)::

    {"steps": [
      {"id": "simulate", "service": "simulation", "method": "Simulate",
       "params": {"duration_ms": 2000, "network": {"cortical_column": {"scale": 0.05}}}},
      {"id": "pca", "service": "reduction", "method": "Fit",
       "params": {"method": {"name": "pca", "params": {"n_components": 3}}},
       "inputs": {"activity": {"step": "simulate", "output": "binned_counts"}}}]}
"""
