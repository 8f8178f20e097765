"""The science of the simulation service: network specs, the compiled engine, ready-made circuits.

No gRPC here: everything runs from a notebook. See ``network`` (what to simulate), ``engine``
(building and running it; the inner loop is ``native/engine.cpp``) and ``circuits``.
"""

from .circuits import cortical_column, vogels_abbott
from .engine import Chunk, NetworkTooLarge, RunSummary, Simulation, SimulationResult, estimate_memory_bytes, simulate
from .network import (
    IZHIKEVICH_REGIMES, MODEL_PARAMETERS, MODEL_VARIABLES, Connectivity, CurrentInput, InitialValue, NetworkSpec,
    Plasticity, PoissonInput, Population, Projection, Reward, StateMonitor,
)

__all__ = [
    "Chunk", "Connectivity", "CurrentInput", "IZHIKEVICH_REGIMES", "InitialValue", "MODEL_PARAMETERS",
    "MODEL_VARIABLES", "NetworkSpec", "NetworkTooLarge", "Plasticity", "PoissonInput", "Population", "Projection",
    "Reward", "RunSummary", "Simulation", "SimulationResult", "StateMonitor", "cortical_column",
    "estimate_memory_bytes", "simulate", "vogels_abbott",
]
