"""Held-out combinations (gve_tools.synthetic.holdout): train and test are disjoint in them, fold by fold."""

from gve_tools.synthetic.holdout import FOLDS
from gve_tools.synthetic.pairs import training_groups
from gve_tools.synthetic.world import DIRECTIONS, PAIRS, POSITIONS, SIZES, Event, Thing
from tests.synthetic.support import is_held_out, parse, read_jsonl


def test_train_and_test_are_disjoint_in_combinations_of_attributes(synthetic):
    for group in training_groups(seed=0, scale=0.1):
        for pair in group:
            for scene in [pair["scene"], *([pair["clip"]] if "clip" in pair else [])]:
                events = [tuple(e.thing for e in scene.events)] if scene.together else scene.events
                assert not any(map(is_held_out, events)), pair
    training = {row["text"] for row in read_jsonl(synthetic / "train" / "pairs.jsonl") if "text" in row}
    for split in ("TXT", "S", "T", "PR", "LC"):
        for query in read_jsonl(synthetic / "test" / split / "queries.jsonl"):
            assert query["text"] not in training
            assert all(map(is_held_out, parse(query["text"]))), (split, query)
    # while each attribute on its own, and each colour-shape pair, is seen in training
    texts = {pair["text"] for group in training_groups(seed=0) for pair in group if "text" in pair}
    singles = [e for text in texts if "this object" not in text for e in parse(text) if isinstance(e, Event)]
    assert {(e.thing.colour, e.thing.shape) for e in singles} == set(PAIRS)
    assert {e.position for e in singles if e.kind != "move"} == set(POSITIONS)
    assert {e.direction for e in singles if e.kind == "move"} == set(DIRECTIONS)


def test_every_combination_is_held_out_by_exactly_one_fold():
    things = [Thing(colour, shape, size) for colour, shape in PAIRS for size in SIZES]
    events = {Event(thing, "static", position=position) for thing in things for position in POSITIONS}
    events |= {Event(thing, "move", direction=direction) for thing in things for direction in DIRECTIONS}
    orders = [(Thing(*first), Thing(*second)) for first in PAIRS for second in PAIRS if first != second]
    for combination in [*events, *orders]:
        assert sum(is_held_out(combination, fold) for fold in range(FOLDS)) == 1, combination
