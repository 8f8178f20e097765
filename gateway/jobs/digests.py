"""Canonical JSON and its SHA-256: the one way the job engine turns a value into a digest.

Cache keys and the idempotency check compare digests of JSON values, so two values that mean the
same must serialise to the same bytes: keys sorted, no insignificant whitespace, UTF-8, and no
NaN or infinity (which JSON cannot carry and which would never compare equal).

``1`` and ``1.0`` stay different (they are different JSON texts): a parameter given once as an
integer and once as a float misses the cache, which costs a recomputation, never a wrong result.

Example
-------
>>> canonical_json({"b": [1, 2], "a": "é"})
b'{"a":"\\xc3\\xa9","b":[1,2]}'
>>> sha256_of_json({"b": [1, 2], "a": "é"}) == sha256_of_json({"a": "é", "b": [1, 2]})
True
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical UTF-8 JSON bytes; ``ValueError`` for NaN, infinity or non-JSON types."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except TypeError as exc:
        raise ValueError(f"not a JSON value: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"not a JSON value: {exc} (NaN and infinity have no JSON form)") from None


def sha256_of_json(value: Any) -> str:
    """The lowercase hex SHA-256 of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
