"""Which combinations of attributes the test splits keep to themselves, in each fold, and the drawing of random
scenes on either side of that line: held-out ones for the test splits, seen ones for training."""

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import replace

from gve_tools.synthetic.world import (
    COLOURS,
    DIRECTIONS,
    LONG_FRAMES,
    PAIRS,
    POSITIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    Event,
    Scene,
    Thing,
)

FOLDS = 4  # ways of choosing the held-out combinations; no two folds hold out the same one
MOMENT_EVENTS = 5  # events in a moment clip, each of LONG_FRAMES frames (4 s: the bundled model's window)
MOMENT_GAP = 12  # the most frames of empty stage before, between and after them (3 s)


def held_out(event: Event, fold: int = 0) -> bool:
    """Whether the event's combination of attributes is kept for the test splits of `fold`.

    Each colour-shape pair has one held-out position (for static, appearing and disappearing things)
    and one held-out direction (for moving ones), spread so that every position and direction is
    held out for some pairs and seen with others. Fold 0 makes the recorded test splits; the other
    folds hold out other combinations, for choosing training settings without the test splits.
    """
    c, s = list(COLOURS).index(event.thing.colour), SHAPES.index(event.thing.shape)
    if event.kind == "move":
        return event.direction == list(DIRECTIONS)[(c + 2 * s + 1 + fold) % len(DIRECTIONS)]
    return event.position == list(POSITIONS)[(c + s + fold) % len(POSITIONS)]


def held_out_order(first: Thing, second: Thing, fold: int = 0) -> bool:
    """Whether "`first` appears, then `second` appears" is kept for the test splits of `fold`."""
    return (PAIRS.index((first.colour, first.shape)) + PAIRS.index((second.colour, second.shape))) % FOLDS == fold


def seen(scene: Scene, fold: int = 0) -> bool:
    """Whether a training clip of `fold` may show the scene."""
    if scene.together:
        return not held_out_order(*(event.thing for event in scene.events), fold)
    return not any(held_out(event, fold) for event in scene.events)


def random_thing(rng: random.Random) -> Thing:
    colour, shape = rng.choice(PAIRS)
    return Thing(colour, shape, rng.choice(list(SIZES)))


def random_event(
    rng: random.Random,
    test: bool,
    thing: Thing,
    kinds: tuple[str, ...] = ("static", "move", "appear", "disappear"),
    fold: int = 0,
) -> Event:
    """A random event of `thing`: a held-out combination for the test splits, a seen one for training."""
    kind = rng.choice(kinds)
    options = [
        Event(thing, kind, position, direction, rng.choice(list(SPEEDS)))
        for position in POSITIONS
        for direction in DIRECTIONS
    ]
    return rng.choice([event for event in options if held_out(event, fold) == test])


def spatial_variants(event: Event, seen_only: bool = False, fold: int = 0) -> list[Event]:
    """The event with its colour, its shape or its position changed: captions that differ in one spatial word.

    `seen_only` leaves out the combinations `fold` holds out (for training).
    """
    thing = event.thing
    out = [replace(event, thing=replace(thing, colour=c)) for c in COLOURS if c != thing.colour]
    out += [replace(event, thing=replace(thing, shape=s)) for s in SHAPES if s != thing.shape]
    out += [replace(event, position=p) for p in POSITIONS if p != event.position]
    return [e for e in out if not (seen_only and held_out(e, fold))]


def temporal_variants(scene: Scene) -> list[Scene]:
    """The scene changed in time only: another direction, the reverse order, appear for disappear."""
    if scene.together:
        return [replace(scene, events=scene.events[::-1])]
    (event,) = scene.events
    if event.kind == "move":
        return [Scene((replace(event, direction=d),)) for d in DIRECTIONS if d != event.direction]
    flipped = {"appear": "disappear", "disappear": "appear"}[event.kind]
    return [Scene((replace(event, kind=flipped),))]


def temporal_scene(rng: random.Random, test: bool, fold: int = 0) -> Scene:
    """A random scene for the temporal task: an order of two things appearing, or one thing moving or (dis)appearing."""
    if rng.random() < 0.4:
        first, second = random_thing(rng), random_thing(rng)
        while (second.colour, second.shape) == (first.colour, first.shape) or held_out_order(
            first, second, fold
        ) != test:
            first, second = random_thing(rng), random_thing(rng)
        return Scene((Event(first, "appear"), Event(second, "appear")), together=True)
    return Scene((random_event(rng, test, random_thing(rng), ("move", "move", "appear", "disappear"), fold),))


def forever(rng: random.Random, make: Callable[[random.Random], Scene]) -> Iterator[Scene]:
    """Scenes drawn by `make` from `rng`, without end."""
    while True:
        yield make(rng)


def unique(scenes: Iterator[Scene], count: int) -> list[Scene]:
    """The first `count` scenes of distinct captions (fewer if `scenes` has fewer distinct ones)."""
    captions, out = set(), []
    for scene in itertools.islice(scenes, 100 * count):
        caption = scene.caption()
        if caption not in captions:
            captions.add(caption)
            out.append(scene)
            if len(out) == count:
                break
    return out


def moment_clip(rng: random.Random, test: bool, fold: int = 0, used: frozenset[str] = frozenset()) -> Scene:
    """A long clip of MOMENT_EVENTS events of different colour-shape pairs, none captioned as in `used`, with
    random gaps of empty stage, so that its events start anywhere on the window grid."""
    events = []
    for colour, shape in rng.sample(PAIRS, len(PAIRS)):
        event = random_event(rng, test, Thing(colour, shape, rng.choice(list(SIZES))), fold=fold)
        if Scene((event,)).caption() not in used:
            events.append(event)
        if len(events) == MOMENT_EVENTS:
            break
    gaps = tuple(rng.randint(0, MOMENT_GAP) for _ in range(len(events) + 1))
    return Scene(tuple(events), frames_per_event=LONG_FRAMES, gaps=gaps)
