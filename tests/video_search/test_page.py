"""gve_tools.video_search.page: thumbnails (the page itself is checked by test_job's end-to-end run)."""

import base64
import io

import numpy as np
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


def test_a_moments_frames_are_those_shown_within_its_range():
    # frame i is shown from i / rate: 4 fps, [8, 12) s is frames 32 to 47
    assert page._range_indices(148, 4.0, (8.0, 12.0), 6) == [32 + i for i in page._frame_indices(16, 6)]
    assert page._range_indices(148, 4.0, (8.1, 12.1), 6)[0] == 33  # frame 32 is shown before 8.1 s
    assert page._range_indices(147, 4.0, (32.75, 36.75), 3) == [131, 139, 146]  # the last window ends at the end
    assert page._range_indices(10, 4.0, (5.0, 6.0), 6) == []  # past the end
    assert page._range_indices(11, 4.0, None, 6) == page._frame_indices(11, 6)


def test_thumbnails_of_a_moment_come_from_within_it(tmp_path):
    red, green = (np.full((32, 32, 3), colour, np.uint8) for colour in ((220, 30, 30), (30, 200, 30)))
    video = write_video(tmp_path / "two.mp4", [red] * 8 + [green] * 8 + [red] * 8, fps=8)  # green from 1 s to 2 s
    moment = page.timed_thumbnails(video, (1.0, 2.0), frames=4)
    assert [time for time, _ in moment] == [1.0, 1.25, 1.625, 1.875]
    for _, uri in moment:
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as picture:
            r, g, _ = np.asarray(picture.convert("RGB"), dtype=float).mean(axis=(0, 1))
        assert g > 150 and r < 80
    whole = page.timed_thumbnails(video, None, frames=3)
    assert [time for time, _ in whole] == [0.0, 1.5, 2.875]
    assert page.video_thumbnails(video, frames=3) == [uri for _, uri in whole]
