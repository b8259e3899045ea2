"""The synthetic world (gve_tools.synthetic.world): scenes are drawn, and captioned, as they are."""

import pytest

from gve_tools.media import write_video
from gve_tools.synthetic.world import Event, Scene, Thing, render
from tests.synthetic.support import centroid, decoded, parse


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_a_moving_clip_moves_the_way_its_caption_says(tmp_path, direction):
    scene = Scene((Event(Thing("green", "triangle"), "move", direction=direction),))
    assert scene.caption() == f"a large green triangle moves {direction} quickly"
    frames = decoded(write_video(tmp_path / "clip.mp4", render(scene), fps=4))
    (x0, y0), (x1, y1) = centroid(frames[0], "green"), centroid(frames[-1], "green")
    moved = {"left": x0 - x1, "right": x1 - x0, "up": y0 - y1, "down": y1 - y0}[direction]
    assert moved > 30, (direction, (x0, y0), (x1, y1))


def test_events_are_drawn_where_and_when_captions_say():
    frames = render(Scene((Event(Thing("red", "circle"), "appear", position="top"),)))
    assert centroid(frames[0], "red") is None
    x, y = centroid(frames[-1], "red")
    assert y < 40 and 40 < x < 72
    order = render(
        Scene((Event(Thing("blue", "square"), "appear"), Event(Thing("white", "circle"), "appear")), together=True)
    )
    assert centroid(order[3], "blue") is not None and centroid(order[3], "white") is None
    assert centroid(order[-1], "white") is not None
    long = Scene(tuple(Event(Thing(c, "square"), "static") for c in ("red", "blue")), frames_per_event=4)
    assert long.caption() == "a large red square on the left, then a large blue square on the left"
    drawn = render(long)
    assert centroid(drawn[0], "red") and not centroid(drawn[0], "blue")
    assert centroid(drawn[-1], "blue") and not centroid(drawn[-1], "red")


def test_captions_describe_their_scenes():
    event = Event(Thing("red", "circle", "small"), "appear", position="top")
    assert parse(Scene((event, event)).caption()) == [event, event]
    order = Scene((Event(Thing("red", "circle"), "appear"), Event(Thing("blue", "square"), "appear")), together=True)
    assert parse(order.caption()) == [(Thing("red", "circle"), Thing("blue", "square"))]
