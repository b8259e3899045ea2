"""Long videos as segments (`model.encode_segments`, `GVEProcessor.load_segments`): each window is the same time
range embedded alone, the video is decoded in one pass, and bad arguments are refused."""

import threading

import pytest
import torch
import torch.nn.functional as F

from gve_tools.repo import remote_module

processing = remote_module("processing_gve")
modeling = remote_module("modeling_gve")


def test_spans_cover_the_video_and_the_last_one_ends_with_it():
    assert processing.segment_spans(10.0, 8.0, 8.0) == [(0.0, 8.0), (2.0, 10.0)]
    assert processing.segment_spans(10.0, 4.0, 2.0) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    assert processing.segment_spans(9.0, 3.0, 3.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]
    assert processing.segment_spans(5.0, 8.0, 4.0) == [(0.0, 5.0)]  # shorter than a window: the whole video
    spans = processing.segment_spans(7200.0, 8.0, 8.0)
    assert len(spans) == 900 and spans[-1] == (7192.0, 7200.0)


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the checkpoint's fps 1 and 8 frames: 8 s windows
        {"window": 3.0, "stride": 1.5},
        {"window": 4.0, "fps": 2.0, "max_frames": 8},
        {"window": 2.5, "stride": 1.0, "fps": 4.0, "max_frames": 16},
    ],
)
def test_each_segment_is_its_time_range_embedded_alone(model, media, settings):
    video = str(media["long_video"])  # 10 s at 8 fps
    segments = model.encode_segments(video, show_progress_bar=False, **settings)
    controls = {key: value for key, value in settings.items() if key in ("fps", "max_frames")}
    alone = model.encode([{"video": video, "video_start": s, "video_end": e, **controls} for s, e in segments.spans])
    assert segments.embeddings.shape == (len(segments.spans), 64)
    assert torch.all(F.cosine_similarity(segments.embeddings, alone) >= 0.9999)
    assert segments.spans[-1][1] == pytest.approx(10.0) and segments.spans[0][0] == 0.0
    window = settings.get("window", 8.0)
    assert all(end - start == pytest.approx(window) for start, end in segments.spans)


def test_segment_frames_are_fetch_videos_for_the_same_range(processor, media):
    from qwen_vl_utils import fetch_video

    video = str(media["long_video"])
    options = {"fps": 2.0, "max_frames": 6, "min_pixels": 3136, "max_pixels": 12544}
    items = list(processor.load_segments(video, 3.0, 2.0, **options))
    assert [item.span for item in items] == [(0.0, 3.0), (2.0, 5.0), (4.0, 7.0), (6.0, 9.0), (7.0, 10.0)]
    for item in items:
        start, end = item.span
        frames, fps = fetch_video(
            {"video": video, **options, "video_start": start, "video_end": end}, return_video_sample_fps=True
        )
        assert torch.equal(item.videos[0], frames) and item.video_fps[0] == fps
        assert item.label == f"video [{start:g} s, {end:g} s]"


def test_the_best_segment_scores_the_video(model, media):
    segments = model.encode_segments(str(media["long_video"]), 4.0, 2.0, show_progress_bar=False)
    query = segments.embeddings[2]
    assert segments.best(query) == (segments.spans[2], pytest.approx(1.0))


def test_bad_windows_and_videos_are_refused(model, processor, media, tmp_path):
    video = str(media["long_video"])
    for window, stride, message in [
        (0.0, None, "window must be a finite number of seconds above 0, got 0"),
        (float("nan"), None, "window must be a finite number of seconds above 0, got nan"),
        (4.0, -1.0, "stride must be a finite number of seconds above 0, got -1"),
        (4.0, 6.0, r"stride \(6 s\) must be at most window \(4 s\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.encode_segments(video, window, stride)
    with pytest.raises(ValueError, match="fps must be a number above 0"):
        processor.load_segments(video, fps=-1.0)
    with pytest.raises(ValueError, match="^video: segments need a video file or URL"):
        processor.load_segments(["frame.png"])
    with pytest.raises(ValueError, match=r"^video: video file not found: .*nowhere\.mp4"):
        model.encode_segments(str(tmp_path / "nowhere.mp4"), show_progress_bar=False)
    with pytest.raises(ValueError, match="the range 0-0.1 s holds fewer than 2 frames at 8 fps") as caught:
        model.encode_segments(video, 0.1, show_progress_bar=False)
    assert caught.value.field == "video_end"
    with pytest.raises(ValueError, match="more than max_decode_pixels=1,000"):
        model.encode_segments(video, limits={"max_decode_pixels": 1000}, show_progress_bar=False)


def test_reading_ahead_stops_with_its_consumer_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(1000)
        finally:
            closed.set()

    threads = threading.active_count()
    reader = modeling._read_ahead(source(), 4)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()
    assert closed.is_set() and threading.active_count() == threads

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(modeling._read_ahead(failing(), 4))
