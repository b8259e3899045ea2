"""Generate GVE's synthetic video retrieval data: clips whose content is known, training pairs, and test splits.

Every clip is a real mp4 of simple shapes on a plain background, drawn from a `Scene`: objects with a
colour, a shape, a size and a position, that move in a direction at a speed, appear or disappear, one
event after another. Each clip's caption is written from its scene, so what a caption says is true of
its clip and of no other clip in the same split.

The test splits follow UVRB's abilities and are written in scripts/evaluate.py's dataset format:

    TXT  text -> video, ranked against the whole split
    CMP  text + image -> video ("this object, but moving left")
    VIS  image or clip -> video (a still of the object, or the same event drawn again with jitter)
    S    spatial: ranked against candidates whose captions differ only in colour, shape or position
    T    temporal: ranked against candidates that differ only in direction, event order, or appear/disappear
    PR   partially relevant: the caption describes one segment of a longer clip
    LC   long context: a long clip of four events, described in order

Train and test are disjoint in their combinations of attributes (`held_out`): each colour-shape
pair has one position and one direction that only test clips show it in, and some orders of two
things are only shown in test; every test query describes only such held-out combinations, while
each colour, shape, position and direction on its own is seen in training. `train/pairs.jsonl`
holds the training pairs (query fields, the relevant video, the task's instruction), in groups of
hard negatives: clips that differ from each other in one attribute.

`--fold` chooses one of four ways to hold combinations out, no two of which hold out the same one.
Fold 0 (the default) makes the recorded test splits. Folds 1 to 3 are for choosing training settings:
train on a fold's training pairs and compare on its test splits, so that the fold-0 test splits are
only ever used to measure the final recipe.

Outputs are reproducible from `--seed`: the same seed gives the same scenes, captions and pixels.

    python scripts/make_synthetic_data.py build/synthetic              # train/ and test/ (about 1,700 clips)
    python scripts/make_synthetic_data.py build/synthetic --seed 1 --scale 0.25
    python scripts/make_synthetic_data.py build/synthetic-fold1 --fold 1    # validation data
    python scripts/make_synthetic_data.py bundled/samples --samples    # the main job's sample clips and queries
"""

from pathlib import Path

from gve_tools.synthetic.holdout import FOLDS
from gve_tools.synthetic.pairs import make_training_pairs
from gve_tools.synthetic.samples import make_samples
from gve_tools.synthetic.splits import make_test_splits
from gve_tools.text import docstring_parser


def main(argv: list[str] | None = None) -> None:
    parser = docstring_parser(__doc__)
    parser.add_argument("out", type=Path, help="folder to write: train/ and test/ (or, with --samples, the samples)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of training groups and test queries"
    )
    parser.add_argument(
        "--fold",
        type=int,
        choices=range(FOLDS),
        default=0,
        help="which combinations to hold out (default 0, the recorded test splits; 1-3 for choosing training settings)",
    )
    parser.add_argument("--samples", action="store_true", help="write the main job's sample clips and queries")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    if args.samples:
        print(f"wrote {make_samples(args.out)} sample clips and queries.json to {args.out}")
        return
    pairs = make_training_pairs(args.out / "train", args.seed, args.scale, args.fold)
    counts = make_test_splits(args.out / "test", args.seed, args.scale, args.fold)
    print(f"wrote {pairs} training pairs to {args.out / 'train'}")
    print(f"wrote test splits to {args.out / 'test'}: " + ", ".join(f"{k} {v} queries" for k, v in counts.items()))


if __name__ == "__main__":
    main()
