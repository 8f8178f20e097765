"""Fixtures that start real servers as processes on loopback and stop them afterwards."""

from __future__ import annotations

import uuid

import pytest

from neuromesh.stack.seaweedfs import SeaweedS3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS ``weed mini``) on free ports, for the whole test session."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket_name() -> str:
    """A fresh bucket name per test, so tests never see each other's objects."""
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="module")
def module_bucket(s3_server) -> str:
    """A bucket for one test module's service, created up front like `neuromesh up` does."""
    from minio import Minio

    name = f"test-{uuid.uuid4().hex[:16]}"
    Minio(s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key,
          secure=False).make_bucket(name)
    return name
