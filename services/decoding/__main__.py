"""``python -m services.decoding`` starts the decoding service (settings from NEUROMESH_*)."""

from services.common.server import run_service
from services.decoding.servicer import build_service

run_service(build_service)
