"""torchcodec against decord, as GVE reads videos with each (`processing_gve.video_reader`): the frame count and
rate each reports, whether the sampled frames are equal, the CPU time of a read and the embeddings they give.

Each clip is generated (`gve_tools.media.write_video`) into `--folder`; each reader is forced in turn through
`GVE_VIDEO_READER`. A read samples 8 frames (the CPU time of GVE's one-thread reader, `process_time`, best of
`--repeat`, so that the other processes of the machine count little); the embedding is the model's `encode`.
GVE's decord reader decodes with PyAV (`processing_gve.read_video`); the last column compares its frames with
decord's own, as `qwen_vl_utils.fetch_video` reads them with decord.

    python scripts/benchmark_decoders.py                      # the bundled tiny GVE
    python scripts/benchmark_decoders.py --output benchmarks/decoders.json
"""

import argparse
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.repo import BUNDLED_MODEL, ROOT

DEFAULT_FOLDER = ROOT / "build" / "benchmark-decoders"
READ = {"max_frames": 8}  # 8 frames over the clip (fps set from its length)
READERS = ("torchcodec", "decord")
TEN_BIT = {"pix_fmt": "yuv420p10le"}
HEVC = {"codec": "libx265", "options": {"x265-params": "log-level=none"}}
BT709_FULL = {"pix_fmt": "yuvj420p", "options": {"colorspace": "bt709"}}


def _frames(seconds: float, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """A square crossing a gradient, with a counter stripe: every frame differs, and the clip stays small."""
    total = max(2, round(seconds * fps))
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    background = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    side = max(8, height // 4)
    for number in range(total):
        frame = background.copy()
        x = int((width - side) * number / max(total - 1, 1))
        frame[height // 3 : height // 3 + side, x : x + side] = (220, 40, 40)
        frame[:4, : (number * 7) % width] = 255
        yield frame


def _vfr_times(count: int) -> list[float]:
    """Presentation times of a variable-rate clip: 20 frames at 30 fps, then 20 at 15 fps, and so on."""
    times, now = [], 0.0
    for number in range(count):
        times.append(now)
        now += 1 / 30 if (number // 20) % 2 == 0 else 1 / 15
    return times


# name: (seconds, fps, width, height, write_video arguments, file name)
# fmt: off
CLIPS: dict[str, tuple[float, float, int, int, dict[str, Any], str]] = {
    "H.264 8 fps, 1 s, 160x120": (1, 8, 160, 120, {}, "h264-8fps.mp4"),
    "H.264 24 fps, 10 s, 320x240, B-frames": (10, 24, 320, 240, {"options": {"bf": "3"}}, "h264-bframes.mp4"),
    "H.264 29.97 fps, 10 s, 640x360": (10, 30000 / 1001, 640, 360, {}, "h264-2997.mp4"),
    "H.264 30 fps, 60 s, one keyframe a minute": (60, 30, 160, 120, {"options": {"g": "1800"}}, "h264-gop.mp4"),
    "H.264 30 fps, 5 s, 1280x720": (5, 30, 1280, 720, {}, "h264-720p.mp4"),
    "H.264 BT.709, full range": (4, 25, 320, 240, BT709_FULL, "709.mp4"),
    "H.264 10-bit": (4, 24, 320, 240, TEN_BIT, "h264-10bit.mp4"),
    "HEVC 10-bit": (4, 24, 320, 240, {**TEN_BIT, **HEVC}, "hevc.mp4"),
    "H.264 variable frame rate": (6, 30, 320, 240, {"vfr": True}, "h264-vfr.mp4"),
    "VP9 in WebM": (4, 24, 320, 240, {"codec": "libvpx-vp9"}, "vp9.webm"),
    "AV1 in MP4": (4, 24, 320, 240, {"codec": "libsvtav1"}, "av1.mp4"),
}
# fmt: on


def make_clip(folder: Path, name: str) -> Path:
    """The clip `name` (CLIPS), written once into `folder`."""
    from gve_tools.media import write_video

    seconds, fps, width, height, arguments, file = CLIPS[name]
    path = folder / file
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        arguments = dict(arguments)
        frames = list(_frames(seconds, fps, width, height))
        if arguments.pop("vfr", False):
            arguments["times"] = _vfr_times(len(frames))
        partial = path.with_name("partial-" + path.name)
        write_video(partial, frames, fps=fps, **arguments)
        partial.rename(path)
    return path


def read_with(model, path: Path, reader: str, repeat: int) -> dict[str, Any]:
    """One reader's view of a clip: frame count, rate, 8 sampled frames with the CPU time of reading them, and the
    model's embedding; or the error it fails with."""
    processing = sys.modules[type(model.processor).__module__]
    os.environ[processing.VIDEO_READER_VARIABLE] = reader
    processing.video_reader.cache_clear()
    try:
        probe = processing.probe_video(str(path), processing.MediaLimits())
        options = {**READ, "fps": READ["max_frames"] / probe.duration}
        budget = processing.DecodeBudget(processing.MediaLimits())
        times = []
        for _ in range(repeat):
            started = time.process_time()
            frames, _ = model.processor._fetch_video(str(path), options, budget, 1 << 20)
            times.append(time.process_time() - started)
        embedding = model.encode([str(path)], show_progress_bar=False)[0]
        if reader == "decord":  # decord itself, as qwen-vl-utils reads with it (GVE's decord path decodes with PyAV)
            vision = importlib.import_module("qwen_vl_utils.vision_process")
            library = vision.fetch_video({"video": str(path), **options})
            gap = (library - frames).abs() if library.shape == frames.shape else None
            library_gap = None if gap is None else float(gap.mean())
    except Exception as error:  # a reader that cannot read the clip: recorded, not fatal
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    view = {"frames": probe.frames, "rate": probe.rate, "cpu_s": min(times), "sampled": frames, "embedding": embedding}
    if reader == "decord":
        view["library_difference"] = library_gap
    return view


def compare(model, folder: Path, repeat: int = 3) -> list[dict[str, Any]]:
    """Every clip read by both readers: their counts and rates, how far apart their frames are, their CPU times
    and the cosine of their embeddings."""
    rows = []
    for name in CLIPS:
        path = make_clip(folder, name)
        views = {reader: read_with(model, path, reader, repeat) for reader in READERS}
        row: dict[str, Any] = {"clip": name, "file": path.name}
        for reader, view in views.items():
            keys = ("frames", "rate", "cpu_s", "error", "library_difference")
            row[reader] = {key: view[key] for key in keys if key in view}
        torchcodec, decord = views["torchcodec"], views["decord"]
        if "error" not in torchcodec and "error" not in decord:
            same_shape = torchcodec["sampled"].shape == decord["sampled"].shape
            difference = (torchcodec["sampled"] - decord["sampled"]).abs() if same_shape else None
            row["frames_equal"] = bool(same_shape and difference.max() == 0)
            row["mean_level_difference"] = float(difference.mean()) if same_shape else None
            row["rate_difference"] = torchcodec["rate"] / decord["rate"] - 1
            row["cpu_ratio"] = torchcodec["cpu_s"] / decord["cpu_s"]
            row["embedding_cosine"] = float(torchcodec["embedding"] @ decord["embedding"])
        rows.append(row)
    os.environ.pop(sys.modules[type(model.processor).__module__].VIDEO_READER_VARIABLE, None)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| clip | frames (tc / decord) | rate difference | frames equal | mean difference (levels) "
        "| CPU ms, 8 frames (tc / decord) | embedding cosine | decord's own frames: mean difference |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        tc, dc = row["torchcodec"], row["decord"]
        if "error" in tc or "error" in dc:
            failed = "; ".join(f"{name} fails: {row[name]['error']}" for name in READERS if "error" in row[name])
            lines.append(f"| {row['clip']} | {failed} | | | | | | |")
            continue
        lines.append(
            f"| {row['clip']} | {tc['frames']} / {dc['frames']} | {row['rate_difference']:+.2%} "
            f"| {'yes' if row['frames_equal'] else 'no'} | {row['mean_level_difference']:.2f} "
            f"| {tc['cpu_s'] * 1000:.1f} / {dc['cpu_s'] * 1000:.1f} ({row['cpu_ratio']:.2f}x) "
            f"| {row['embedding_cosine']:.6f} | {_levels(dc.get('library_difference'))} |"
        )
    return "\n".join(lines)


def _levels(value: float | None) -> str:
    return "other frame count" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--model", default=str(BUNDLED_MODEL), help="GVE checkpoint (default: the bundled tiny GVE)")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="where the clips are written and kept")
    parser.add_argument("--repeat", type=int, default=3, help="reads per clip and reader; the least CPU time counts")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    from importlib.metadata import version

    import torch

    from gve_tools.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.model)
    processing = sys.modules[type(model.processor).__module__]
    rows = compare(model, args.folder, args.repeat)
    print(table(rows))
    if args.output:
        versions = {name: version(name) for name in ("torchcodec", "decord", "av", "torch")}
        versions["ffmpeg (torchcodec)"] = processing._torchcodec_ffmpeg()
        result = {
            "command": "python scripts/benchmark_decoders.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "model": args.model,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
            "versions": versions,
            "rows": rows,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0
