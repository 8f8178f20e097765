"""``python -m runtime_support.serve``: the test servicer as a real service process."""

from services.common.server import run_service

from .servicer import build

if __name__ == "__main__":
    run_service(build)
