#!/usr/bin/env python
"""Throughput benchmark: three ways of embedding one mixed corpus with one checkpoint, and the decode ceiling.

(a) the original model card's loop, one input at a time, decoding in the main thread;
(b) `model.encode` (threaded decoding ahead of the model, length-sorted token-budget batches);
(c) sentence-transformers `encode`.

The corpus is generated: mp4 videos of mixed lengths and sizes, images and texts. For each path the
benchmark reports items/s and the ratio to (a), the time split into decode (qwen-vl-utils),
preprocess (template, tokenizer, image/video processor) and forward, the padding waste, and the
peak RSS (and peak GPU memory on a GPU). The decode-bound ceiling is items/s when only reading and
decoding the inputs (`processor.load`), on all cores; (b) is reported as a fraction of it. A last
run takes encode's stages one after another on one thread, which gives each stage's own cost and
so the most any pipeline could reach with them perfectly overlapped on this machine's cores. Each
path runs in its own process, so that its peak RSS is its own; (b) also runs on 10x the corpus
(streamed from a generator) to show that memory stays flat.

    python scripts/benchmark.py                                  # tiny random checkpoint (GVE's settings), CPU
    python scripts/benchmark.py --model bundled/gve-tiny-synthetic   # the trained tiny GVE and its settings
    python scripts/benchmark.py --device cuda --shapes 3b        # random weights at GVE-3B's shapes, bf16
"""

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from gve_tools.repo import ROOT
from gve_tools.synthetic_media import COLOURS, moving_square, write_image, write_video

# Published backbone shapes (FACTS.md), for random-weight GPU runs.
SHAPES = {
    "3b": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
    },
    "7b": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
    },
}
VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "tokens_per_second": 2,
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
PATHS = ("a", "b", "c", "ceiling", "serial")


def make_corpus(folder: Path, videos: int = 128, images: int = 64, texts: int = 64, seed: int = 0) -> list:
    """Write a mixed corpus to `folder` (kept and reused) and return its inputs, shuffled.

    Videos are 24 fps H.264 clips of 5 to 40 s at 320x240 to 640x360, like short web videos: reading
    8 frames from them means seeking and decoding, as with real corpora. Images come in the same
    sizes, and texts run from a few words to a paragraph.
    """
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    colours, directions = sorted(COLOURS), ["left", "right", "up", "down"]
    sizes = [(320, 240), (480, 360), (640, 360)]
    items = []
    for index in range(videos):
        width, height = sizes[index % len(sizes)]
        seconds, colour, direction = rng.choice([5, 10, 20, 40]), rng.choice(colours), rng.choice(directions)
        path = folder / f"video_{index:03d}_{seconds}s_{width}x{height}.mp4"
        if not path.exists():
            write_video(path, moving_square(seconds * 24, width, height, colour, direction), fps=24)
        items.append(str(path))
    for index in range(images):
        width, height = sizes[index % len(sizes)]
        path = folder / f"image_{index:03d}_{width}x{height}.png"
        if not path.exists():
            write_image(path, rng.choice(colours), width, height, seed=index)
        items.append(str(path))
    words = "a red square moves slowly from the left of the frame to the right while the camera pans".split()
    for _ in range(texts):
        items.append(" ".join(rng.choice(words) for _ in range(rng.choice([4, 12, 40, 120]))))
    rng.shuffle(items)
    return items


def load_model(model_id: str, device: str, shapes: str | None):
    """The checkpoint, or random weights at real shapes (with the tiny tokenizer and processor)."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if shapes is None:
        return AutoModel.from_pretrained(model_id, trust_remote_code=True, dtype=dtype).to(device).eval()
    config = AutoConfig.from_pretrained(model_id, trust_remote_code=True)
    for key, value in SHAPES[shapes].items():
        setattr(config.text_config, key, value)
    for key, value in VISION.items():
        setattr(config.vision_config, key, value)
    config.vision_config.out_hidden_size = SHAPES[shapes]["hidden_size"]
    config.text_config.rope_parameters["mrope_section"] = [16, 24, 24]
    with torch.device(device):
        model = AutoModel.from_config(config, trust_remote_code=True, dtype=dtype).eval()
    model.processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=True)
    return model


class Clock:
    """Seconds spent in each stage, summed over threads."""

    def __init__(self):
        self.seconds = {"decode": 0.0, "preprocess": 0.0, "forward": 0.0}
        self.tokens = {"padded": 0, "real": 0}
        self.lock = threading.Lock()

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            with self.lock:
                self.seconds[name] += time.perf_counter() - start

    def count(self, batch) -> None:
        with self.lock:
            self.tokens["padded"] += batch["input_ids"].numel()
            self.tokens["real"] += int(batch["attention_mask"].sum())


def instrument(model, clock: Clock) -> None:
    """Time decoding, preprocessing and forward passes inside `model.encode` and sentence-transformers."""
    processor = model.processor
    fetch_video, fetch_image, collate, encode = (
        processor._fetch_video,
        processor._fetch_image,
        processor._encode,
        type(model).forward,
    )

    def timed(name, function):
        def wrapper(*args, **kwargs):
            with clock.stage(name):
                return function(*args, **kwargs)

        return wrapper

    processor._fetch_video = timed("decode", fetch_video)
    processor._fetch_image = timed("decode", fetch_image)
    processor._encode = timed("preprocess", collate)

    def forward(self, *args, **kwargs):
        clock.count(kwargs)
        with clock.stage("forward"):
            output = encode(self, *args, **kwargs)
            if output.pooler_output.is_cuda:
                torch.cuda.synchronize()
            return output

    type(model).forward = forward


def reference_loop(model, items: list, clock: Clock) -> torch.Tensor:
    """(a) The original model card's usage, one input at a time."""
    from qwen_vl_utils import process_vision_info

    processor = model.processor
    config = processor.embedding_config
    rows = []
    for item in items:
        content = []
        kind = "video" if item.endswith(".mp4") else "image" if item.endswith(".png") else "text"
        if kind == "video":
            # the card's fps, max_frames and max_pixels, and any other sampling limit the checkpoint sets
            content.append({"type": "video", "video": item, **config.video_options()})
        elif kind == "image":
            content.append({"type": "image", "image": item, **config.image_options()})
        else:
            content.append({"type": "text", "text": item})
        messages = [{"role": "system", "content": config.default_instruction}, {"role": "user", "content": content}]
        with clock.stage("decode"):
            images, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True)
        with clock.stage("preprocess"):
            text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            inputs = processor(
                text=[text], images=images, videos=videos, padding=True, return_tensors="pt", **video_kwargs
            ).to(model.device)
        clock.count(inputs)
        with clock.stage("forward"), torch.inference_mode():
            outputs = model(**inputs)
            rows.append(F.normalize(outputs["last_hidden_state"][:, -1, :].float(), p=2, dim=1).cpu())
    return torch.cat(rows)


def run_path(path: str, model_id: str, corpus: list, repeat: int, device: str, shapes: str | None) -> dict:
    """Run one path in this process; return its figures."""
    model = load_model(model_id, device, shapes)
    clock = Clock()
    if path in ("b", "ceiling", "serial"):  # (a) times its own stages; (c) instruments the module's model below
        instrument(model, clock)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stream = (item for _ in range(repeat) for item in corpus)
    count = len(corpus) * repeat
    start, cpu_start = time.perf_counter(), cpu_seconds()
    if path == "a":
        reference_loop(model, list(stream), clock)
    elif path == "b":
        model.encode(stream, show_progress_bar=False)
    elif path == "c":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model_id, trust_remote_code=True, device=device)
        st[0].model.processor = st[0].processor  # so that the module's own processor is the one timed
        instrument(st[0].model, clock)
        start = time.perf_counter()
        st.encode(list(stream), batch_size=16)
    elif path == "ceiling":  # the decode-bound ceiling: reading and decoding only, on all cores
        processor = model.processor
        # as model.encode's workers: one per core, one torch thread each
        with ThreadPoolExecutor(os.cpu_count() or 1, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for _ in pool.map(lambda item: processor.load(item), stream):
                pass
    else:  # each stage's own cost: encode's stages one after another, window by window, on one CPU thread
        torch.set_num_threads(1)
        processor, items = model.processor, list(stream)
        defaults = inspect.signature(type(model).encode_stream).parameters  # encode's own batching
        batch_size, max_batch_tokens = defaults["batch_size"].default, defaults["max_batch_tokens"].default
        max_length = processor.embedding_config.max_length
        for window in range(0, len(items), 2 * batch_size):  # encode's windows
            loaded = [processor.load(item) for item in items[window : window + 2 * batch_size]]
            for item in loaded:
                processor.featurize(item, release_media=True)
            for _ in model._embed_window(list(enumerate(loaded)), batch_size, max_batch_tokens, max_length, lambda: 1):
                pass
    seconds = time.perf_counter() - start
    result = {
        "path": path,
        "items": count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu_start,
        "items_per_s": count / seconds,
        "stage_seconds": clock.seconds,
        "padding_waste": 1 - clock.tokens["real"] / clock.tokens["padded"] if clock.tokens["padded"] else 0.0,
        "peak_rss_mb": peak_rss_mb(),
    }
    if device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["tokens"] = clock.tokens["real"]
        result["mfu"] = model_flops(model, clock.tokens["real"]) / seconds / peak_flops()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    Linux reads the high-water mark of the process's own address space (`VmHWM`): `ru_maxrss`
    carries over the parent's resident size at the fork, so a child started by a benchmark that had
    grown to 1.4 GB (writing the corpus) reported at least that, whatever the path used.
    """
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def model_flops(model, tokens: int) -> float:
    """Forward FLOPs, about 2 x (parameters outside the embedding table) x tokens."""
    params = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    return 2.0 * params * tokens


def peak_flops() -> float:
    name = torch.cuda.get_device_name(0)
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    raise SystemExit(f"no peak bf16 FLOP/s known for {name!r}; add it to PEAK_BF16_TFLOPS")


def in_subprocess(path: str, args, corpus_file: Path, repeat: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--run",
        path,
        "--corpus-file",
        str(corpus_file),
        "--repeat",
        str(repeat),
        "--model",
        args.model,
        "--device",
        args.device,
    ] + (["--shapes", args.shapes] if args.shapes else [])
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    )
    if result.returncode != 0:
        raise SystemExit(f"path {path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(results: dict, scale: dict, args) -> str:
    """The figures as a readable table."""
    base = results["a"]["items_per_s"]
    names = {
        "a": "(a) model card loop",
        "b": "(b) model.encode",
        "c": "(c) sentence-transformers",
        "ceiling": "decode ceiling",
        "serial": "one thread, stage by stage",
    }
    lines = [
        f"corpus: {results['a']['items']} items ({args.videos} videos, {args.images} images, {args.texts} texts), "
        f"model {args.model_name or args.model}, device {args.device}"
        + (f", shapes {args.shapes} (random weights)" if args.shapes else ""),
        "",
        "| path | items/s | vs (a) | decode s | preprocess s | forward s | padding waste | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in PATHS:
        r = results[key]
        s = r["stage_seconds"]
        lines.append(
            f"| {names[key]} | {r['items_per_s']:.2f} | {r['items_per_s'] / base:.2f}x | {s['decode']:.2f} | "
            f"{s['preprocess']:.2f} | {s['forward']:.2f} | {r['padding_waste']:.1%} | {r['peak_rss_mb']:.0f} |"
        )
    bound = overlap_bound(results["serial"], args.device)
    ceiling = results["ceiling"]["items_per_s"]
    lines += [
        "",
        "Stage seconds are summed over threads, so with parallel decoding they can exceed the wall time.",
        f"(b) / decode ceiling: {results['b']['items_per_s'] / ceiling:.1%}",
        # (b) decodes the same frames with the same reader, so it cannot pass the ceiling
        f"most (b) could reach against (a), the decode ceiling: {ceiling / base:.2f}x",
        f"most (b) could reach with its stages perfectly overlapped on {os.cpu_count()} cores: {bound:.2f} items/s, "
        f"{bound / base:.2f}x (a), {min(bound, ceiling) / ceiling:.1%} of the ceiling; (b) reaches "
        f"{results['b']['items_per_s'] / bound:.1%} of it",
        f"(b) peak RSS, 1x corpus: {scale[1]['peak_rss_mb']:.0f} MB; {args.scale}x corpus "
        f"({scale[args.scale]['items']} items, streamed): {scale[args.scale]['peak_rss_mb']:.0f} MB "
        f"({scale[args.scale]['peak_rss_mb'] / scale[1]['peak_rss_mb'] - 1:+.1%})",
    ]
    if args.device == "cuda":
        gpu = results["b"]
        lines += [f"(b) peak GPU memory {gpu['peak_gpu_mb']:.0f} MB, model FLOP utilisation {gpu['mfu']:.1%}"]
    return "\n".join(lines)


def cpu_seconds() -> float:
    """CPU time this process has used so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def overlap_bound(serial: dict, device: str) -> float:
    """Items/s of perfectly overlapped stages: the stage-by-stage run's CPU time spread over every core.

    Running a stage on more threads does no less work, so no pipeline on this machine beats it. On a
    GPU the forward pass runs beside the CPU stages instead of on the cores.
    """
    cores = os.cpu_count() or 1
    if device == "cuda":
        forward = serial["stage_seconds"]["forward"]
        seconds = max((serial["cpu_seconds"] - forward) / cores, forward)
    else:
        seconds = serial["cpu_seconds"] / cores
    return serial["items"] / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="GVE checkpoint folder or repo id; 'tiny' builds the tiny one")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--shapes", choices=sorted(SHAPES), help="random weights at GVE-3B/7B shapes (bf16, cuda)")
    # 256 inputs by default: eight of encode's windows, so that filling the pipeline at the start and
    # draining it at the end (about a window each) weigh as little as they do on a real corpus
    parser.add_argument("--videos", type=int, default=128, help="videos in the corpus (default 128)")
    parser.add_argument("--images", type=int, default=64, help="images in the corpus (default 64)")
    parser.add_argument("--texts", type=int, default=64, help="texts in the corpus (default 64)")
    parser.add_argument("--scale", type=int, default=10, help="corpus multiple for the memory check (default 10)")
    parser.add_argument(
        "--corpus-dir",
        type=Path,
        default=ROOT / "build" / "benchmark-corpus",
        help="where the corpus is written (reused)",
    )
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--run", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.set_defaults(model_name=None)  # how the report names the model, when not by its path
    args = parser.parse_args(argv)
    if args.shapes and args.device != "cuda":
        parser.error("--shapes runs random weights at full size: use it with --device cuda")
    if args.run:  # a child process: one path, figures as JSON on the last line
        corpus = json.loads(args.corpus_file.read_text())
        print(json.dumps(run_path(args.run, args.model, corpus, args.repeat, args.device, args.shapes)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.model == "tiny":
            from gve_tools.make_tiny_checkpoint import make_tiny_checkpoint

            args.model = str(make_tiny_checkpoint(folder / "gve-tiny"))
            args.model_name = "tiny random checkpoint (scripts/make_tiny_checkpoint.py)"
        corpus = make_corpus(args.corpus_dir, args.videos, args.images, args.texts)
        corpus_file = folder / "corpus.json"
        corpus_file.write_text(json.dumps(corpus))
        results = {path: in_subprocess(path, args, corpus_file, 1) for path in PATHS}
        scale = {1: results["b"], args.scale: in_subprocess("b", args, corpus_file, args.scale)}
        text = report(results, scale, args)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"results": results, "scale": scale, "report": text}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
