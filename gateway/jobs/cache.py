"""The step cache: outputs by a key made of content digests, so equal work is done once.

A step's cache key is the SHA-256 of the canonical JSON of

- the tenant whose job the step belongs to: the cache is tenant-scoped, so a tenant is never
  handed references to artifacts another tenant's step produced (equal work of two tenants is
  computed for each; a service may still answer it from its own content-addressed store),
- the service, the method and the *version* of the service that would run it (a new release
  of an algorithm must not reuse results of the old one),
- the parameters,
- for each named input the SHA-256 of its *content*: an artifact's digest as submitted, or for an
  output of an upstream step the digest that step recorded.

Keys and paths are deliberately left out: the same bytes uploaded twice under two keys, or the
same upstream result computed in two jobs (job-scoped keys differ), give the same cache key. A
change of a parameter, of an input's content or of the service version gives another.

When a step's key has stored outputs, the runner completes the step with them instead of
calling the service (the step is marked ``reused``). The table lives in the same database as
the jobs, so recording a step's outputs and its cache entry is one transaction.

Example
-------
>>> digest = "0" * 64
>>> a = step_cache_key(tenant="lab-a", service="reduction", method="FitPCA", service_version="1.4.0",
...                    params={"n_components": 8}, input_digests={"counts": digest})
>>> b = step_cache_key(tenant="lab-a", service="reduction", method="FitPCA", service_version="1.4.0",
...                    params={"n_components": 9}, input_digests={"counts": digest})
>>> c = step_cache_key(tenant="lab-b", service="reduction", method="FitPCA", service_version="1.4.0",
...                    params={"n_components": 8}, input_digests={"counts": digest})
>>> len(a), a == b, a == c
(64, False, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.jobs.digests import sha256_of_json
from gateway.jobs.schema import step_cache
from gateway.jobs.spec import ArtifactRef

CACHE_KEY_SCHEME = 2
"""Part of every key: raising it when the recipe above changes retires all older entries."""


def step_cache_key(*, tenant: str, service: str, method: str, service_version: str, params: Mapping[str, Any],
                   input_digests: Mapping[str, str]) -> str:
    """The cache key of one step: hex SHA-256 over canonical JSON of what determines its outputs.

    Parameters
    ----------
    tenant : str
        The tenant of the step's job: entries are never shared between tenants.
    service, method : str
        What is called.
    service_version : str
        The version the service reports; part of the key so a new release recomputes.
    params : mapping
        The step's JSON parameters.
    input_digests : mapping of str to str
        Input name -> SHA-256 of the input's content (never its key or path).
    """
    if not service_version:
        raise ValueError("a cache key needs the service's version; an empty one would mix releases")
    if not tenant:
        raise ValueError("a cache key needs the tenant; the step cache is never shared between tenants")
    return sha256_of_json({"scheme": CACHE_KEY_SCHEME, "tenant": tenant, "service": service, "method": method,
                           "service_version": service_version, "params": dict(params),
                           "inputs": dict(input_digests)})


def input_digests(resolved_inputs: Mapping[str, ArtifactRef]) -> dict[str, str]:
    """Input name -> content digest, for :func:`step_cache_key`."""
    return {name: ref.sha256 for name, ref in resolved_inputs.items()}


@dataclass(frozen=True)
class CachedOutputs:
    """One cache entry: the outputs a service version produced for a cache key."""

    cache_key: str
    service: str
    method: str
    service_version: str
    outputs: dict[str, ArtifactRef]
    created_at: datetime


def lookup_cached_outputs(conn: Connection, cache_key: str) -> CachedOutputs | None:
    """The entry for ``cache_key``, or None."""
    row = conn.execute(select(step_cache).where(step_cache.c.cache_key == cache_key)).mappings().first()
    if row is None:
        return None
    return CachedOutputs(cache_key=row["cache_key"], service=row["service"], method=row["method"],
                         service_version=row["service_version"],
                         outputs={k: ArtifactRef.model_validate(v) for k, v in row["outputs"].items()},
                         created_at=row["created_at"])


def remember_outputs(conn: Connection, *, cache_key: str, service: str, method: str, service_version: str,
                     outputs: Mapping[str, ArtifactRef], now: datetime) -> None:
    """Store an entry unless one exists for the key (two runners may compute the same key at once;
    both results are valid, the first one stays)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(step_cache).values(
        cache_key=cache_key, service=service, method=method, service_version=service_version,
        outputs={k: v.model_dump(mode="json", exclude_none=True) for k, v in outputs.items()}, created_at=now,
    ).on_conflict_do_nothing(index_elements=["cache_key"])
    conn.execute(statement)
