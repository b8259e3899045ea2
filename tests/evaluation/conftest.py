"""Fixtures of the evaluation's tests: a two-dataset benchmark over short clips, and a count of the model's work."""

import json
from pathlib import Path

import pytest

from gve_tools.evaluation import runner
from gve_tools.media import moving_square, write_image, write_video
from tests.evaluation.support import write_dataset

DIRECTIONS = ("right", "left", "up", "down")


@pytest.fixture(scope="session")
def benchmark(tmp_path_factory) -> Path:
    """Two datasets over 4 short clips: global text->video (TXT, CG), local text+image->video (CMP).

    Shared by the tests: one that changes it works on a copy.
    """
    root = tmp_path_factory.mktemp("bench")
    (root / "benchmark.json").write_text(json.dumps({"name": "MiniBench", "full_name": "Mini test benchmark"}))
    clips = root / "clips"
    clips.mkdir()
    colours = ("red", "green", "blue", "yellow")
    for colour, direction in zip(colours, DIRECTIONS, strict=True):
        write_video(clips / f"{colour}.mp4", moving_square(8, colour=colour, direction=direction), fps=8)
    write_image(clips / "square.png", colour="white")
    corpus = [{"id": c, "video": f"../clips/{c}.mp4"} for c in colours]
    write_dataset(
        root / "txt",
        {"name": "TXT-mini", "abilities": ["TXT", "CG"], "ranking": "global", "metric": "R@1"},
        [
            {"id": f"q{i}", "text": f"a {c} square moving {d}"}
            for i, (c, d) in enumerate(zip(colours, DIRECTIONS, strict=True))
        ],
        corpus,
        [{"query_id": f"q{i}", "doc_id": c, "relevance": 1} for i, c in enumerate(colours)],
    )
    write_dataset(
        root / "cmp",
        {
            "name": "CMP-mini",
            "abilities": ["CMP"],
            "ranking": "local",
            "metric": "nDCG@5",
            "query_instruction": "Find the video of this object doing the described motion.",
        },
        [{"id": "c0", "text": "this, moving right", "image": str(clips / "square.png")}, {"id": "c1", "text": "up"}],
        corpus,
        [
            {"query_id": "c0", "doc_id": "red", "relevance": 2},
            {"query_id": "c0", "doc_id": "green", "relevance": 1},
            {"query_id": "c1", "doc_id": "blue", "relevance": 1},
        ],
        [{"query_id": "c0", "doc_ids": ["red", "green", "blue"]}, {"query_id": "c1", "doc_ids": ["blue", "yellow"]}],
    )
    return root


class Calls(list):
    """The number of inputs of each encode/encode_stream call, and how many times the weights were loaded."""

    loads = 0


@pytest.fixture()
def counted(monkeypatch) -> Calls:
    """Counts the model loads and the inputs that reach the model's encode/encode_stream in evaluate()."""
    calls = Calls()
    original = runner.load_model

    def load_model(*args, **kwargs):
        calls.loads += 1
        model = original(*args, **kwargs)
        for name in ("encode", "encode_stream"):
            method = getattr(model, name)

            def counting(inputs, *a, _method=method, **k):
                inputs = list(inputs)
                calls.append(len(inputs))
                return _method(inputs, *a, **k)

            setattr(model, name, counting)
        return model

    monkeypatch.setattr(runner, "load_model", load_model)
    return calls
