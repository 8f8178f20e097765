"""Step cache keys: made of content digests, so they change with content and only with content."""

from __future__ import annotations

import pytest

from gateway.jobs.cache import input_digests, step_cache_key
from gateway.jobs.digests import canonical_json
from gateway.jobs.spec import ArtifactRef

D1, D2 = "1" * 64, "2" * 64
BASE = dict(tenant="lab-a", service="reduction", method="FitPCA", service_version="1.0.0",
            params={"n_components": 8, "whiten": False}, input_digests={"counts": D1})


def key(**changes):
    return step_cache_key(**{**BASE, **changes})


def test_key_is_a_sha256_and_deterministic():
    assert len(key()) == 64 and int(key(), 16) >= 0
    assert key() == key(params={"whiten": False, "n_components": 8})   # key order does not matter


@pytest.mark.parametrize("change", [
    {"params": {"n_components": 9, "whiten": False}},
    {"params": {"n_components": 8}},
    {"input_digests": {"counts": D2}},
    {"input_digests": {"spikes": D1}},          # the same content as another input is another step
    {"service_version": "1.0.1"},
    {"method": "FitFactorAnalysis"},
    {"service": "decoding"},
    {"tenant": "lab-b"},                        # the cache is tenant-scoped
])
def test_anything_that_changes_the_result_changes_the_key(change):
    assert key(**change) != key()


def test_the_key_of_an_artifact_is_its_digest_not_its_location():
    here = ArtifactRef(key="uploads/a/counts.zarr", bucket="lab-a", sha256=D1)
    there = ArtifactRef(key="jobs/123/pca/counts.zarr", bucket="other", sha256=D1, etag="x")
    assert key(input_digests=input_digests({"counts": here})) == key(input_digests=input_digests({"counts": there}))


def test_a_version_is_required_and_json_must_be_finite():
    with pytest.raises(ValueError, match="version"):
        key(service_version="")
    with pytest.raises(ValueError, match="tenant"):
        key(tenant="")
    with pytest.raises(ValueError, match="NaN"):
        canonical_json({"x": float("inf")})
