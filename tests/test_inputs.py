"""Input kinds, controls and bad inputs of `model.encode` / `processor.prepare`."""

import dataclasses
import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gve_tools.media import moving_square


def input_error(processor, inputs, **kwargs) -> ValueError:
    """The input error `prepare` raises (it must raise one)."""
    with pytest.raises(ValueError) as caught:
        processor.prepare(inputs, **kwargs)
    assert type(caught.value).__name__ == "GVEInputError"
    return caught.value


def read_video(processor, path: str, options: dict):
    """The processor's own read of a video file (default limits, no call budget)."""
    processing = sys.modules[type(processor).__module__]
    return processor._fetch_video(path, options, processing.DecodeBudget(processing.MediaLimits()), 4096)


def error_of(processor, inputs, **kwargs) -> str:
    """The message of the input error `prepare` raises (it must raise one)."""
    return str(input_error(processor, inputs, **kwargs))


# ---------------------------------------------------------------------- input kinds


def test_every_input_kind_embeds_in_order(model, media):
    frames = [Image.fromarray(frame) for frame in moving_square(6, colour="blue", direction="up")]
    inputs = [
        "a blue square",
        Image.open(media["image"]),
        str(media["image"]),
        str(media["video"]),
        frames,
        {"text": "a red square", "image": str(media["image_2"])},
        {"text": "moving right", "video": str(media["video"])},
        {"video": frames, "image": Image.open(media["image"]), "text": "all three"},
    ]
    embeddings = model.encode(inputs, batch_size=3)
    assert embeddings.shape == (len(inputs), 64)
    assert embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(len(inputs)))
    # a PIL image and its file give the same embedding; different inputs do not
    assert F.cosine_similarity(embeddings[1], embeddings[2], dim=0) > 0.9999
    similarities = F.cosine_similarity(embeddings[:, None], embeddings[None], dim=-1).fill_diagonal_(0)
    similarities[1, 2] = similarities[2, 1] = 0
    assert similarities.max() < 0.999
    for i, item in enumerate(inputs):
        if i != 2:
            assert F.cosine_similarity(model.encode([item]), embeddings[i : i + 1]).item() > 0.99999


def test_single_input_and_empty_list(model):
    assert model.encode("just one text").shape == (1, 64)
    assert model.encode([]).shape == (0, 64)


def test_strings_are_media_only_when_they_name_a_media_file(processor):
    for text in ("see www.example.com for more", "a plain sentence.", "two lines\nclip.mp4"):
        assert processor.load(text).images == [] and processor.load(text).videos == []
    assert "video file not found" in error_of(processor, ["clip.MP4"])
    assert "image file not found" in error_of(processor, ["photo.jpeg"])
    error = input_error(processor, ["http://127.0.0.1:9/missing.png?size=large"])
    assert "could not download 'http://127.0.0.1:9/missing.png?size=large'" in str(error)
    assert (error.position, error.field) == (0, "image")


def test_prompt_format(processor):
    prompt = processor.load(
        {"text": "hello", "image": Image.new("RGB", (56, 56)), "video": [Image.new("RGB", (56, 56))] * 2}
    ).prompt
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
        "hello<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    )
    assert processor.load("hi", "Find the video.").prompt.startswith("<|im_start|>system\nFind the video.<|im_end|>")
    assert processor.load({"text": "hi", "instruction": "Per item."}).prompt.startswith("<|im_start|>system\nPer item.")
    batch = processor.prepare(["hi", "a much longer text than the first one"])
    assert processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][:, -1].tolist()) == ["<|endoftext|>"] * 2
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1]


# ---------------------------------------------------------------------- controls


def video_frames(batch) -> list[int]:
    """Frames fed to the model per video (temporal grid × temporal patch)."""
    return [int(t) * 2 for t in batch["video_grid_thw"][:, 0]]


def test_video_controls_per_call_and_per_item(processor, media):
    long = str(media["long_video"])  # 80 frames at 8 fps: 10 s
    assert video_frames(processor.prepare([long])) == [8]  # fps 1.0, capped at max_frames 8
    assert video_frames(processor.prepare([long], max_frames=4)) == [4]
    assert video_frames(processor.prepare([long], fps=0.5)) == [4]  # 5 frames, rounded down to even
    assert video_frames(processor.prepare([long, {"video": long, "max_frames": 6}], max_frames=4)) == [4, 6]
    default = processor.prepare([long])["video_grid_thw"][0]
    small = processor.prepare([{"video": long, "max_pixels": 64 * 28 * 28, "min_pixels": 16 * 28 * 28}])
    assert small["video_grid_thw"][0, 1:].prod() < default[1:].prod()
    assert small["video_grid_thw"][0, 1:].prod() <= 64 * 4


def test_video_sampling_rate_sets_time_positions(processor, media):
    batch = processor.prepare([str(media["long_video"]), str(media["video"])])
    # 8 of 80 frames at 8 fps -> 0.8 frames/s -> 2.5 s per temporal patch; 4 of 16 -> 2 fps -> 1 s
    torch.testing.assert_close(batch["second_per_grid_ts"], torch.tensor([2.5, 1.0]))


@pytest.fixture(scope="module")
def web_video(tmp_path_factory):
    """A 24 fps, 320x240 clip of 6 s: reading a few frames of it means seeking, as with real videos."""
    from gve_tools.media import write_video

    path = tmp_path_factory.mktemp("web") / "web.mp4"
    return write_video(path, moving_square(144, 320, 240, colour="green", direction="up"), fps=24)


@pytest.mark.parametrize(
    "options",
    [
        {"fps": 1.0, "max_frames": 8, "max_pixels": 200 * 28 * 28},
        {"fps": 4.0, "max_frames": 16, "min_pixels": 4 * 28 * 28, "max_pixels": 112 * 112},
        {"fps": 2.0, "max_frames": 64, "total_pixels": 4 * 64 * 28 * 28},
        {},
    ],
)
def test_video_files_are_decoded_exactly_as_qwen_vl_utils_decodes_them(processor, media, web_video, options):
    from qwen_vl_utils import fetch_video

    for path in (web_video, media["video"], media["long_video"]):
        expected, expected_fps = fetch_video({"video": str(path), **options}, return_video_sample_fps=True)
        frames, fps = read_video(processor, str(path), options)
        assert frames.dtype == expected.dtype and frames.shape == expected.shape
        assert torch.equal(frames, expected) and fps == expected_fps


@pytest.mark.parametrize(
    "options",
    [
        {"fps": 1.0, "max_frames": 8},
        {"fps": 4.0, "max_frames": 16, "min_pixels": 3136, "max_pixels": 12544},
        {"fps": 2.0},
    ],
)
@pytest.mark.parametrize(
    "span", [{"video_start": 1.2, "video_end": 4.9}, {"video_start": 0.0, "video_end": 2.0}, {"video_start": 3.3}]
)
def test_a_time_range_is_read_as_qwen_vl_utils_reads_it(processor, media, web_video, options, span):
    """`video_start`/`video_end` pick qwen-vl-utils' frames (`calculate_video_frame_range`) and sampling rate."""
    from qwen_vl_utils import fetch_video

    for path in (web_video, media["long_video"]):  # 24 fps for 6 s, 8 fps for 10 s
        expected, expected_fps = fetch_video({"video": str(path), **options, **span}, return_video_sample_fps=True)
        frames, fps = read_video(processor, str(path), {**options, **span})
        assert torch.equal(frames, expected) and fps == expected_fps
        whole, _ = read_video(processor, str(path), options)
        assert not torch.equal(frames, whole)  # the range was applied


def test_bad_time_ranges_are_refused_naming_the_input_and_the_key(processor, media):
    video = str(media["long_video"])  # 10 s at 8 fps
    frames = [Image.fromarray(frame) for frame in moving_square(4)]
    cases = [
        ({"video": video, "video_start": -1.0}, "video_start", "video_start must be a finite number of seconds, at"),
        ({"video": video, "video_end": float("inf")}, "video_end", "video_end must be a finite number of seconds"),
        ({"video": video, "video_start": float("nan")}, "video_start", "got nan"),
        ({"video": video, "video_start": "2"}, "video_start", "got '2'"),
        ({"video": video, "video_start": 5, "video_end": 5}, "video_end", r"video_end \(5 s\) must be after video_st"),
        (
            {"video": video, "video_start": 10.0},
            "video_start",
            r"video_start=10 s is at or after the video's end \(10\.",
        ),
        ({"video": video, "video_end": 10.5}, "video_end", r"video_end=10.5 s is after the video's end \(10\.000 s\)"),
        ({"video": video, "video_start": 4.0, "video_end": 4.1}, "video_end", "holds fewer than 2 frames at 8 fps"),
        ({"text": "no video", "video_start": 1.0}, "video_start", "needs a video file or URL; the input has no video"),
        ({"video": frames, "video_end": 1.0}, "video_end", "a list of frames has no timing"),
    ]
    for item, field, message in cases:
        error = input_error(processor, ["fine", item])
        assert error.position == 1 and error.field == field, item
        assert re.match(rf"inputs\[1\]: .*{message}", str(error)), (str(error), message)
    # a range ending within a frame of the end is the video's last frames (the duration is rounded to frames)
    assert processor.prepare([{"video": video, "video_start": 8.0, "video_end": 10.1}])["video_grid_thw"].shape[0] == 1


# (name, file, write_video arguments, the readers whose fetch_video frames GVE's read equals element for element)
VIDEO_KINDS = [
    ("b-frames, a keyframe every 12", "bframes.mp4", {"options": {"bf": "3", "g": "12"}}, {"torchcodec", "decord"}),
    ("odd size (cropped)", "odd.mp4", {"size": (242, 322)}, {"torchcodec", "decord"}),
    ("full range", "jpeg.mp4", {"pix_fmt": "yuvj420p"}, {"torchcodec", "decord"}),
    ("4:4:4", "444.mp4", {"pix_fmt": "yuv444p"}, {"torchcodec", "decord"}),
    ("VP9 in WebM", "vp9.webm", {"codec": "libvpx-vp9"}, {"torchcodec", "decord"}),
    ("HEVC", "hevc.mp4", {"codec": "libx265", "options": {"x265-params": "log-level=none:keyint=10"}}, {"torchcodec"}),
    ("MPEG-4 in AVI", "mpeg4.avi", {"codec": "mpeg4"}, {"torchcodec"}),
    ("10-bit", "10bit.mp4", {"pix_fmt": "yuv420p10le"}, {"torchcodec"}),
]


@pytest.mark.parametrize("name, file, arguments, as_fetch_video", VIDEO_KINDS, ids=[kind[0] for kind in VIDEO_KINDS])
def test_every_kind_of_video_gives_the_frames_asked_for(
    processor, video_reader, tmp_path, name, file, arguments, as_fetch_video
):
    """The frames a read picks, seeking or reading on, are those a straight decode from the start gives, under
    either reader; they also equal `fetch_video`'s under the same reader, element for element, except where
    decord's are wrong: after a seek it returns neighbouring frames in HEVC and damaged ones in MPEG-4, and it
    converts 10-bit pictures otherwise (read_video's docstring)."""
    from qwen_vl_utils import fetch_video

    from gve_tools.media import write_video

    height, width = arguments.pop("size", (240, 320))
    generator = np.random.default_rng(0)
    texture = generator.integers(0, 255, (height, width + 96, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(texture[:, 2 * i : 2 * i + width]) for i in range(48)]
    path = str(write_video(tmp_path / file, frames, fps=24, **arguments))
    processing = sys.modules[type(processor).__module__]
    limits = processing.MediaLimits()
    probe = processing.probe_video(path, limits)
    assert probe.reader == video_reader and probe.frames == 48
    whole = processing.plan_video({"video": path, "fps": 24.0, "max_frames": 48}, limits, probe)
    straight = list(processing._sampled_frames(dataclasses.replace(whole, indices=list(range(48)))))  # no seek
    for options in ({"fps": 2.0, "max_frames": 8}, {"fps": 12.0, "max_frames": 12}, {"fps": 0.5, "max_frames": 2}):
        plan = processing.plan_video({"video": path, **options}, limits)
        frames, fps = read_video(processor, path, options)
        expected = torch.cat([processing._resize_frame(straight[i], plan.size) for i in plan.indices]).float()
        assert torch.equal(frames, expected), (name, options)
        reference, reference_fps = fetch_video({"video": path, **options}, return_video_sample_fps=True)
        assert fps == reference_fps and frames.shape == reference.shape
        if video_reader in as_fetch_video:
            assert torch.equal(frames, reference), (name, options)


# (name, write_video arguments): 8-bit H.264 as cameras and encoders write it
H264_KINDS = [
    ("8 fps", {"fps": 8}),
    ("29.97 fps, B-frames", {"fps": 30000 / 1001, "options": {"bf": "3"}}),
    ("30 fps, one keyframe in 48", {"fps": 30, "options": {"g": "48", "bf": "2"}}),
    ("BT.709 tagged, full range", {"fps": 25, "pix_fmt": "yuvj420p", "options": {"colorspace": "bt709"}}),
]


@pytest.mark.parametrize("name, arguments", H264_KINDS, ids=[kind[0] for kind in H264_KINDS])
def test_both_readers_give_the_same_frames_on_8_bit_h264(processor, tmp_path, monkeypatch, name, arguments):
    """On 8-bit H.264, torchcodec and decord count the same frames at the same rate and decode them to the same
    pixels, so a change of reader does not change an embedding (10-bit and VFR clips: benchmarks/DECODERS.md)."""
    from gve_tools.media import write_video

    processing = sys.modules[type(processor).__module__]
    generator = np.random.default_rng(1)
    texture = generator.integers(0, 255, (120, 160 + 120, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(texture[:, 2 * i : 2 * i + 160]) for i in range(60)]
    path = str(write_video(tmp_path / "clip.mp4", frames, **arguments))
    read = {}
    for reader in processing.VIDEO_READERS:
        monkeypatch.setenv("GVE_VIDEO_READER", reader)
        processing.video_reader.cache_clear()
        probe = processing.probe_video(path, processing.MediaLimits())
        read[reader] = (probe.frames, probe.rate, read_video(processor, path, {"fps": 4.0, "max_frames": 16}))
    processing.video_reader.cache_clear()
    (count, rate, (video, fps)), (decord_count, decord_rate, (decord_video, decord_fps)) = read.values()
    assert count == decord_count == 60 and rate == pytest.approx(decord_rate, rel=1e-9), name
    assert fps == pytest.approx(decord_fps, rel=1e-9) and torch.equal(video, decord_video), name


def test_frame_lists_are_thinned_to_max_frames(processor):
    frames = [Image.fromarray(frame) for frame in moving_square(20)]
    assert video_frames(processor.prepare([frames])) == [8]
    assert video_frames(processor.prepare([frames], max_frames=4)) == [4]
    arrays = moving_square(3)
    assert video_frames(processor.prepare([arrays])) == [4]  # an odd count is padded to the patch


def test_unknown_options_are_refused(processor):
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['max_frame'\]"):
        processor.prepare(["text"], max_frame=4)


def test_image_controls(processor, media):
    small = processor.prepare([str(media["image"])], image_max_pixels=8 * 28 * 28)
    assert small["image_grid_thw"][0, 1:].prod() <= 8 * 4
    per_item = processor.prepare([{"image": str(media["image"]), "image_max_pixels": 8 * 28 * 28}])
    torch.testing.assert_close(per_item["pixel_values"], small["pixel_values"])


def test_long_text_is_truncated_keeping_the_pooling_token(model, processor):
    text = "the camera pans slowly across a city " * 40
    with pytest.warns(UserWarning, match=r"inputs\[1\]: text truncated by \d+ tokens to fit max_length=64"):
        batch = processor.prepare(["short", text], max_length=64)
    assert batch["input_ids"].shape[1] == 64
    tail = processor.tokenizer("<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")["input_ids"]
    assert batch["input_ids"][1, -len(tail) :].tolist() == tail
    text_ids = processor.tokenizer(text)["input_ids"]
    excess = len(processor.tokenizer(processor.load(text).prompt)["input_ids"]) - 64
    kept = text_ids[: len(text_ids) - excess]  # the text loses its end, nothing else
    assert batch["input_ids"][1, -len(tail) - len(kept) : -len(tail)].tolist() == kept
    untouched = processor.tokenizer("short")["input_ids"]
    assert batch["input_ids"][0, -len(untouched) - len(tail) : -len(tail)].tolist() == untouched
    with pytest.warns(UserWarning):
        embedding = model.encode([text], max_length=64)
    full = model.encode([text])
    assert F.cosine_similarity(embedding, full).item() < 0.9999  # really cut, and still a valid embedding


def test_model_card_call_truncates_text_not_the_tail(processor):
    prompt = processor.load("word " * 200).prompt
    with pytest.warns(UserWarning, match=r"text\[0\]: text truncated"):
        batch = processor(text=[prompt], truncation=True, max_length=50, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (1, 50)
    assert batch["input_ids"][0, -1] == processor.embedding_config.pooling_token_id


def test_vision_tokens_beyond_max_length_are_refused(processor, media):
    message = error_of(processor, ["fine", str(media["long_video"])], max_length=100)
    assert message.startswith(f"inputs[1]: video {str(media['long_video'])!r} refused: 8 frames of ")
    assert "tokens, more than max_length=100; raise max_length, or lower fps, max_frames or max_pixels" in message
    # vision tokens that fit alone, but not with the template: refused once the prompt is built
    message = error_of(processor, ["fine", str(media["long_video"])], max_length=600)  # 560 vision tokens
    assert message.startswith("inputs[1]: the prompt needs 611 tokens, more than max_length=600")
    assert "raise max_length" in message


# ---------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "name, build, expected",
    [
        ("missing image", lambda m: "/nonexistent/photo.jpg", "image file not found: '/nonexistent/photo.jpg'"),
        ("missing video", lambda m: {"video": "/nonexistent/clip.mp4"}, "video file not found"),
        ("zero-byte video", lambda m: str(m["empty_video"]), "the file is empty (0 bytes)"),
        ("truncated video", lambda m: str(m["truncated_video"]), "not a readable video"),
        ("non-video file", lambda m: {"video": str(m["text_file"])}, "'.txt' is not a video file extension"),
        ("text file named .mp4", lambda m: str(m["text_as_video"]), "not a readable video"),
        ("truncated image", lambda m: str(m["truncated_image"]), "could not read image"),
        ("non-image file", lambda m: {"image": str(m["text_file"])}, "cannot identify image file"),
        ("one-frame video", lambda m: str(m["one_frame_video"]), "has 1 frame(s); at least 2 are needed"),
        ("empty text", lambda m: "", "the input has no content"),
        ("blank text", lambda m: "   \n", "the input has no content"),
        ("empty dict", lambda m: {}, "the input has no content"),
        ("dict of empty text", lambda m: {"text": ""}, "the input has no content"),
        ("empty frame list", lambda m: [], "the input has no content"),
        ("unknown key", lambda m: {"text": "x", "caption": "y"}, "unknown key(s) ['caption']"),
        ("wrong type", lambda m: 42, "expected a str, a PIL image, a list of frames or a dict, got int"),
        ("wrong text type", lambda m: {"text": 3.5}, "'text' must be a str, got float"),
        ("wrong image type", lambda m: {"image": b"bytes"}, "'image' must be a str or PIL image, got bytes"),
        ("wrong video type", lambda m: {"video": 7}, "'video' must be a path, a URL or a list of frames, got int"),
        ("wrong frame type", lambda m: [Image.new("RGB", (28, 28)), 3], "video frame 1 must be a PIL image"),
        (
            "wrong control",
            lambda m: {"video": str(m["video"]), "fps": "fast"},
            "fps must be a number above 0 and at most 240, got 'fast'",
        ),
        (
            "negative control",
            lambda m: {"video": str(m["video"]), "max_frames": -2},
            "max_frames must be an integer from 2 to 768, got -2",
        ),
        (
            "one-frame sampling",
            lambda m: {"video": str(m["video"]), "max_frames": 1},
            "max_frames must be an integer from 2 to 768, got 1",
        ),
        (
            "video pixel bounds crossed",
            lambda m: {"video": str(m["video"]), "min_pixels": 9000, "max_pixels": 800},
            "min_pixels (9000) exceeds max_pixels (800)",
        ),
        (
            "image pixel bounds crossed",
            lambda m: {"image": str(m["image"]), "image_min_pixels": 9000, "image_max_pixels": 800},
            "image_min_pixels (9000) exceeds image_max_pixels (800)",
        ),
    ],
)
def test_bad_input_names_its_position_and_reason(processor, media, name, build, expected):
    message = error_of(processor, ["a good input", "another good one", build(media)], start=5)
    assert message.startswith("inputs[7]: ")
    assert expected in message


def test_the_first_bad_input_in_order_is_reported(processor, media):
    """Inputs are read side by side: a later input that fails sooner does not hide an earlier one."""
    message = error_of(processor, [str(media["video"]), str(media["truncated_video"]), ""])
    assert message.startswith("inputs[1]: ") and "not a readable video" in message


def test_error_position_counts_across_batches(model, media):
    inputs = ["ok"] * 9 + [str(media["empty_video"])]
    with pytest.raises(ValueError, match=r"^inputs\[9\]: could not read video .*empty"):
        model.encode(inputs, batch_size=4)


def test_video_errors_report_the_cause_not_the_fallback(processor, media):
    """qwen-vl-utils' torchvision fallback raises AttributeError; the real cause is reported."""
    message = error_of(processor, [str(media["one_frame_video"])])
    assert "AttributeError" not in message and "read_video" not in message


# ---------------------------------------------------------------------- URLs


def test_image_and_video_urls(model, media, http_root):
    from_urls = model.encode([f"{http_root}/square.png", f"{http_root}/right.mp4?download=1"])
    from_files = model.encode([str(media["image"]), str(media["video"])])
    assert torch.all(F.cosine_similarity(from_urls, from_files) > 0.9999)


def test_missing_url_names_the_input(processor, http_root):
    message = error_of(processor, [f"{http_root}/absent.png"])
    assert message.startswith(f"inputs[0]: could not download '{http_root}/absent.png': 404")


def test_numpy_frames(processor):
    arrays = np.stack(moving_square(4))
    assert video_frames(processor.prepare([list(arrays)])) == [4]


def test_file_urls_and_data_uris(model, media):
    import base64

    data_uri = "data:image/png;base64," + base64.b64encode(media["image"].read_bytes()).decode()
    inputs = [f"file://{media['image']}", data_uri, f"file://{media['video']}"]
    expected = model.encode([str(media["image"]), str(media["image"]), str(media["video"])])
    assert torch.all(F.cosine_similarity(model.encode(inputs), expected) > 0.9999)
