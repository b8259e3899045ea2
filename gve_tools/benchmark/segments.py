"""Long videos as segments: `model.encode_segments` against the same windows embedded as separate range inputs,
and its peak memory on a 10-minute and a 2-hour video.

Each run is a fresh process (`child_command`) that loads the model, embeds, and reports its wall time and peak
RSS (VmHWM, model included); the embeddings come back through a .npy file and are compared here. The videos are
generated (`gve_tools.media.events`: a square of one colour and direction every 6 s) and kept in `--folder`.

    python scripts/benchmark_segments.py                                   # the bundled tiny GVE, its settings
    python scripts/benchmark_segments.py --fps 1 --max-frames 8            # GVE's published sampling
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.benchmark.process import child_command, peak_rss_mb
from gve_tools.repo import BUNDLED_MODEL, ROOT

DEFAULT_FOLDER = ROOT / "build" / "benchmark-segments"
# (name, minutes, frames a second, width, height): the speed comparison's video, and the memory check's long one
VIDEOS = {"10min": (10, 24, 320, 240), "2h": (120, 8, 320, 240)}


def make_video(folder: Path, name: str) -> Path:
    """The benchmark's video `name` (VIDEOS), written once into `folder`."""
    from gve_tools.media import events, write_video

    minutes, fps, width, height = VIDEOS[name]
    path = folder / f"events-{name}-{fps}fps-{width}x{height}.mp4"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        write_video(partial, events(minutes * 60, fps, width, height), fps=fps)
        partial.rename(path)
    return path


def run(mode: str, model: str, video: Path, controls: dict[str, Any], output: Path) -> dict[str, Any]:
    """One run in this process: `segments` (encode_segments) or `separate` (the same windows as range inputs)."""
    import torch

    from gve_tools.models import load_model

    loaded = load_model(model)
    started = time.perf_counter()
    if mode == "separate":  # the windows encode_segments takes, each embedded as a range input of its own
        processing = sys.modules[type(loaded.processor).__module__]
        options = {**loaded.config.video_options(), **controls}
        duration = processing.probe_video(str(video), processing.MediaLimits()).duration
        spans = processing.segment_spans(duration, *processing.segment_settings(None, None, options))
        items = [{"video": str(video), "video_start": start, "video_end": end} for start, end in spans]
        embeddings = loaded.encode(items, show_progress_bar=False, **controls)
    else:
        segments = loaded.encode_segments(str(video), show_progress_bar=False, **controls)
        spans, embeddings = segments.spans, segments.embeddings
    seconds = time.perf_counter() - started
    np.save(output, embeddings.numpy())
    return {
        "mode": mode,
        "segments": len(spans),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "threads": torch.get_num_threads(),
    }


def in_subprocess(mode: str, model: str, video: Path, controls: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`run` in a fresh process; its figures, with its embeddings loaded from the file it wrote."""
    output = folder / f"{mode}-{video.stem}.npy"
    command = child_command("gve_tools.benchmark.segments", "--run", mode, "--model", model, "--video", str(video))
    command += ["--controls", json.dumps(controls), "--embeddings", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the {mode} run failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["embeddings"] = np.load(output)
    return figures


def benchmark_segments(model: str, controls: dict[str, Any], folder: Path = DEFAULT_FOLDER) -> dict[str, Any]:
    """Speed on the 10-minute video (segments against separate range inputs, with the lowest cosine between
    them) and peak memory of segments on the 10-minute and 2-hour videos."""
    ten, long = make_video(folder, "10min"), make_video(folder, "2h")
    with tempfile.TemporaryDirectory(prefix="gve-segments-") as scratch:
        segments = in_subprocess("segments", model, ten, controls, Path(scratch))
        separate = in_subprocess("separate", model, ten, controls, Path(scratch))
        hours = in_subprocess("segments", model, long, controls, Path(scratch))
    a, b = segments.pop("embeddings"), separate.pop("embeddings")
    cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    hours.pop("embeddings")
    return {
        "model": model,
        "controls": controls,
        "videos": {
            name: dict(zip(("minutes", "fps", "width", "height"), spec, strict=True)) for name, spec in VIDEOS.items()
        },
        "ten_minutes": {
            "segments": segments,
            "separate": separate,
            "speed_up": round(separate["seconds"] / segments["seconds"], 2),
        },
        "lowest_cosine": float(cosines.min()),
        "two_hours": hours,
    }


def report(result: dict[str, Any]) -> str:
    """The figures, as a few lines of text."""
    ten, hours = result["ten_minutes"], result["two_hours"]
    lines = [
        f"model {result['model']}, controls {result['controls'] or 'the checkpoint defaults'}",
        f"10-minute video, {ten['segments']['segments']} windows:",
        *(
            f"  {label:<26} {ten[mode]['seconds']:7.1f} s   peak RSS {ten[mode]['peak_rss_mb']:,} MB"
            for mode, label in (("segments", "encode_segments"), ("separate", "separate range inputs"))
        ),
        f"  speed-up {ten['speed_up']:.2f}x; lowest cosine between the two {result['lowest_cosine']:.6f}",
        f"2-hour video, {hours['segments']} windows: encode_segments {hours['seconds']:.1f} s, "
        f"peak RSS {hours['peak_rss_mb']:,} MB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=str(BUNDLED_MODEL), help="checkpoint (default: the bundled tiny GVE)")
    parser.add_argument("--fps", type=float, help="frames sampled a second (default: the checkpoint's)")
    parser.add_argument("--max-frames", type=int, help="frames a window (default: the checkpoint's)")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help=f"videos (default {DEFAULT_FOLDER})")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--run", choices=("segments", "separate"), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--controls", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--embeddings", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:  # a child process: one run, its figures as JSON on the last line
        print(json.dumps(run(args.run, args.model, args.video, json.loads(args.controls), args.embeddings)))
        return 0
    controls = {key: value for key, value in (("fps", args.fps), ("max_frames", args.max_frames)) if value}
    result = benchmark_segments(args.model, controls, args.folder)
    command = ["python", "scripts/benchmark_segments.py", *(argv if argv is not None else sys.argv[1:])]
    result = {"command": " ".join(command), **result}
    print(report(result))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
