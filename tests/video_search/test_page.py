"""gve_tools.video_search.page: thumbnails (the page itself is checked by test_job's end-to-end run)."""

import base64
import io

from PIL import Image

from gve_tools.media import moving_square, write_image, write_video
from gve_tools.video_search import page


def test_frames_are_evenly_spaced_first_to_last():
    assert page._frame_indices(11, 6) == [0, 2, 4, 6, 8, 10]
    assert page._frame_indices(3, 6) == [0, 1, 2]
    assert page._frame_indices(5, 1) == [0]
    assert page._frame_indices(0, 6) == []


def test_thumbnails_are_jpeg_data_uris_of_the_given_height(tmp_path):
    video = write_video(tmp_path / "clip.mp4", moving_square(16, colour="red", direction="right"))
    image = write_image(tmp_path / "still.png", colour="blue")
    strips = page.video_thumbnails(video)
    assert len(strips) == page.THUMBNAIL_FRAMES and len(page.video_thumbnails(video, frames=3, height=20)) == 3
    for uri, height in [*((uri, page.THUMBNAIL_HEIGHT) for uri in strips), (page.image_thumbnail(image)[0], 144)]:
        assert uri.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1], validate=True))) as picture:
            assert picture.format == "JPEG" and picture.height == height


def test_unreadable_media_have_no_thumbnails(tmp_path):
    (tmp_path / "broken.mp4").write_text("not a video\n" * 10)
    (tmp_path / "broken.png").write_text("not an image\n")
    assert page.video_thumbnails(tmp_path / "broken.mp4") == []
    assert page.video_thumbnails(tmp_path / "missing.mp4") == []
    assert page.image_thumbnail(tmp_path / "broken.png") == []
