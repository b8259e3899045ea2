"""gve_tools.corpus.stages, called directly (no Ray): bad items named by id and manifest row from the input
error's own reason, and ItemError as it comes back from a Ray worker."""

import pickle

import numpy as np
import pytest

from gve_tools.corpus.manifest import MANIFEST_FIELDS
from gve_tools.corpus.stages import Embedder, ItemError, find_item_error, preprocess
from gve_tools.errors import GVEToolsError
from tests.corpus.support import cosines

pa = pytest.importorskip("pyarrow")


def batch(rows):
    """A stage's input: manifest rows with their 0-based `row` and their `shard`."""
    table = {key: [row.get(key) for row in rows] for key in MANIFEST_FIELDS}
    return pa.table({**table, "row": list(range(len(rows))), "shard": [0] * len(rows)})


@pytest.fixture
def bad_batch(media, tmp_path):
    return batch(
        [
            {"id": "good", "text": "a red square"},
            {"id": "missing", "video": str(tmp_path / "nowhere.mp4")},
            {"id": "one-frame", "video": str(media["one_frame_video"])},
        ]
    )


@pytest.mark.slow
def test_the_actor_names_bad_items_by_id_and_row(tiny_path, model, bad_batch):
    embedder = Embedder(str(tiny_path), None, "cpu", "float32", None, "skip", 4, 16384, 1)
    table = embedder(bad_batch)
    errors = table.column("error").to_pylist()
    assert errors[0] is None
    assert errors[1].startswith("id 'missing' (manifest row 2): ") and "file not found" in errors[1]
    assert errors[2].startswith("id 'one-frame' (manifest row 3): ") and "1 frame(s)" in errors[2]
    assert not any("inputs[" in error for error in errors[1:])
    embeddings = table.column("embedding").to_pylist()
    assert embeddings[1:] == [b"", b""]  # no placeholder vector
    vector = np.frombuffer(embeddings[0], np.float32).copy()
    assert cosines(vector, model.encode(["a red square"])[0]) >= 0.9999

    embedder.on_error = "raise"
    with pytest.raises(ItemError, match=r"^id 'missing' \(manifest row 2\): .*file not found"):
        embedder(bad_batch)


@pytest.mark.slow
def test_a_rows_time_range_reaches_the_model(tiny_path, model, media):
    span = {"video_start": 2.5, "video_end": 7.0}
    rows = [
        {"id": "part", "video": str(media["long_video"]), **span},
        {"id": "whole", "video": str(media["long_video"])},
    ]
    embedder = Embedder(str(tiny_path), None, "cpu", "float32", None, "raise", 4, 16384, 1)
    vectors = [
        np.frombuffer(value, np.float32).copy() for value in embedder(batch(rows)).column("embedding").to_pylist()
    ]
    expected = model.encode([{"video": str(media["long_video"]), **span}, str(media["long_video"])])
    assert cosines(vectors[0], expected[0]) >= 0.9999 and cosines(vectors[1], expected[1]) >= 0.9999
    assert cosines(vectors[0], expected[1]) < 0.9999


def test_the_decoding_task_names_bad_items_by_id_and_row(tiny_path, bad_batch):
    errors = preprocess(bad_batch, str(tiny_path), None, None, "skip").column("error").to_pylist()
    assert errors[0] is None
    assert errors[1].startswith("id 'missing' (manifest row 2): ") and "file not found" in errors[1]
    assert errors[2].startswith("id 'one-frame' (manifest row 3): ") and "1 frame(s)" in errors[2]
    with pytest.raises(ItemError, match=r"^id 'missing' \(manifest row 2\): .*file not found"):
        preprocess(bad_batch, str(tiny_path), None, None, "raise")


def test_an_item_error_comes_back_from_a_worker_as_it_was_raised():
    exceptions = pytest.importorskip("ray.exceptions")

    raised = ItemError("id 'x' (manifest row 3): broken")
    raised.args = (raised.args[0] + "\nFailed to apply UDF transform after 1/1 attempts",)  # what Ray adds
    returned = pickle.loads(pickle.dumps(raised))
    assert str(returned) == returned.message == "id 'x' (manifest row 3): broken"
    assert isinstance(returned, GVEToolsError) and isinstance(returned, ValueError)

    wrapped = exceptions.RayTaskError("MapBatches(preprocess)", "traceback", returned).as_instanceof_cause()
    assert isinstance(wrapped, ItemError)  # the wrapper is one too, but its text is the traceback
    assert find_item_error(wrapped) is returned
    assert find_item_error(exceptions.RayTaskError("f", "traceback", ValueError("other"))) is None


def test_a_run_records_its_video_reader_and_a_resume_with_another_is_refused(tiny_path, tmp_path, monkeypatch):
    """The reader decides a video's frames (benchmarks/DECODERS.md), so a folder's embeddings are of one reader: the
    settings record it, and the workers are told to use it (`use_video_reader`)."""
    import re
    import sys

    from gve_tools.corpus.settings import check_settings, run_settings
    from gve_tools.corpus.shards import OutputMismatch
    from gve_tools.corpus.stages import use_video_reader
    from gve_tools.repo import remote_module

    tooling = remote_module("processing_gve")
    settings = {}
    for reader in ("torchcodec", "decord"):
        monkeypatch.setenv("GVE_VIDEO_READER", reader)
        tooling.video_reader.cache_clear()
        settings[reader] = run_settings(str(tiny_path))
        assert settings[reader]["video_reader"] == tooling.video_reader_identity()
    tooling.video_reader.cache_clear()
    check_settings(tmp_path, settings["torchcodec"])
    with pytest.raises(OutputMismatch, match=re.compile(r"video_reader: \{'reader': 'torchcodec'.* in the folder")):
        check_settings(tmp_path, settings["decord"])

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_path, trust_remote_code=True)
    processing = sys.modules[type(processor).__module__]
    monkeypatch.setenv("GVE_VIDEO_READER", "torchcodec")  # the worker's own environment says torchcodec...
    use_video_reader(processor, "decord")  # ...the run's settings say decord
    assert processing.video_reader() == "decord"
    processing.video_reader.cache_clear()
