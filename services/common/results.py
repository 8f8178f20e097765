"""Content-addressed result keys: the same inputs and parameters give the same key.

A service writes each call's outputs under ``derived/<service>/<method>/<digest>/``, where the
digest covers the request with every artifact reference reduced to its content digest (so
renaming or re-uploading an input does not change the key, changing one byte does), plus the
service's version (a new algorithm must not return an old result). A repeated call therefore
finds its outputs already stored and returns them without computing again.

Example
-------
>>> from neuromesh.common.v1 import artifact_pb2
>>> from neuromesh.decoding.v1 import decoding_pb2
>>> ref = artifact_pb2.ArtifactRef(bucket="b", key="x", sha256="ab" * 32)
>>> a = decoding_pb2.BinRecordingRequest(nwb_file=ref, bin_width_s=0.05)
>>> moved = artifact_pb2.ArtifactRef(bucket="other", key="y", sha256="ab" * 32)
>>> b = decoding_pb2.BinRecordingRequest(nwb_file=moved, bin_width_s=0.05)
>>> result_prefix("decoding", "BinRecording", a, "1") == result_prefix("decoding", "BinRecording", b, "1")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from google.protobuf.message import Message

from neuromesh.common.v1 import artifact_pb2

_REF_NAME = artifact_pb2.ArtifactRef.DESCRIPTOR.full_name


def content_identity(message: Message) -> Message:
    """A copy of ``message`` whose ArtifactRefs keep only their sha256 (what the content is)."""
    copy = type(message)()
    copy.CopyFrom(message)
    _reduce_refs(copy)
    return copy


def _reduce_refs(message: Message) -> None:
    if message.DESCRIPTOR.full_name == _REF_NAME:
        if not message.sha256:
            raise ValueError(f"artifact s3://{message.bucket}/{message.key} has no sha256; resolve it first")
        digest = message.sha256
        message.Clear()
        message.sha256 = digest
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _reduce_refs(item)
        elif field.is_repeated:
            for item in value:
                _reduce_refs(item)
        else:
            _reduce_refs(value)


def result_prefix(service: str, method: str, request: Message, version: str, *,
                  extra_inputs: Mapping[str, str] | None = None) -> str:
    """The key prefix under which the outputs of this request are stored.

    ``extra_inputs`` maps names to the sha256 of inputs the request names without an
    ArtifactRef (the objects under a folder prefix, say), so their contents enter the key too.
    """
    payload = content_identity(request).SerializeToString(deterministic=True)
    extra = "".join(f"{name}={digest}\n" for name, digest in sorted((extra_inputs or {}).items()))
    digest = hashlib.sha256(f"{service}/{method}/{version}\n{extra}".encode() + payload).hexdigest()
    return f"derived/{service}/{method}/{digest[:32]}"
