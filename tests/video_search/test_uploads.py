"""gve_tools.video_search.uploads: the limits on clips someone uploads, and why each refused one is refused."""

import pytest

from gve_tools.media import moving_square, write_video
from gve_tools.video_search.queries import SearchError
from gve_tools.video_search.uploads import UploadLimits, check_uploads, store_uploads


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """Two good clips (2 s and 5 s at 8 fps), a text file named .mp4, an image, and a clip with a risky name."""
    folder = tmp_path_factory.mktemp("uploads")
    write_video(folder / "short.mp4", moving_square(16, colour="red", direction="right"))
    write_video(folder / "long.mp4", moving_square(40, colour="blue", direction="left"))
    (folder / "notes.mp4").write_text("not a video\n")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "a b;$(x).mp4").write_bytes((folder / "short.mp4").read_bytes())
    return folder


def test_each_refused_upload_is_named_with_its_reason(model, uploads):
    size = (uploads / "long.mp4").stat().st_size
    files = [uploads / name for name in ("short.mp4", "long.mp4", "notes.mp4", "photo.png")]
    accepted, refused = check_uploads(model, files, UploadLimits(max_files=4, max_bytes=10**6, max_seconds=3))
    assert accepted == [uploads / "short.mp4"]
    assert refused == {
        "long.mp4": "5.0 s long, over the limit of 3 s",
        "notes.mp4": refused["notes.mp4"],
        "photo.png": refused["photo.png"],
    }
    assert refused["notes.mp4"].startswith("not a readable video (")
    assert refused["photo.png"].startswith("not a video file by its name (accepted: .avi, ")
    small = UploadLimits(max_bytes=size - 1)
    assert check_uploads(model, [uploads / "long.mp4"], small)[1] == {
        "long.mp4": f"{size:,} bytes, over the limit of {size - 1:,} bytes"
    }
    with pytest.raises(SearchError, match="5 files uploaded: at most 4 can be searched at a time"):
        check_uploads(model, files + files[:1], UploadLimits(max_files=4))


def test_limits_come_from_options_else_the_environment_else_the_defaults(monkeypatch):
    assert UploadLimits.from_env({}) == UploadLimits(8, 20_000_000, 120.0)
    environ = {"GVE_SPACE_MAX_UPLOADS": "3", "GVE_SPACE_MAX_UPLOAD_SECONDS": "9.5"}
    assert UploadLimits.from_env(environ, max_files=None, max_bytes=1000) == UploadLimits(3, 1000, 9.5)
    assert UploadLimits(2, 1000, 9.5).describe() == "up to 2 videos at a time, each at most 1,000 bytes and 9.5 s long"
    with pytest.raises(SearchError, match="GVE_SPACE_MAX_UPLOADS must be a number, got 'many'"):
        UploadLimits.from_env({"GVE_SPACE_MAX_UPLOADS": "many"})
    with pytest.raises(SearchError, match="max_seconds must be a positive number, got -1"):
        UploadLimits(max_seconds=-1)


def test_accepted_uploads_are_copied_under_safe_distinct_names(uploads, tmp_path):
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / "old.mp4").write_text("an earlier upload")
    store_uploads([uploads / "short.mp4", uploads / "a b;$(x).mp4", uploads / "short.mp4"], folder)
    assert sorted(path.name for path in folder.iterdir()) == ["a_b___x_.mp4", "short-2.mp4", "short.mp4"]
