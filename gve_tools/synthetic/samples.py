"""The main job's sample folder (bundled/samples): a few clips and a query of every kind, each naming its clip."""

import json
from dataclasses import replace
from pathlib import Path

from PIL import Image

from gve_tools.media import write_video
from gve_tools.synthetic.tasks import instructions
from gve_tools.synthetic.world import FPS, Event, Scene, Thing, render, still


def make_samples(root: Path) -> int:
    """The main job's sample folder: a few test clips in `videos/`, and `queries.json` of every query kind."""
    videos, media = root / "videos", root / "queries"
    videos.mkdir(parents=True, exist_ok=True)
    media.mkdir(parents=True, exist_ok=True)
    scenes = {
        "red_circle_moves_left.mp4": Scene((Event(Thing("red", "circle"), "move", direction="left"),)),
        "red_circle_moves_right.mp4": Scene((Event(Thing("red", "circle"), "move", direction="right"),)),
        "green_square_on_the_top.mp4": Scene((Event(Thing("green", "square"), "static", position="top"),)),
        "blue_triangle_appears.mp4": Scene((Event(Thing("blue", "triangle"), "appear", position="right"),)),
        "yellow_circle_disappears.mp4": Scene((Event(Thing("yellow", "circle", "small"), "disappear"),)),
        "white_square_moves_down.mp4": Scene((Event(Thing("white", "square"), "move", direction="down"),)),
        "purple_triangle_moves_up.mp4": Scene(
            (Event(Thing("purple", "triangle", "small"), "move", direction="up", speed="slowly"),)
        ),
    }
    for name, scene in scenes.items():
        write_video(videos / name, render(scene), fps=FPS)
    queries = [{"name": f"caption of {name}", "text": s.caption(), "expected": name} for name, s in scenes.items()]
    Image.fromarray(still(Thing("white", "square"), jitter=3)).save(media / "white_square.png")
    write_video(media / "green_square_top.mp4", render(replace(scenes["green_square_on_the_top.mp4"], jitter=5)), FPS)
    queries += [
        {
            "name": "image of a white square",
            "image": "queries/white_square.png",
            "expected": "white_square_moves_down.mp4",
        },
        {
            "name": "another clip of the green square",
            "video": "queries/green_square_top.mp4",
            "expected": "green_square_on_the_top.mp4",
        },
        {
            "name": "this red circle, but moving right",
            "text": "this object, but moving right quickly",
            "image": "queries/red_circle.png",
            "instruction": instructions()["CMP"],
            "expected": "red_circle_moves_right.mp4",
        },
    ]
    Image.fromarray(still(Thing("red", "circle"))).save(media / "red_circle.png")
    (root / "queries.json").write_text(json.dumps(queries, indent=2) + "\n", encoding="utf-8")
    return len(scenes)
