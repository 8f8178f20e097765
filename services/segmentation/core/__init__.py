"""The science of the segmentation service, free of transport. Axes are always ``(z, y, x)``.

* synthetic EM volumes with known neurons, and their perfect boundary maps and affinities
  (:mod:`.synthetic`);
* classical segmentation: distance-transform seeded watershed fragments (a linear-time native
  flood, :func:`flood_watershed`), the region adjacency
  graph, hierarchical average-linkage agglomeration cut at any threshold, small-fragment clean-up
  (:mod:`.watershed`);
* block-by-block processing of volumes larger than memory, with retries, fragments stitched
  across block faces where neighbouring blocks' reads overlap, and a global agglomeration
  (:mod:`.blockwise`);
* scores against ground truth: VOI split/merge, adapted Rand error, CREMI score (:mod:`.metrics`);
* a table of segments: sizes, bounding boxes, centroids (:mod:`.segments`).

Example
-------
>>> from services.segmentation.core import (affinities_from_labels, agglomerate, boundary_map_from_labels,
...     region_adjacency_graph, seeded_watershed, segmentation_scores, synthetic_em_volume)
>>> raw, truth = synthetic_em_volume((16, 24, 24), n_neurites=5, seed=0)
>>> fragments = seeded_watershed(boundary_map_from_labels(truth), min_seed_distance=2, mask=truth > 0)
>>> tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities_from_labels(truth)))
>>> segmentation_scores(tree.segmentation(0.5), truth).cremi_score     # perfect input, perfect result
0.0
"""

from .blockwise import (Block, BlockFailedError, BlockwiseResult, blockwise_fragments,
                        blockwise_region_adjacency_graph, blockwise_segmentation, join_fragments,
                        match_overlapping_fragments, plan_blocks, run_blocks, stitching_boxes)
from .metrics import (SegmentationScores, adapted_rand_error, contingency_table, scores_from_table,
                      segmentation_scores,
                      variation_of_information)
from .segments import SEGMENT_TABLE_COLUMNS, SegmentTableAccumulator, segment_table
from .synthetic import (DEFAULT_OFFSETS, SyntheticVolume, affinities_from_labels, boundary_map_from_labels,
                        synthetic_em_volume)
from .watershed import (MergeTree, RegionAdjacencyGraph, affinities_to_boundaries, agglomerate, flood_watershed,
                        quantize_boundaries, region_adjacency_graph, remove_small_fragments, seeded_watershed,
                        segment_at_thresholds)

__all__ = [
    "synthetic_em_volume", "SyntheticVolume", "boundary_map_from_labels", "affinities_from_labels",
    "DEFAULT_OFFSETS", "seeded_watershed", "affinities_to_boundaries", "region_adjacency_graph",
    "RegionAdjacencyGraph", "agglomerate", "MergeTree", "segment_at_thresholds", "remove_small_fragments",
    "plan_blocks", "Block", "run_blocks", "BlockFailedError", "blockwise_fragments",
    "blockwise_region_adjacency_graph", "blockwise_segmentation", "BlockwiseResult", "match_overlapping_fragments",
    "stitching_boxes", "join_fragments", "flood_watershed", "quantize_boundaries", "contingency_table",
    "variation_of_information", "adapted_rand_error", "segmentation_scores", "scores_from_table", "SegmentationScores",
    "segment_table", "SegmentTableAccumulator", "SEGMENT_TABLE_COLUMNS",
]
