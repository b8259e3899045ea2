"""Fixtures of the video search's tests: a folder of short clips with a queries file."""

import json

import pytest

from gve_tools.media import moving_square, write_image, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A video folder (one clip in a subfolder, a hidden one and a non-video to skip) and a queries file."""
    root = tmp_path_factory.mktemp("search")
    videos = root / "videos"
    (videos / "more").mkdir(parents=True)
    (videos / ".hidden").mkdir()
    write_video(videos / "red_right.mp4", moving_square(16, colour="red", direction="right"))
    write_video(videos / "green_down.mp4", moving_square(12, colour="green", direction="down"))
    write_video(videos / "more" / "blue_left.MP4", moving_square(16, colour="blue", direction="left"))
    write_video(videos / ".hidden" / "skipped.mp4", moving_square(8))
    (videos / "notes.txt").write_text("not a video\n")
    media = root / "queries"
    media.mkdir()
    write_image(media / "blue.png", colour="blue")
    write_video(media / "probe.mp4", moving_square(16, colour="white", direction="up"))
    queries = [
        {"name": "red <b>square</b> & co", "text": "a red square moving right", "expected": "red_right.mp4"},
        {"text": "a blue square moving left", "expected": "more/blue_left.MP4"},
        {"name": "by image", "image": "queries/blue.png"},
        {"name": "by video", "video": "queries/probe.mp4"},
        {"name": "composed image", "text": "this square, moving down", "image": "queries/blue.png"},
        {
            "name": "composed video",
            "text": "the same motion in green",
            "video": "queries/probe.mp4",
            "instruction": "Find the video that shows the same motion.",
            "expected": "not_indexed.mp4",
        },
    ]
    (root / "queries.json").write_text(json.dumps(queries))
    return root
