"""The throughput benchmark's runs: the model, the stage clock and its instrumentation, and each path in a process.

A path is one way of embedding the corpus (see `cli`): (a) the original model card's loop, (b) `model.encode`,
(c) sentence-transformers, the decode ceiling, and encode's stages one after another on one thread. `run_path`
runs one in the current process and returns its figures; `in_subprocess` runs it in a fresh one, so that its peak
RSS is its own.
"""

import inspect
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from gve_tools.benchmark.process import child_command, cpu_seconds, peak_rss_mb
from gve_tools.models import load_model, torch_dtype

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


def benchmark_model(model_id: str, device: str, shapes: str | None):
    """The checkpoint (bf16 on cuda, else float32), or random weights at GVE-3B's or GVE-7B's shapes."""
    if shapes is None:
        return load_model(model_id, device=device)
    return random_model(model_id, device, shapes)


def random_model(model_id: str, device: str, shapes: str):
    """Random weights at `shapes` (SHAPES, VISION), with `model_id`'s tokenizer and processor and its settings."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    config = AutoConfig.from_pretrained(model_id, trust_remote_code=True)
    for key, value in SHAPES[shapes].items():
        setattr(config.text_config, key, value)
    for key, value in VISION.items():
        setattr(config.vision_config, key, value)
    config.vision_config.out_hidden_size = SHAPES[shapes]["hidden_size"]
    config.text_config.rope_parameters["mrope_section"] = [16, 24, 24]
    with torch.device(device):
        model = AutoModel.from_config(config, trust_remote_code=True, dtype=torch_dtype("auto", device)).eval()
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
    model = benchmark_model(model_id, device, shapes)
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
    """Run one path in a fresh process (`cli.main --run PATH`); return its figures."""
    options = ["--run", path, "--corpus-file", str(corpus_file), "--repeat", str(repeat)]
    options += ["--model", args.model, "--device", args.device] + (["--shapes", args.shapes] if args.shapes else [])
    result = subprocess.run(
        child_command("gve_tools.benchmark.cli", *options),
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    if result.returncode != 0:
        raise SystemExit(f"path {path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
