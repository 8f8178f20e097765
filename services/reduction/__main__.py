"""``python -m services.reduction`` starts the reduction service (settings from NEUROMESH_*)."""

from services.common.server import run_service
from services.reduction.servicer import build_service

run_service(build_service)
