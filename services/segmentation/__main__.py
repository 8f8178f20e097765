"""``python -m services.segmentation`` starts the segmentation service (settings from NEUROMESH_*)."""

from services.common.server import run_service
from services.segmentation.servicer import build_service

run_service(build_service)
