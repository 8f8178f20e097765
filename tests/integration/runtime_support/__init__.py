"""A test servicer and a runnable service built on the shared runtime (``python -m runtime_support.serve``)."""
