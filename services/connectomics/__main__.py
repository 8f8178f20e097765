"""``python -m services.connectomics`` starts the connectomics service (settings from NEUROMESH_*)."""

from services.common.server import run_service
from services.connectomics.servicer import build_service

run_service(build_service)
