"""The batched encode pipeline: same results as one input at a time, in order, within budget, streaming, skip policy."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gve_tools.media import moving_square


@pytest.fixture(scope="module")
def corpus(media) -> list:
    frames = [Image.fromarray(frame) for frame in moving_square(6, colour="yellow", direction="down")]
    return [
        str(media["long_video"]),
        "a short text",
        str(media["image"]),
        {"text": "a composed query", "video": str(media["video"])},
        "a much longer text about a red square that moves from the left of the frame to the right " * 3,
        str(media["video_2"]),
        frames,
        {"text": "and an image", "image": str(media["image_2"])},
        str(media["video"]),
        "one more",
    ]


@pytest.fixture()
def forward_shapes(model, monkeypatch):
    """The (batch, length) of every forward pass the model makes."""
    shapes = []
    original = type(model).forward

    def spy(self, input_ids=None, **kwargs):
        shapes.append(tuple(input_ids.shape))
        return original(self, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    return shapes


def test_pipeline_equals_single_item_encoding_in_input_order(model, corpus, forward_shapes):
    singles = torch.cat([model.encode([item]) for item in corpus])
    forward_shapes.clear()
    batched = model.encode(corpus, batch_size=4, max_batch_tokens=4096, num_workers=3)
    assert batched.shape == singles.shape
    assert torch.all(F.cosine_similarity(batched, singles) >= 0.99999)
    assert 1 < len(forward_shapes) < len(corpus)  # really batched, in more than one batch
    # rows are in input order: each row is closest to its own single embedding
    assert torch.equal((batched @ singles.T).argmax(dim=1), torch.arange(len(corpus)))


def test_batches_stay_within_the_token_budget_and_are_sorted_by_length(model, corpus, forward_shapes):
    model.encode(corpus, batch_size=5, max_batch_tokens=4096)
    assert all(rows <= 5 and rows * length <= 4096 for rows, length in forward_shapes)
    assert any(rows > 1 for rows, _ in forward_shapes)
    with pytest.raises(ValueError, match=r"max_batch_tokens \(100\) must be at least max_length \(4096\)"):
        model.encode(corpus, max_batch_tokens=100)


def test_batches_are_cut_with_the_least_padding_within_the_limits():
    """The dynamic programme against every way of cutting small sorted length lists."""
    import random

    from gve_tools.repo import remote_class

    cut_batches = remote_class("modeling_gve._cut_batches")
    per_batch = remote_class("modeling_gve.BATCH_COST_TOKENS")

    def cost(cuts, lengths):
        return sum((end - start) * lengths[end - 1] + per_batch for start, end in cuts)

    def every_cut(count):  # each of the 2^(count-1) ways to cut count items into runs
        for mask in range(2 ** (count - 1)):
            edges = [0] + [i + 1 for i in range(count - 1) if mask >> i & 1] + [count]
            yield list(itertools.pairwise(edges))

    def within_limits(cuts, lengths, batch_size, budget):
        return all(e - s <= batch_size and (e - s == 1 or (e - s) * lengths[e - 1] <= budget) for s, e in cuts)

    rng = random.Random(0)
    for _ in range(200):
        lengths = sorted(rng.choice([20, 60, 61, 150, 152, 400, 900]) for _ in range(rng.randint(1, 9)))
        batch_size, budget = rng.randint(1, 5), rng.choice([900, 1200, 3000])
        cuts = cut_batches(lengths, batch_size, budget)
        assert [start for start, _ in cuts] == [0, *(end for _, end in cuts[:-1])] and cuts[-1][1] == len(lengths)
        assert within_limits(cuts, lengths, batch_size, budget)
        allowed = [other for other in every_cut(len(lengths)) if within_limits(other, lengths, batch_size, budget)]
        assert cost(cuts, lengths) == min(cost(other, lengths) for other in allowed), (lengths, batch_size, budget)
    # one long prompt among short ones gets a batch of its own instead of padding them all
    assert cut_batches([60] * 8 + [900], 16, 16384) == [(0, 8), (8, 9)]


def test_a_generator_is_read_as_it_goes(model, corpus):
    pulled = []

    def endless():
        for index in itertools.count():
            pulled.append(index)
            yield corpus[index % len(corpus)]

    stream = model.encode_stream(endless(), batch_size=2, show_progress_bar=False)
    first = [next(stream) for _ in range(6)]
    assert [index for index, _ in first] == list(range(6))
    window = 2 * 2  # 2 * batch_size inputs are sorted and embedded together
    assert len(pulled) <= 2 * window + 2 * window  # the two windows yielded, and two windows read ahead
    stream.close()
    expected = model.encode([corpus[i % len(corpus)] for i in range(6)])
    assert torch.all(F.cosine_similarity(torch.stack([row for _, row in first]), expected) >= 0.99999)


def test_skip_policy_reports_exactly_the_bad_items(model, corpus, media):
    bad = {1: str(media["empty_video"]), 4: "/nonexistent/photo.jpg", 7: {"text": "x", "colour": "red"}, 10: ""}
    inputs = list(corpus)
    for position in sorted(bad):
        inputs.insert(position, bad[position])
    result = model.encode(inputs, on_error="skip", batch_size=3)
    assert sorted(result.errors) == sorted(bad)
    assert "the file is empty" in result.errors[1] and result.errors[1].startswith("inputs[1]: ")
    assert "image file not found" in result.errors[4] and "unknown key(s) ['colour']" in result.errors[7]
    assert result.errors[10].startswith("inputs[10]: the input has no content")
    assert result.indices == [i for i in range(len(inputs)) if i not in bad]
    assert torch.all(F.cosine_similarity(result.embeddings, model.encode(corpus)) >= 0.99999)


def test_raise_policy_names_the_first_bad_item(model, corpus, media):
    inputs = [*corpus[:3], str(media["truncated_video"]), *corpus[3:], "/nonexistent/a.png"]
    with pytest.raises(ValueError, match=r"^inputs\[3\]: could not read video"):
        model.encode(inputs, batch_size=2)


def test_bad_arguments(model, corpus):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        model.encode(corpus, on_error="ignore")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['max_frame'\]"):
        model.encode(corpus, max_frame=4)


@pytest.mark.slow
def test_benchmark_runs_and_prints_its_figures(tmp_path):
    """A smoke run on a very small corpus: every path runs and the report carries every figure."""
    import subprocess
    import sys

    from gve_tools.repo import ROOT

    command = [
        sys.executable,
        str(ROOT / "scripts" / "benchmark.py"),
        "--videos",
        "2",
        "--images",
        "1",
        "--texts",
        "1",
        "--scale",
        "2",
        "--corpus-dir",
        str(tmp_path / "corpus"),
        "--output",
        str(tmp_path / "out.json"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in (
        "(a) model card loop",
        "(b) model.encode",
        "(c) sentence-transformers",
        "decode ceiling",
        "one thread, stage by stage",
        "(b) / decode ceiling:",
        "with its stages perfectly overlapped on",
        "(b) peak RSS, 1x corpus:",
        "2x corpus (8 items, streamed)",
    ):
        assert line in result.stdout, line
    import json

    figures = json.loads((tmp_path / "out.json").read_text())
    assert set(figures["results"]) == {"a", "b", "c", "ceiling", "serial"}
    assert all(run["items"] == 4 and run["items_per_s"] > 0 for run in figures["results"].values())
