"""gve_tools.video_search.queries: a queries file, the command line's queries, and what `model.encode` gets."""

import json
from pathlib import Path

import pytest

from gve_tools import video_search as vs
from gve_tools.video_search.queries import Query


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_queries_of_a_file_and_their_model_inputs(clips):
    queries = vs.load_queries(clips / "queries.json")
    assert [query.name for query in queries] == [
        "red <b>square</b> & co",
        "query 2",
        "by image",
        "by video",
        "composed image",
        "composed video",
    ]
    assert [query.kind for query in queries] == ["text", "text", "image", "video", "text + image", "text + video"]
    assert queries[0].as_input() == "a red square moving right"  # a plain text stays a string
    assert queries[2].as_input() == {"image": str(clips / "queries" / "blue.png")}
    assert queries[5].as_input() == {
        "text": "the same motion in green",
        "video": str(clips / "queries" / "probe.mp4"),
        "instruction": "Find the video that shows the same motion.",
    }
    assert queries[1].expected == "more/blue_left.MP4" and queries[2].expected is None
    assert queries[4].describe() == f'text + image: "this square, moving down" + {clips / "queries" / "blue.png"}'


def test_command_line_queries_are_named_by_kind_and_share_an_instruction(clips, monkeypatch):
    monkeypatch.chdir(clips)
    queries = vs.command_line_queries(
        ["a red square"],
        images=["queries/blue.png"],
        composed=[["in red", "queries/probe.mp4"]],
        instruction="Find it.",
    )
    assert queries == [
        Query("text 1", text="a red square", instruction="Find it."),
        Query("image 1", image=clips / "queries" / "blue.png", instruction="Find it."),
        Query("composed 1", text="in red", video=clips / "queries" / "probe.mp4", instruction="Find it."),
    ]
    assert queries[1].describe() == f"image: {Path('queries') / 'blue.png'}"  # relative to the working directory
    assert vs.command_line_queries() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "is not valid JSON"),
        ({"text": "a"}, "must hold a non-empty JSON list of query objects"),
        ([], "must hold a non-empty JSON list of query objects"),
        (["a red square"], "query 1: expected an object with keys among name, text"),
        ([{"text": "a"}, {"txt": "b"}], "query 2: unknown key(s) txt (allowed: name, text, image, video, expected"),
        ([{"name": "only a name"}], "query 1: a query needs a text, an image or a video"),
        ([{"text": ""}], "query 1: text must be non-empty string(s)"),
        ([{"text": "a", "expected": 3}], "query 1: expected must be non-empty string(s)"),
        ([{"image": "missing.png"}], "query 1: missing.png does not exist (looked for "),
        ([{"image": "queries/blue.png", "video": "queries/probe.mp4"}], "a query has an image or a video, not both"),
        ([{"text": "a", "expected": "a.mp4", "expected_start": 1}], "expected_start needs expected_end (a moment has"),
        ([{"text": "a", "expected_start": 1, "expected_end": 2}], "expected_start and expected_end need expected"),
        ([{"text": "a", "expected": "a.mp4", "expected_start": "1", "expected_end": 2}], "must be numbers of seconds"),
        ([{"text": "a", "expected": "a.mp4", "expected_start": True, "expected_end": 2}], "must be numbers of seconds"),
        (
            [{"text": "a", "expected": "a.mp4", "expected_start": 3, "expected_end": 2}],
            "at least 0 and below expected_end",
        ),
        ([{"text": "a", "expected": "a.mp4", "expected_start": -1, "expected_end": 2}], "got -1 and 2"),
        ([{"text": "a", "expected": "a.mp4", "expected_start": 1, "expected_end": "nan"}], "must be numbers"),
    ],
)
def test_a_bad_queries_file_is_explained(clips, tmp_path, capsys, content, message):
    queries = write(tmp_path / "q.json", content)
    if "queries/" in json.dumps(content):
        queries = write(clips / "bad_queries.json", content)
    code = None
    with pytest.raises(SystemExit) as exit_info:
        code = vs.main(["--videos", str(clips / "videos"), "--queries", str(queries), "--output", str(tmp_path)])
    assert code is None and exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert str(queries) in err


def test_a_query_can_name_a_moment_of_its_expected_video(tmp_path):
    queries = write(
        tmp_path / "q.json",
        [
            {"text": "a red square", "expected": "long.mp4", "expected_start": 8, "expected_end": 12.5},
            {"text": "a blue one", "expected": "short.mp4"},
        ],
    )
    moment, whole = vs.load_queries(queries)
    assert moment == Query("query 1", text="a red square", expected="long.mp4", expected_start=8.0, expected_end=12.5)
    assert moment.expected_span == (8.0, 12.0 + 0.5) and isinstance(moment.expected_start, float)
    assert whole.expected_span is None and moment.as_input() == "a red square"  # the moment is no part of the input


def test_a_form_makes_one_query_of_its_filled_parts(clips):
    from gve_tools.video_search.queries import make_query

    image = clips / "queries" / "blue.png"
    query = make_query("  a blue square  ", str(image), None, "")
    assert query == Query("text + image", text="a blue square", image=image.resolve())
    assert make_query("", None, str(clips / "queries" / "probe.mp4"), " Find the same motion. ").instruction == (
        "Find the same motion."
    )
    assert make_query("a red square").as_input() == "a red square"
    for fields, message in [
        (("  ", None, None), "a query needs a text, an image or a video"),
        (("x", str(image), str(clips / "queries" / "probe.mp4")), "an image or a video, not both"),
        (("x", str(clips / "missing.png"), None), "image: .*missing.png does not exist"),
    ]:
        with pytest.raises(vs.SearchError, match=message):
            make_query(*fields)
