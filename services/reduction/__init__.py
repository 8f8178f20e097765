"""Reduction of population activity to low-dimensional latents and dynamics."""

from services.common.registry import ServiceSpec

SERVICE = ServiceSpec(name="reduction", grpc_port=50052, metrics_port=9152,
                      health_service="neuromesh.reduction.v1.ReductionService")
