"""Simulation of spiking circuits: LIF (CUBA, COBA) and Izhikevich networks, cortical columns, plasticity."""

from services.common.registry import ServiceSpec

SERVICE = ServiceSpec(name="simulation", grpc_port=50053, metrics_port=9153,
                      health_service="neuromesh.simulation.v1.SimulationService")
