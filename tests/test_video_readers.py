"""The video reader: torchcodec when its FFmpeg libraries load, else decord, forced by `GVE_VIDEO_READER`; the same
reader for qwen-vl-utils; its name and version in every embedding's settings; errors that name the real cause."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gve_tools.identity import embedding_settings
from gve_tools.repo import remote_module

VARIABLES = ("GVE_VIDEO_READER", "FORCE_QWENVL_VIDEO_READER")


@pytest.fixture
def processing(processor, monkeypatch):
    """The processor's remote module, with the reader chosen afresh from a clean environment."""
    module = sys.modules[type(processor).__module__]
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    module.video_reader.cache_clear()
    yield module
    module.video_reader.cache_clear()


def test_torchcodec_is_chosen_when_ffmpeg_loads_and_qwen_vl_utils_follows(processing, monkeypatch):
    from qwen_vl_utils import vision_process as vision

    # FFmpeg's shared libraries are installed here (`make system`), so torchcodec loads
    assert processing._torchcodec_ffmpeg() is not None
    assert processing.video_reader() == "torchcodec" == vision.get_video_reader_backend()
    monkeypatch.setattr(processing, "_torchcodec_ffmpeg", lambda: None)  # installed, but its libraries do not load
    processing.video_reader.cache_clear()
    assert processing.video_reader() == "decord" == vision.get_video_reader_backend()


def test_either_reader_can_be_forced_and_a_wrong_name_is_refused(processing, monkeypatch):
    monkeypatch.setenv("FORCE_QWENVL_VIDEO_READER", "decord")  # qwen-vl-utils' own switch is honoured
    assert processing.video_reader() == "decord"
    monkeypatch.setenv("GVE_VIDEO_READER", "torchcodec")  # GVE's wins over it
    processing.video_reader.cache_clear()
    assert processing.video_reader() == "torchcodec"
    monkeypatch.setenv("GVE_VIDEO_READER", "torchvision")
    processing.video_reader.cache_clear()
    with pytest.raises(ValueError, match=r"GVE_VIDEO_READER='torchvision': the video readers are torchcodec, decord"):
        processing.video_reader()


def test_the_reader_and_its_version_are_part_of_the_embedding_settings(processing, model, monkeypatch):
    from importlib.metadata import version

    tooling = remote_module("processing_gve")  # the tooling's copy of the remote code, which the settings ask
    settings = {}
    for reader in processing.VIDEO_READERS:
        monkeypatch.setenv("GVE_VIDEO_READER", reader)
        tooling.video_reader.cache_clear()
        settings[reader] = embedding_settings(model.config, "float32", "cpu")["video_reader"]
    tooling.video_reader.cache_clear()
    assert settings["torchcodec"] == {
        "reader": "torchcodec",
        "torchcodec": version("torchcodec"),
        "ffmpeg": processing._torchcodec_ffmpeg(),
    }
    assert settings["decord"] == {"reader": "decord", "decord": version("decord"), "av": version("av")}


@pytest.mark.parametrize("reader", ["torchcodec", "decord"])
def test_an_undecodable_file_names_the_real_cause(processor, processing, tmp_path, monkeypatch, reader):
    monkeypatch.setenv("GVE_VIDEO_READER", reader)
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are meeting notes, not a video\n" * 20)
    with pytest.raises(ValueError) as caught:
        processor.prepare([{"text": "fine"}, {"video": str(fake)}])
    message = str(caught.value)
    assert message.startswith(f"inputs[1]: could not read video {str(fake)!r}: not a readable video ({reader}: ")
    assert "read_video" not in message  # not qwen-vl-utils' fallback to a torchvision function that is gone


def test_forcing_torchcodec_without_ffmpeg_says_so(processor, processing, media, monkeypatch):
    monkeypatch.setenv("GVE_VIDEO_READER", "torchcodec")
    monkeypatch.setattr(processing, "_torchcodec_ffmpeg", lambda: None)
    with pytest.raises(ValueError) as caught:
        processor.prepare([str(media["video"])])
    assert str(caught.value).startswith(f"inputs[0]: could not read video {str(media['video'])!r}: ")
    assert "GVE_VIDEO_READER=torchcodec, but torchcodec or the FFmpeg shared libraries" in str(caught.value)


def test_torchcodec_without_ffmpeg_falls_back_to_decord(tiny_path, media):
    """torchcodec installed but FFmpeg's libraries missing (simulated: its library loads are refused, as the
    dynamic loader refuses them without libavcodec): videos are read with decord, by GVE and by qwen-vl-utils
    (which on its own would pick torchcodec and fail every video)."""
    script = textwrap.dedent(
        f"""
        import torch
        load = torch.ops.load_library
        def refuse(path):
            if "libtorchcodec" in str(path):
                raise OSError("libavutil.so.57: cannot open shared object file: No such file or directory")
            return load(path)
        torch.ops.load_library = refuse
        import json, sys
        from transformers import AutoProcessor
        from qwen_vl_utils import fetch_video
        processor = AutoProcessor.from_pretrained({str(tiny_path)!r}, trust_remote_code=True)
        processing = sys.modules[type(processor).__module__]
        inputs = processor.prepare([{{"video": {str(media["video"])!r}}}])
        frames = fetch_video({{"video": {str(media["video"])!r}, "fps": 2.0, "max_frames": 4}})
        print(json.dumps([processing.video_reader(), inputs["video_grid_thw"][0].tolist(), list(frames.shape)]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=_environ())
    assert done.returncode == 0, done.stderr[-2000:]
    reader, grid, shape = json.loads(done.stdout.strip().splitlines()[-1])
    assert reader == "decord" and len(grid) == 3 and shape[:2] == [4, 3], done.stdout


def _environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in VARIABLES}
