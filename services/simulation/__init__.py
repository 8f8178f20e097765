"""Simulation of spiking circuits: LIF (CUBA, COBA) and Izhikevich networks, cortical columns, plasticity."""
