"""The runtime every NeuroMesh service shares: settings, errors, logging, the gRPC server
bootstrap (health, reflection, metrics, graceful drain) and the artifact store."""
