"""NeuroMesh client package: generated gRPC stubs (``neuromesh.<service>.v1``), the local stack
launcher (``neuromesh.stack``) and the command line (``neuromesh.cli``)."""

__version__ = "0.1.0"
