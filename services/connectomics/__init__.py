"""Connectomics: wiring diagrams from diffusion MRI, EM segmentations and simulated networks."""

from services.common.registry import ServiceSpec

SERVICE = ServiceSpec(name="connectomics", grpc_port=50055, metrics_port=9155,
                      health_service="neuromesh.connectomics.v1.ConnectomicsService")
