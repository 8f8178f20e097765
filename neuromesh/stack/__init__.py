"""The local stack: the object store, every service and the gateway as processes on loopback.

``neuromesh up`` / ``neuromesh down`` drive :mod:`neuromesh.stack.local`; tests start the same
pieces through :mod:`neuromesh.stack.processes` and :mod:`neuromesh.stack.seaweedfs`.
"""
