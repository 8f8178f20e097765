"""Decoding of behaviour and stimuli from neural recordings."""

from services.common.registry import ServiceSpec

SERVICE = ServiceSpec(name="decoding", grpc_port=50051, metrics_port=9151,
                      health_service="neuromesh.decoding.v1.DecodingService")
