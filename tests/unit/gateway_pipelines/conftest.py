"""An artifact store on the session's real S3 server (SeaweedFS), one bucket per test module."""

from __future__ import annotations

import pytest

from services.common.settings import Settings
from services.common.store import ArtifactStore


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))
