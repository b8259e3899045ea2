"""gve_tools.video_search.index: the videos of a folder, and the on-disk cache of their embeddings."""

import os
import shutil
from types import SimpleNamespace

import pytest
import torch

from gve_tools import video_search as vs
from gve_tools.media import moving_square, write_video
from gve_tools.repo import query_instruction
from gve_tools.video_search import search


def test_lists_videos_recursively_sorted_without_hidden_ones(clips):
    found = [path.relative_to(clips / "videos").as_posix() for path in vs.list_videos(clips / "videos")]
    assert found == ["green_down.mp4", "more/blue_left.MP4", "red_right.mp4"]


@pytest.mark.slow
def test_the_cache_spares_embedding_the_videos_again(tiny_path, model, clips, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "videos"
    shutil.copytree(clips / "videos", folder)
    calls = []
    encode_stream = model.encode_stream

    def counting(inputs, instruction=None, **kwargs):
        if instruction is None:  # documents: the videos
            calls.append([os.path.basename(item) for item in inputs])
        return encode_stream(inputs, instruction, **kwargs)

    monkeypatch.setattr(model, "encode_stream", counting)
    monkeypatch.setattr(search, "load_model", lambda *args, **kwargs: model)
    run = ["--model", str(tiny_path), "--videos", str(folder), "--output", str(tmp_path / "out"), "--text", "a square"]

    assert vs.main(run) == 0
    assert calls == [["green_down.mp4", "blue_left.MP4", "red_right.mp4"]]
    first = capsys.readouterr().out
    assert "indexing 3 videos: 0 from the cache, 3 to embed" in first
    assert len(list((tmp_path / "out" / "cache").glob("videos-*.pt"))) == 1

    assert vs.main(run) == 0
    assert len(calls) == 1  # nothing embedded
    second = capsys.readouterr().out
    assert "indexing 3 videos: 3 from the cache, 0 to embed" in second
    table = lambda text: text.split("\n\n", 1)[1].split("results page")[0]  # noqa: E731
    assert table(first) == table(second)

    # a changed file and a new one are embedded, the others still come from the cache
    write_video(folder / "green_down.mp4", moving_square(12, colour="yellow", direction="down"))
    os.utime(folder / "green_down.mp4", ns=(1, 1))
    write_video(folder / "new.mp4", moving_square(8, colour="white", direction="left"))
    assert vs.main(run) == 0
    assert calls[1:] == [["green_down.mp4", "new.mp4"]]
    assert "indexing 4 videos: 2 from the cache, 2 to embed" in capsys.readouterr().out

    # another model (its folder's files changed) has its own cache
    monkeypatch.setattr(search, "cache_identity", lambda *args: {"model": "other"})
    assert vs.main(run) == 0
    assert len(calls[2]) == 4


@pytest.mark.slow
def test_an_edit_of_the_checkpoints_remote_code_invalidates_the_cache(tiny_path, clips, tmp_path, capsys):
    """The cache is keyed by every file of the checkpoint folder: an edited processing_gve.py re-embeds everything."""
    checkpoint = shutil.copytree(tiny_path, tmp_path / "gve-tiny-copy")
    search = dict(
        model=str(checkpoint), videos=clips / "videos", queries=[vs.Query("q", text="red")], output=tmp_path / "out"
    )

    assert vs.video_search(**search).embedded == 3
    assert "indexing 3 videos: 0 from the cache, 3 to embed" in capsys.readouterr().out
    unchanged = vs.video_search(**search)  # the same folder: every embedding from the cache
    assert unchanged.embedded == 0
    assert "indexing 3 videos: 3 from the cache, 0 to embed" in capsys.readouterr().out

    with open(checkpoint / "processing_gve.py", "a") as code:  # the weights and configs stay as they were
        code.write("\n# an edit of the remote code\n")
    edited = vs.video_search(**search)
    assert edited.embedded == 3
    assert "indexing 3 videos: 0 from the cache, 3 to embed" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "cache").glob("videos-*.pt"))) == 2
    assert [hit.video for hit in edited.results[0].hits] == [hit.video for hit in unchanged.results[0].hits]


def test_the_cache_key_is_the_checkpoints_contents_and_settings(tiny_path, tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_path, trust_remote_code=True)
    model = SimpleNamespace(config=config, dtype=torch.float32, device=torch.device("cpu"))  # what the key reads
    copy = shutil.copytree(tiny_path, tmp_path / "copy")
    identity = vs.cache_identity(model, str(copy), None)
    assert identity["checkpoint"]["folder"] == str(copy.resolve())
    assert identity["settings"]["dtype"] == "float32" and identity["settings"]["device"] == "cpu"
    assert vs.cache_identity(model, str(tiny_path), None)["content"] == identity["content"]  # where it is: no part
    (copy / "README.md").write_text("a model card does not change an embedding\n")
    assert vs.cache_identity(model, str(copy), None)["content"] == identity["content"]
    for name in ("processing_gve.py", "tokenizer_config.json", "chat_template.jinja"):
        changed = shutil.copytree(tiny_path, tmp_path / f"changed-{name}")
        with open(changed / name, "a") as file:
            file.write("\n")
        assert vs.cache_identity(model, str(changed), None)["content"] != identity["content"], name


@pytest.mark.slow
def test_unreadable_videos_are_skipped_and_reported(tiny_path, model, clips, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips / "videos" / "red_right.mp4", folder)
    (folder / "broken.mp4").write_text("this is not a video\n" * 10)
    monkeypatch.setattr(search, "load_model", lambda *args, **kwargs: model)
    report = vs.video_search(model=str(tiny_path), videos=folder, queries=[vs.Query("q", text="red")], output=tmp_path)
    assert [path.name for path in report.videos] == ["red_right.mp4"]
    assert list(report.skipped) == ["broken.mp4"]
    err = capsys.readouterr().err
    assert "skipped broken.mp4: " in err
    assert "inputs[" not in err and "inputs[" not in report.skipped["broken.mp4"]  # the reason, not encode's label
    assert [hit.video for hit in report.results[0].hits] == ["red_right.mp4"]


@pytest.mark.slow
def test_videos_longer_than_the_window_are_indexed_as_segments_and_cached(
    tiny_path, model, clips, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "videos"
    shutil.copytree(clips / "videos", folder)
    write_video(folder / "long.mp4", moving_square(40, colour="white", direction="left"))  # 5 s at 8 fps; others 2 s
    calls = {"whole": [], "segments": []}
    encode_stream, encode_segments = model.encode_stream, model.encode_segments

    def streaming(inputs, instruction=None, **kwargs):
        if instruction is None:  # documents: the videos
            calls["whole"].append([os.path.basename(item) for item in inputs])
        return encode_stream(inputs, instruction, **kwargs)

    def segmenting(video, window=None, stride=None, *args, **kwargs):
        calls["segments"].append((os.path.basename(video), window, stride))
        return encode_segments(video, window, stride, *args, **kwargs)

    monkeypatch.setattr(model, "encode_stream", streaming)
    monkeypatch.setattr(model, "encode_segments", segmenting)
    monkeypatch.setattr(search, "load_model", lambda *args, **kwargs: model)
    queries = [
        vs.Query("text", text="a white square moving left"),
        vs.Query("video", video=clips / "queries/probe.mp4"),
    ]
    run = dict(model=str(tiny_path), videos=folder, queries=queries, output=tmp_path / "out", top_k=4)

    report = vs.video_search(**run, window=2.5)
    assert calls == {
        "whole": [["green_down.mp4", "blue_left.MP4", "red_right.mp4"]],
        "segments": [("long.mp4", 2.5, None)],
    }
    assert "indexing 4 videos: 0 from the cache, 4 to embed (1 longer than the 2.5 s window, as segments)" in (
        capsys.readouterr().out
    )
    segments = encode_segments(str(folder / "long.mp4"), 2.5, show_progress_bar=False)
    assert report.segments == {"long.mp4": segments.spans} and len(segments.spans) > 1
    embedded = model.encode([query.as_input() for query in queries], instruction=query_instruction())
    for result, query in zip(report.results, embedded, strict=True):
        (hit,) = [hit for hit in result.hits if hit.video == "long.mp4"]
        span, score = segments.best(query)
        assert hit.span == span and hit.score == pytest.approx(score, abs=1e-5)
        assert all(other.span is None for other in result.hits if other is not hit)

    again = vs.video_search(**run, window=2.5)  # everything from the cache, segments included
    assert len(calls["whole"]) == 1 and len(calls["segments"]) == 1 and again.embedded == 0
    assert "indexing 4 videos: 4 from the cache, 0 to embed (1 longer" in capsys.readouterr().out
    assert [result.hits for result in again.results] == [result.hits for result in report.results]

    vs.video_search(**run, window=2.0, stride=1.0)  # other segments of the long video; the 2 s clips stay whole
    assert calls["segments"][1:] == [("long.mp4", 2.0, 1.0)] and len(calls["whole"]) == 1
    assert "indexing 4 videos: 3 from the cache, 1 to embed (1 longer than the 2 s window" in capsys.readouterr().out

    whole = vs.video_search(**run, segments=False)  # the long video embedded whole, as a document
    assert calls["whole"][1:] == [["long.mp4"]] and len(calls["segments"]) == 2
    assert "indexing 4 videos: 3 from the cache, 1 to embed\n" in capsys.readouterr().out
    assert whole.segments == {} and all(hit.span is None for result in whole.results for hit in result.hits)


@pytest.mark.slow
def test_progress_counts_each_video_embedded_and_a_searcher_answers_as_the_job(
    tiny_path, model, clips, tmp_path, monkeypatch
):
    folder = tmp_path / "videos"
    shutil.copytree(clips / "videos", folder)
    write_video(folder / "long.mp4", moving_square(40, colour="white", direction="left"))  # segments at 2.5 s
    (folder / "broken.mp4").write_text("not a video\n")
    monkeypatch.setattr(search, "load_model", lambda *args, **kwargs: model)
    searcher = vs.load_searcher(str(tiny_path), window=2.5)
    steps = []
    index = searcher.index(folder, tmp_path / "cache", progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # the broken video counts too: it is done with
    assert [path.name for path in index.videos] == ["green_down.mp4", "long.mp4", "blue_left.MP4", "red_right.mp4"]
    steps.clear()
    again = searcher.index(folder, tmp_path / "cache", progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 1)] and again.videos == index.videos  # only the broken one is tried again

    query = vs.Query("q", text="a white square moving left", expected="long.mp4")
    (result,) = searcher.answer(index, folder, [query], top_k=2)
    report = vs.video_search(model=str(tiny_path), videos=folder, queries=[query], output=tmp_path / "out", window=2.5)
    assert result.hits == report.results[0].hits[:2]
    with pytest.raises(vs.SearchError, match=r"query 1 \(bad\) could not be embedded"):
        searcher.answer(index, folder, [vs.Query("bad", image=folder / "broken.mp4")], top_k=2)
