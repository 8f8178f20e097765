"""Tenants and their bearer tokens: who is calling, decided from ``Authorization: Bearer <token>``.

The gateway knows tokens only as SHA-256 digests, from the settings (``NEUROMESH_GATEWAY_TOKENS``)
and from a file (``NEUROMESH_GATEWAY_TOKENS_FILE``) that is read again whenever it changes, so a
token is added or revoked without a restart. A leaked configuration therefore reveals no token,
and a token is checked by hashing what the caller sent and comparing the digest with every
configured one in constant time (:func:`hmac.compare_digest`, and no early exit), so the answer's
timing does not tell how much of a digest matched.

The file is either a JSON object (tenant -> digest, or a list of digests) or lines
``tenant:digest``; blank lines and lines starting with ``#`` are ignored. Make a line with::

    printf 'lab-a:%s\\n' "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" >> tokens

A tenant's data is reachable only with one of its tokens: a job or artifact of another tenant is
answered "not found" (404), exactly as one that does not exist, never "forbidden".

Example
-------
>>> import hashlib
>>> registry = TokenRegistry({"lab-a": [hashlib.sha256(b"s3cret").hexdigest()]})
>>> registry.tenant_for("s3cret"), registry.tenant_for("guess")
('lab-a', None)
>>> parse_token_file("# lab A\\nlab-a:" + "0" * 64 + "\\n")
{'lab-a': ['0000000000000000000000000000000000000000000000000000000000000000']}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from grpc import StatusCode

from gateway.jobs.spec import TENANT_PATTERN
from services.common.errors import NeuroMeshError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(TENANT_PATTERN)
MAX_TOKEN_LENGTH = 4096
"""A longer Authorization value is refused before it is hashed."""


class Unauthenticated(NeuroMeshError):
    """No valid bearer token: HTTP 401 with ``WWW-Authenticate: Bearer``."""

    grpc_code = StatusCode.UNAUTHENTICATED
    http_status = 401
    default_reason = "UNAUTHENTICATED"


class TokenFileError(ValueError):
    """The token file cannot be read; the message names the file and the line."""


def token_digest(token: str) -> str:
    """The lower-case hex SHA-256 of a token, as configured."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _checked(tenant: object, digests: object, where: str) -> tuple[str, list[str]]:
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise TokenFileError(f"{where}: {tenant!r} is not a tenant name ({TENANT_PATTERN})")
    values = [digests] if isinstance(digests, str) else digests
    if not isinstance(values, list) or not values:
        raise TokenFileError(f"{where}: tenant {tenant!r} needs a digest or a list of digests")
    for d in values:
        if not isinstance(d, str) or not _DIGEST.match(d):
            raise TokenFileError(f"{where}: tenant {tenant!r} has a value that is not a lower-case hex SHA-256 "
                                 "digest (configure sha256(token), never the token itself)")
    return tenant, list(values)


def parse_token_file(text: str, source: str = "token file") -> dict[str, list[str]]:
    """Tenant -> digests from the text of a token file (JSON object, or ``tenant:digest`` lines)."""
    out: dict[str, list[str]] = {}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
        except ValueError as exc:
            raise TokenFileError(f"{source}: not valid JSON: {exc}") from None
        for tenant, digests in raw.items():
            name, values = _checked(tenant, digests, source)
            out.setdefault(name, []).extend(values)
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tenant, sep, digest = line.partition(":")
        if not sep:
            raise TokenFileError(f"{source}, line {number}: expected tenant:sha256-of-token")
        name, values = _checked(tenant.strip(), digest.strip(), f"{source}, line {number}")
        out.setdefault(name, []).extend(values)
    return out


class TokenRegistry:
    """The configured tenants and token digests; answers which tenant a presented token belongs to.

    Parameters
    ----------
    digests : mapping of str to iterable of str
        Tenant -> SHA-256 hex digests, from the settings.
    file : Path, optional
        A token file, merged with ``digests``; re-read when its modification time or size changes.
        If it becomes unreadable or invalid, the last good contents stay in force (and the error
        is kept in :attr:`file_error` for ``/readyz``).

    Example
    -------
    >>> TokenRegistry({"lab-b": ["f" * 64]}).tenants
    ['lab-b']
    """

    def __init__(self, digests: Mapping[str, Iterable[str]] | None = None, file: Path | None = None) -> None:
        self._static = [(t, d) for t, ds in (digests or {}).items() for d in ds]
        self._file = Path(file) if file is not None else None
        self._file_entries: list[tuple[str, str]] = []
        self._file_stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.file_error: str | None = None
        if self._file is not None:
            self._reload(force=True)
            if self.file_error:
                raise TokenFileError(self.file_error)

    def _reload(self, force: bool = False) -> None:
        assert self._file is not None
        try:
            st = self._file.stat()
        except OSError as exc:
            self.file_error = f"token file {self._file}: {exc.strerror or exc}"
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if not force and stamp == self._file_stamp:
            return
        try:
            parsed = parse_token_file(self._file.read_text(encoding="utf-8"), str(self._file))
        except (OSError, TokenFileError, UnicodeDecodeError) as exc:
            self.file_error = str(exc)
            return
        self._file_entries = [(t, d) for t, ds in parsed.items() for d in ds]
        self._file_stamp = stamp
        self.file_error = None

    def _entries(self) -> list[tuple[str, str]]:
        if self._file is not None:
            with self._lock:
                self._reload()
        return self._static + self._file_entries

    @property
    def tenants(self) -> list[str]:
        return sorted({t for t, _ in self._entries()})

    def tenant_for(self, token: str) -> str | None:
        """The tenant whose digest matches ``sha256(token)``, or None. Every digest is compared."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        presented = token_digest(token).encode()
        found: str | None = None
        for tenant, digest in self._entries():
            if hmac.compare_digest(presented, digest.encode()) and found is None:
                found = tenant
        return found

    def authenticate(self, authorization: str | None) -> str:
        """The tenant of an ``Authorization`` header value; :class:`Unauthenticated` otherwise."""
        if not authorization:
            raise Unauthenticated("this endpoint needs a bearer token: send 'Authorization: Bearer <token>'",
                                  reason="MISSING_TOKEN")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'", reason="MALFORMED_TOKEN")
        tenant = self.tenant_for(token.strip())
        if tenant is None:
            raise Unauthenticated("the bearer token is not valid", reason="INVALID_TOKEN")
        return tenant
