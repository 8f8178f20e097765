"""The science of the connectomics service, free of transport.

* **diffusion MRI** (macro-scale, regions): reading and checking NIfTI, b-values and b-vectors,
  brain masking, DTI, CSD and CSA fits (:mod:`.diffusion`); seeding and deterministic or
  probabilistic tracking in parallel processes, TRK/TCK (:mod:`.tractography`); region x region
  matrices from streamline endpoints (:mod:`.connectivity`); the whole pipeline
  (:mod:`.dmri`); a multi-tensor phantom with known connections (:mod:`.phantom`);
* **EM segmentations** (micro-scale, neurons): the contact graph of a label volume, block by
  block, and the directed graph of a synapse table (:mod:`.contacts`);
* **simulated networks**: structural weights against spike-count correlations
  (:mod:`.simulated`);
* **graph measures** with size guards (:mod:`.graph_measures`) and graph files: CSV edge tables,
  GraphML (:mod:`.graph_io`).

Example
-------
>>> from services.connectomics.core import contact_graph, graph_summary
>>> labels = np.zeros((1, 4, 6), np.uint32)
>>> labels[0, :, 0:2], labels[0, :, 2:4], labels[0, :, 4:6] = 1, 2, 3      # three touching slabs
>>> g = contact_graph(labels)
>>> g.edge_a.tolist(), g.edge_b.tolist(), g.faces.tolist()
([1, 2], [2, 3], [4, 4])
>>> graph_summary(g.adjacency(weight="faces"), measures=["degree"])["degree"].tolist()
[1, 2, 1]
"""

from .contacts import ContactGraph, SynapseGraph, contact_graph, synapse_graph
from .dmri import DmriConnectome, dmri_connectome
from .graph_io import (adjacency_from_edges, edge_table_csv, graphml_bytes, matrix_edge_table, read_edge_table,
                       read_synapse_table)
from .graph_measures import GraphTooLargeError, graph_summary
from .phantom import DiffusionPhantom, diffusion_phantom
from .simulated import (functional_connectivity, spike_count_matrix, structural_matrix,
                        structure_function_agreement)

__all__ = [
    "contact_graph", "ContactGraph", "synapse_graph", "SynapseGraph", "dmri_connectome", "DmriConnectome",
    "diffusion_phantom", "DiffusionPhantom", "graph_summary", "GraphTooLargeError", "edge_table_csv",
    "read_edge_table", "read_synapse_table", "adjacency_from_edges", "matrix_edge_table", "graphml_bytes",
    "structural_matrix", "spike_count_matrix", "functional_connectivity", "structure_function_agreement",
]
