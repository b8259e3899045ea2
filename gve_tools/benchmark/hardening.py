"""The hardening benchmark's cases: hostile media and the worst requests the limits allow, each served in a fresh
process that reports its peak RSS, CPU and wall time and outcome (see `hardening_cli` for the command)."""

import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gve_tools.benchmark.process import child_command, cpu_seconds, peak_rss_mb

# name -> (how it is served, what it is); the request of each is built by `_request`.
CASES = {
    "4k-64-frames": ("handler", "a 46 KB H.264 video, 3840x2160, 64 frames, one keyframe; fps=8, max_frames=64"),
    "two-4k-videos": ("handler", "two of those in one request (93 KB)"),
    "8k-16-frames": ("handler", "a 99 KB H.264 video, 7680x4320, 16 frames; default parameters"),
    "8k-library": ("library", "the 8K video through model.encode, library defaults"),
    "8k-library-allowed": ("library", "the same with max_video_frame_pixels raised to 8192x4352"),
    "10mb-text": ("library", "a 10.8 MB text through model.encode"),
    "worst-images": ("handler", "32 WebP images of 12.5 MP each (1 KB apiece, 33 KB in all)"),
    "worst-1mp-images": ("handler", "32 WebP images of 1 MP each, all embedded at the most tokens an image may take"),
    "worst-4k-gop": ("handler", "a 4K video of 100 frames and one keyframe (30 KB); default parameters"),
    "worst-4k-frames": ("handler", "that video with fps=8, max_frames=64 and 28x56 frames (64 sampled 4K frames)"),
    "worst-4k-sampled": (
        "handler",
        "that video with fps=8, max_frames=22, 28x56 frames: the most sampled 4K frames allowed",
    ),
    "worst-hevc": ("handler", "the same video in HEVC (30 KB), fps=8, max_frames=22, 28x56 frames"),
    "worst-mixed": ("handler", "the 4K video and 31 of the 12.5 MP images in one request (63 KB)"),
}


def make_media(folder: Path) -> dict[str, Path]:
    """The media of the cases, written once into `folder`."""
    from PIL import Image

    from gve_tools.media import write_blank_video

    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "4k": (3840, 2160, 64, "libx264"),
        "8k": (7680, 4320, 16, "libx264"),
        "4k-gop": (3840, 2160, 100, "libx264"),
        "4k-hevc": (3840, 2160, 100, "libx265"),
    }
    media = {}
    for name, (width, height, frames, codec) in specs.items():
        media[name] = folder / f"{name}.mp4"
        if not media[name].exists():
            write_blank_video(media[name], width, height, frames, fps=8, codec=codec)
    media["small-image"] = folder / "1mp.webp"
    if not media["small-image"].exists():
        Image.new("RGB", (1224, 816), (30, 30, 40)).save(media["small-image"], lossless=True)
    media["image"] = folder / "12mp.webp"
    if not media["image"].exists():  # the largest image the handler's defaults accept
        Image.new("RGB", (4330, 2886), (30, 30, 40)).save(media["image"], lossless=True)
    return media


def _uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _request(name: str, media: dict[str, Path]):
    """The case's request: a handler request (dict), or `model.encode` arguments (inputs, keyword arguments)."""
    video = {"video": _uri(media["4k"], "video/mp4")}
    image = {"image": _uri(media["image"], "image/webp")}
    gop = {"video": _uri(media["4k-gop"], "video/mp4")}
    tiny = {"fps": 8, "max_frames": 64, "min_pixels": 784, "max_pixels": 1568}
    return {
        "4k-64-frames": {"inputs": [video], "parameters": {"fps": 8, "max_frames": 64}},
        "two-4k-videos": {"inputs": [video, video], "parameters": {"fps": 8, "max_frames": 64}},
        "8k-16-frames": {"inputs": [{"video": _uri(media["8k"], "video/mp4")}]},
        "8k-library": ([str(media["8k"])], {}),
        "8k-library-allowed": ([str(media["8k"])], {"limits": {"max_video_frame_pixels": 8192 * 4352}}),
        "10mb-text": (["lorem ipsum dolor sit amet " * 400_000], {}),
        "worst-images": {"inputs": [image] * 32},
        "worst-1mp-images": {"inputs": [{"image": _uri(media["small-image"], "image/webp")}] * 32},
        "worst-4k-gop": {"inputs": [gop]},
        "worst-4k-frames": {"inputs": [gop], "parameters": tiny},
        "worst-4k-sampled": {"inputs": [gop], "parameters": {**tiny, "max_frames": 22}},
        "worst-hevc": {
            "inputs": [{"video": _uri(media["4k-hevc"], "video/mp4")}],
            "parameters": {**tiny, "max_frames": 22},
        },
        "worst-mixed": {"inputs": [gop, *[image] * 31]},
    }[name]


def run_case(name: str, checkpoint: str, media_folder: str, code: str) -> dict:
    """Serve one case in this process (a fresh one); returns its figures."""
    import warnings

    media = make_media(Path(media_folder))  # written by the parent: this only names them
    sys.path.insert(0, code)
    warnings.simplefilter("ignore")
    how = CASES[name][0]
    request = _request(name, media)
    if how == "handler":
        from handler import EndpointHandler

        server = EndpointHandler(checkpoint)
        serve = lambda: server(request)  # noqa: E731
    else:
        from gve_tools.models import load_model

        model = load_model(checkpoint)
        model.processor  # noqa: B018 - loaded before the case, as a server would
        serve = lambda: model.encode(request[0], show_progress_bar=False, **request[1])  # noqa: E731
    loaded = int(peak_rss_mb())
    started, cpu = time.monotonic(), cpu_seconds()
    try:
        serve()
        outcome = "embedded"
    except Exception as error:  # the figures of a refusal are the point
        outcome = f"{type(error).__name__}: {str(error)[:160]}"
    return {
        "case": name,
        "outcome": outcome,
        "wall_s": round(time.monotonic() - started, 2),
        "cpu_s": round(cpu_seconds() - cpu, 2),
        "peak_rss_mb": int(peak_rss_mb()),
        "loaded_rss_mb": loaded,
    }


def tiny_checkpoint(code: Path, out: Path) -> str:
    """A tiny random GVE (GVE's settings) made by `code`'s own script, so that it carries that checkout's code
    (made anew each run: a checkpoint carries a copy of the remote code, which must be the checkout's)."""
    shutil.rmtree(out, ignore_errors=True)
    script = (  # a checkout from before the tooling package kept its modules in scripts/
        "import sys\ntry:\n    from scripts.make_tiny_checkpoint import make_tiny_checkpoint as make\n"
        "except ImportError:\n    from gve_tools.tiny import make_tiny_checkpoint as make\n"
        "make(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", script, str(out)], cwd=code, check=True, capture_output=True)
    return str(out)


def run(cases: list[str], code: Path, work: Path, timeout: float) -> list[dict]:
    """Every case in its own process (`hardening_cli.main --run-case NAME`); a case past `timeout` is reported."""
    checkpoint = tiny_checkpoint(code, work / f"tiny-{code.name}")
    make_media(work / "media")
    results = []
    for name in cases:
        options = ["--run-case", name, "--checkpoint", checkpoint, "--work", str(work), "--code", str(code)]
        try:
            done = subprocess.run(
                child_command("gve_tools.benchmark.hardening_cli", *options),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=code,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            result = json.loads(lines[-1]) if lines else {"case": name, "outcome": f"crashed: {done.stderr[-300:]}"}
        except subprocess.TimeoutExpired:
            result = {"case": name, "outcome": f"still running after {timeout:g} s (stopped)"}
        results.append(result)
        print(json.dumps(result), flush=True)
    return results


def table(results: list[dict]) -> str:
    """The results as a Markdown table."""
    rows = [
        "| case | what | outcome | wall s | CPU s | peak RSS MB (loaded) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        figures = [str(result.get(key, "-")) for key in ("wall_s", "cpu_s")]
        rss = f"{result['peak_rss_mb']} ({result['loaded_rss_mb']})" if "peak_rss_mb" in result else "-"
        what = CASES[result["case"]][1]
        rows.append(f"| {result['case']} | {what} | {result['outcome']} | {' | '.join(figures)} | {rss} |")
    return "\n".join(rows)
