"""GVE's synthetic video retrieval data: clips whose content is known, training pairs and test splits
(`python scripts/make_synthetic_data.py`; `cli`'s docstring describes the data).

world    things, events and scenes, their captions, and drawing them (clips, stills) into files
holdout  the combinations each fold keeps for the test splits, and drawing random scenes on either side
tasks    the retrieval tasks' query instructions
splits   the seven test splits, in evaluate.py's dataset format
pairs    the training pairs, in groups of hard negatives
samples  the main job's sample clips and queries (bundled/samples)
cli      the command line
"""

from gve_tools.synthetic.holdout import FOLDS, held_out, held_out_order, spatial_variants, temporal_variants
from gve_tools.synthetic.pairs import make_training_pairs, training_groups
from gve_tools.synthetic.samples import make_samples
from gve_tools.synthetic.splits import BENCHMARK, make_test_splits
from gve_tools.synthetic.tasks import instructions
from gve_tools.synthetic.world import Event, Scene, Thing, render, still

__all__ = [
    "BENCHMARK",
    "FOLDS",
    "Event",
    "Scene",
    "Thing",
    "held_out",
    "held_out_order",
    "instructions",
    "make_samples",
    "make_test_splits",
    "make_training_pairs",
    "render",
    "spatial_variants",
    "still",
    "temporal_variants",
    "training_groups",
]
