"""Tenants' artifacts through the gateway: keys and their validation, uploads by presigned URL, listings.

=============  ==============================================================================
``keys``       tenant-relative keys, their validation, and ``tenants/<tenant>/`` prefixing
``uploads``    the uploads table: presigned uploads in flight, tenant-scoped
``service``    :class:`ArtifactService`: create and complete uploads, stat, list, download URLs
=============  ==============================================================================
"""

from gateway.artifacts.keys import tenant_key, user_key, validate_prefix, validate_user_key
from gateway.artifacts.service import ArtifactService, ObjectListing, UploadTicket
from gateway.artifacts.uploads import UploadRecord, UploadStore

__all__ = ["ArtifactService", "ObjectListing", "UploadRecord", "UploadStore", "UploadTicket", "tenant_key",
           "user_key", "validate_prefix", "validate_user_key"]
