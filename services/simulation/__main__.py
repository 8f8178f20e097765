"""``python -m services.simulation`` starts the simulation service (settings from NEUROMESH_*)."""

from services.common.server import run_service
from services.simulation.servicer import build_service

run_service(build_service)
