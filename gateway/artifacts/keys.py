"""Artifact keys as tenants write them, and where they live in the bucket.

A tenant names its artifacts with relative keys such as ``sessions/2024-05-01/counts``; the
gateway stores them at ``tenants/<tenant>/<key>``. Every key a caller supplies is checked here
before anything touches the store or the database: ``/``-separated segments of letters, digits,
``.``, ``_`` and ``-`` that start with a letter or digit (so no ``.``/``..`` segment, no hidden
names, nothing absolute, no backslash, no percent-encoding, no control or Unicode look-alike
characters), at most :data:`MAX_SEGMENTS` segments of at most :data:`MAX_SEGMENT_LENGTH`
characters, at most :data:`MAX_KEY_LENGTH` characters in all. The prefix is added by the gateway,
never taken from the caller, so a key cannot reach out of its tenant's namespace.

Example
-------
>>> tenant_key("lab-a", "sessions/s1/counts")
'tenants/lab-a/sessions/s1/counts'
>>> user_key("lab-a", "tenants/lab-a/sessions/s1/counts")
'sessions/s1/counts'
>>> user_key("lab-a", "tenants/lab-b/x") is None
True
>>> validate_user_key("../lab-b/secret")
Traceback (most recent call last):
...
services.common.errors.InvalidArgument: invalid key '../lab-b/secret': segment '..' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'
"""

from __future__ import annotations

import re

from gateway.jobs.spec import TENANT_PATTERN
from services.common.errors import InvalidArgument

TENANTS_ROOT = "tenants"
MAX_KEY_LENGTH = 512
MAX_SEGMENTS = 32
MAX_SEGMENT_LENGTH = 128
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TENANT = re.compile(TENANT_PATTERN)


def _bad(key: object, why: str, field: str) -> InvalidArgument:
    shown = key if isinstance(key, str) and len(key) <= 200 else f"{str(key)[:200]}..."
    return InvalidArgument(f"invalid key {shown!r}: {why}", reason="INVALID_KEY", field=field)


def validate_user_key(key: object, *, field: str = "key") -> str:
    """``key`` if it is a valid tenant-relative artifact key, else :class:`InvalidArgument` naming why."""
    if not isinstance(key, str) or not key:
        raise _bad(key, "a key is a non-empty string", field)
    if len(key) > MAX_KEY_LENGTH:
        raise _bad(key, f"{len(key)} characters long; at most {MAX_KEY_LENGTH}", field)
    if key.startswith("/"):
        raise _bad(key, "keys are relative to your namespace: no leading '/'", field)
    segments = key.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise _bad(key, f"{len(segments)} segments; at most {MAX_SEGMENTS}", field)
    for segment in segments:
        if not segment:
            raise _bad(key, "empty segments ('//', or a trailing '/') are not allowed", field)
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise _bad(key, f"a segment of {len(segment)} characters; at most {MAX_SEGMENT_LENGTH}", field)
        if not _SEGMENT.match(segment):
            raise _bad(key, f"segment {segment[:40]!r} must start with a letter or digit and hold only letters, "
                            "digits, '.', '_' and '-'", field)
    return key


def validate_prefix(prefix: str, *, field: str = "prefix") -> str:
    """A listing prefix: empty, or a key's beginning (it may end with ``/``, or in the middle of a segment)."""
    if not prefix:
        return ""
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if not body:
        raise _bad(prefix, "a prefix cannot be '/' alone; leave it empty to list everything", field)
    validate_user_key(body, field=field)
    return prefix


def _check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise ValueError(f"{tenant!r} is not a tenant name")
    return tenant


def tenant_root(tenant: str) -> str:
    """``tenants/<tenant>/``: the beginning of every key of the tenant's artifacts."""
    return f"{TENANTS_ROOT}/{_check_tenant(tenant)}/"


def tenant_key(tenant: str, key: str, *, field: str = "key") -> str:
    """Where the tenant's artifact ``key`` lives in the bucket (the key is validated first)."""
    return tenant_root(tenant) + validate_user_key(key, field=field)


def user_key(tenant: str, stored_key: str) -> str | None:
    """The tenant-relative key of a stored key, or None when it is not in the tenant's namespace."""
    root = tenant_root(tenant)
    if not stored_key.startswith(root) or len(stored_key) == len(root):
        return None
    return stored_key[len(root):]
