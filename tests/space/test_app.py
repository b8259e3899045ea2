"""The Space's app (space/app.py) through its functions: uploads refused with their reasons, errors shown rather than
raised, the launch settings that keep every request on the machine, and its command line."""

import re

import pytest

from gve_tools.repo import BUNDLED_MODEL, BUNDLED_SAMPLES, ROOT
from gve_tools.video_search import load_searcher
from gve_tools.video_search.uploads import UploadLimits

VIDEOS = BUNDLED_SAMPLES / "videos"


@pytest.fixture(scope="module")
def app(app_module, tmp_path_factory):
    searcher = load_searcher(str(BUNDLED_MODEL))
    limits = UploadLimits(max_files=3, max_bytes=200_000, max_seconds=30)
    return app_module.VideoSearchApp(searcher, VIDEOS, tmp_path_factory.mktemp("space"), limits)


def first_hit(html: str) -> str:
    """The video of the first row of results' HTML."""
    return re.search(r"<tr[^>]*><td>1</td><td>[\d.-]+</td><td><a href=\"[^\"]*\">([^<]+)</a>", html).group(1)


@pytest.mark.slow
def test_bad_uploads_are_refused_with_their_reason_and_the_app_keeps_serving(app, tmp_path):
    notes, big, good = (
        tmp_path / "notes.mp4",
        tmp_path / "big.mp4",
        BUNDLED_SAMPLES / "queries" / "green_square_top.mp4",
    )
    notes.write_text("a text file, not a video\n")
    big.write_bytes(b"\0" * 300_000)
    for files, message in [
        ([notes], r"\*\*Refused\*\* `notes.mp4`: not a readable video \(.+\)"),
        ([big], r"\*\*Refused\*\* `big.mp4`: 300,000 bytes, over the limit of 200,000 bytes"),
        ([good, good, good, notes], r"\*\*Refused:\*\* 4 files uploaded: at most 3 can be searched at a time"),
    ]:
        folder, status = app.upload([str(f) for f in files], "session")
        assert folder is None and re.search(message, status), status
        assert "Searching 8 videos: the videos of bundled/samples/videos" in status  # still the samples
        html, status = app.search("a large white square moves down quickly", None, None, "", 3, folder)
        assert first_hit(html) == "white_square_moves_down.mp4" and status.startswith("Searching 8 videos")

    folder, status = app.upload([str(good), str(notes)], "session")  # the good one is searched, the bad one named
    assert folder == str(app.workdir / "uploads" / "session") and "`notes.mp4`" in status
    assert "Searching 1 video: your uploaded clips" in status
    html, _ = app.search("a large green square at the top", None, None, "", 5, folder)
    assert first_hit(html) == "green_square_top.mp4" and html.count("<tr") == 2
    app.forget("session")
    assert not (app.workdir / "uploads" / "session").exists()


@pytest.mark.slow
def test_a_bad_query_is_shown_in_the_page_not_raised(app, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    assert app.search("  ", None, None, "", 5, None) == ("", "**Error:** a query needs a text, an image or a video")
    html, status = app.search("", str(broken), None, "", 5, None)
    assert html == "" and status.startswith("**Error:** query 1 (image) could not be embedded: ")
    html, status = app.search("a large red circle moves right quickly", None, None, "", 2, None)
    assert first_hit(html) == "red_circle_moves_right.mp4" and html.count('<tr class="expected">') == 0
    assert 'src="/gradio_api/file=' in html and "<video" in html  # every hit with a player, served by the app


def test_the_launch_keeps_every_request_on_the_machine(app_module, monkeypatch):
    from gradio.themes.utils.fonts import Font, GoogleFont, LocalFont

    fake = app_module.VideoSearchApp(searcher=None, library=VIDEOS, workdir=ROOT / "build" / "space")
    monkeypatch.delenv("SPACE_ID", raising=False)
    options = app_module.launch_options(fake, 7999)
    assert options["server_name"] == "127.0.0.1" and options["server_port"] == 7999 and options["share"] is False
    assert options["max_file_size"] == fake.limits.max_bytes
    assert options["allowed_paths"] == [str(VIDEOS), str(ROOT / "build" / "space" / "uploads")]
    fonts = [*options["theme"].font, *options["theme"].font_mono]
    assert all(not isinstance(font, (GoogleFont, LocalFont)) for font in fonts if isinstance(font, Font)), fonts
    assert app_module.build_ui(fake).analytics_enabled is False
    monkeypatch.setenv("SPACE_ID", "someone/gve-video-search")  # on a Space: where its runtime says
    assert app_module.launch_options(fake, 7999)["server_name"] is None


def test_the_command_line_explains_itself_and_its_errors(app_module, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        app_module.main(["--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--model", "--videos", "--port", "--max-uploads", "--max-upload-bytes", "--max-upload-seconds"):
        assert option in shown
    with pytest.raises(SystemExit) as exit_:
        app_module.main(["--videos", str(tmp_path / "missing")])
    assert (
        exit_.value.code == 1 and f"error: --videos: {tmp_path / 'missing'} is not a folder" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exit_:
        app_module.main(["--max-uploads", "0"])
    assert exit_.value.code == 1 and "max_files must be a positive number, got 0" in capsys.readouterr().err
