"""Segmentation of neurons in EM volumes."""

from services.common.registry import ServiceSpec

SERVICE = ServiceSpec(name="segmentation", grpc_port=50054, metrics_port=9154,
                      health_service="neuromesh.segmentation.v1.SegmentationService")
