"""The synapse table a Simulate call stores with record_connectivity: every synapse, global ids, signed weights."""

from __future__ import annotations

import numpy as np

from services.simulation.core.engine import Simulation
from services.simulation.core.network import Connectivity, NetworkSpec, Population, Projection
from services.simulation.servicer import synapse_table


def test_synapse_table_lists_every_synapse_with_global_ids_and_the_channel_sign():
    spec = NetworkSpec(
        populations=(Population("exc", 30, "lif_cuba"), Population("inh", 10, "lif_cuba")),
        projections=(Projection("exc", "inh", synapse="exc", weight=0.5, connectivity=Connectivity("fixed_indegree", 4)),
                     Projection("inh", "exc", synapse="inh", weight=2.0,
                                connectivity=Connectivity("fixed_probability", 0.3)),
                     Projection("exc", "exc", synapse="exc", weight=0.1, connectivity=Connectivity("one_to_one", allow_autapses=True))),
        dt_ms=0.1, seed=3)
    sim = Simulation(spec, threads=1)
    table = synapse_table(sim)
    starts = table["projection_starts"]
    assert starts[0] == 0 and starts[-1] == len(table["weights"]) == sim.synapse_count
    # projection 0: exc (ids 0..29) onto inh (ids 30..39), 4 inputs per inh neuron, +0.5
    pre0, post0 = table["pre_ids"][starts[0]:starts[1]], table["post_ids"][starts[0]:starts[1]]
    assert pre0.max() < 30 and post0.min() >= 30 and np.bincount(post0 - 30).tolist() == [4] * 10
    np.testing.assert_array_equal(table["weights"][starts[0]:starts[1]], 0.5)
    # projection 1: inhibitory, so negative, from ids 30..39 onto 0..29, as the engine built it
    pre, post = sim.connections(1)
    np.testing.assert_array_equal(table["pre_ids"][starts[1]:starts[2]], np.asarray(pre) + 30)
    np.testing.assert_array_equal(table["post_ids"][starts[1]:starts[2]], post)
    np.testing.assert_array_equal(table["weights"][starts[1]:starts[2]], -2.0)
    # projection 2: one to one
    np.testing.assert_array_equal(table["pre_ids"][starts[2]:], np.arange(30))
    np.testing.assert_array_equal(table["post_ids"][starts[2]:], np.arange(30))
