"""The throughput benchmark's report: the figures of every path as a table, and what they bound."""

import os

from gve_tools.benchmark.throughput import PATHS

NAMES = {
    "a": "(a) model card loop",
    "b": "(b) model.encode",
    "c": "(c) sentence-transformers",
    "ceiling": "decode ceiling",
    "serial": "one thread, stage by stage",
}


def report(results: dict, scale: dict, args) -> str:
    """The figures as a readable table."""
    base = results["a"]["items_per_s"]
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
            f"| {NAMES[key]} | {r['items_per_s']:.2f} | {r['items_per_s'] / base:.2f}x | {s['decode']:.2f} | "
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
