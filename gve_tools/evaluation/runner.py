"""A run of the evaluation: every input embedded (through the cache), every dataset scored, the tables printed,
and the results file (what `scripts/make_model_card.py --results` reads) written with its details file beside it.
"""

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.evaluation.cache import (
    DEFAULT_CACHE_DIR,
    EmbeddingCache,
    Segmenting,
    dataset_inputs,
    embed_all,
    embed_segments,
    load_config,
)
from gve_tools.evaluation.format import METRICS, MOMENT_METRICS, OVERALL, EvaluationError, load_benchmark
from gve_tools.evaluation.metrics import ABILITIES, FLOAT32, DatasetResult, score_dataset, summarise
from gve_tools.evaluation.moments import Segments, moment_scores
from gve_tools.identity import checkpoint_identity, embedding_settings
from gve_tools.models import load_model, resolve_model
from gve_tools.quantization import quantization_config
from gve_tools.repo import ROOT, query_instruction, remote_module
from gve_tools.vectors import VectorFormat

DEFAULT_OUTPUT = Path("build/eval/results.json")


def evaluate(
    benchmark: str | Path,
    model: str | None = None,
    *,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 16,
    datasets: list[str] | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    output: str | Path | None = DEFAULT_OUTPUT,
    model_name: str | None = None,
    vectors: VectorFormat = FLOAT32,
    weights: str = "float",
    segments: bool = False,
    segment_window: float | None = None,
    segment_stride: float | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on the benchmark folder; prints the tables, writes `output` and its details file.

    `cache_dir=None` turns the embedding cache off; `report=False` prints nothing but the progress bars.
    `vectors` scores as a compact index would (int8, binary, re-scoring, truncation: `gve_tools.vectors`); the
    embeddings, and so the cache, are the same for all. `weights` quantizes the language model's weights
    (`gve_tools.quantization`), which changes the embeddings (they are cached apart).
    Moment datasets rank their videos' segments (`segment_window` and `segment_stride` in seconds, by default the
    model's, `processing_gve.segment_settings`); `segments` ranks every video document by its best segment too.
    Returns the details (see `results_files`).
    """
    import torch
    from tqdm.auto import tqdm

    info, chosen = load_benchmark(benchmark, datasets)
    model_id = resolve_model(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    quantization_config(weights, device)  # an unknown setting, or one with no backend here, fails before any work
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    config = load_config(model_id, revision)
    identity = checkpoint_identity(model_id, revision)
    settings = embedding_settings(config, dtype, device, weights)
    cache = EmbeddingCache.for_checkpoint(cache_dir, identity, settings)
    moments = [dataset.name for dataset in chosen if dataset.moments is not None]
    if moments and vectors != FLOAT32:  # before any work, not once everything is embedded
        raise EvaluationError(f"{moments[0]}: moments are scored with float32 vectors only")
    segmenting = None
    if segments or moments:
        try:
            window, stride = remote_module("processing_gve").segment_settings(
                segment_window, segment_stride, config.video_options()
            )
        except ValueError as error:
            raise EvaluationError(f"--segment-window/--segment-stride: {error}") from None
        segmenting = Segmenting(window, stride, videos=segments)
    requests, segment_requests, keys = dataset_inputs(
        chosen, query_instruction(), config.default_instruction, segmenting
    )

    # the weights load only when an embedding is missing from the cache
    load = functools.cache(lambda: load_model(model_id, revision=revision, device=device, dtype=dtype, weights=weights))
    embeddings = embed_all(load, requests, cache, batch_size)
    if segment_requests:
        embeddings.update(embed_segments(load, segment_requests, cache, segmenting, batch_size))
    results = []
    for dataset in tqdm(chosen, desc="Evaluating", unit="dataset"):
        query_keys, doc_keys = keys[dataset.name]
        queries = np.stack([embeddings[key] for key in query_keys])
        docs = {doc: embeddings[key] for doc, key in doc_keys.items()}
        flat = {doc: found.embeddings if isinstance(found, Segments) else found for doc, found in docs.items()}
        result = score_dataset(dataset, queries, flat, vectors=vectors)
        if dataset.moments is not None:
            scores, chance = moment_scores(dataset, queries, docs)
            result.scores.update(scores)
            result.chance.update(chance)
        results.append(result)
    summary = summarise(results)
    name = model_name or Path(model_id.rstrip("/")).name
    provenance = {
        "model": identity["model"],
        "revision": revision,
        "content": identity["content"],
        "settings": settings,
        "vectors": vectors.as_json(),
        "segments": None if segmenting is None else dataclasses.asdict(segmenting),
    }
    card, details = results_files(info, results, summary, name, count_parameters(identity["folder"]), provenance)

    if report:
        print(
            f"\n{name} on {info['name']} ({len(results)} datasets{_variant(provenance)}; "
            "score = main metric, chance = random ranking)"
        )
        print(format_tables(results, summary, provenance["segments"]))
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        details_path = details_file(output)
        details_path.write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
        if report:
            print(f"\nwrote {output} (for scripts/make_model_card.py --results) and {details_path}")
    return details


def details_file(output: str | Path) -> Path:
    """Where the per-dataset details of a results file go: `results.json` -> `results.details.json`."""
    output = Path(output)
    return output.with_name(output.stem + ".details.json")


def count_parameters(folder: str | Path) -> str | None:
    """The checkpoint's parameter count as the card writes it (8.3B, 3.8B, 1.2M, 950K), from its safetensors headers.

    Every tensor of the files counts, lm_head included (as the published 8.3B of GVE-7B does); None when the
    folder has no safetensors files.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as file:
            header = json.loads(file.read(int.from_bytes(file.read(8), "little")))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if total >= scale:
            return f"{total / scale:.1f}{suffix}"
    return str(total)


def results_files(
    info: dict[str, str],
    results: list[DatasetResult],
    summary: dict[str, dict[str, Any]],
    model_name: str,
    params: str | None,
    provenance: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the results file make_model_card.py reads, the details file: per-dataset metrics and chance levels)."""
    counts = {m: n for m in (*METRICS, *MOMENT_METRICS) if (n := sum(r.metric == m for r in results))}
    used = ", ".join(f"{m} on {n} dataset{'s' if n > 1 else ''}" for m, n in counts.items())
    columns = []
    for key in summary:
        name, group = ("Overall average", "overall") if key == OVERALL else ABILITIES.get(key, (key, "ability"))
        columns.append({"key": key, "name": name, "group": group})
    card = {
        "source": (
            f"scripts/evaluate.py on the local benchmark {info['name']} ({len(results)} datasets): model "
            f"{_shown(provenance['model'])}{'@' + provenance['revision'] if provenance['revision'] else ''}, "
            f"{provenance['settings']['dtype']} on {provenance['settings']['device']}{_variant(provenance)}."
        ),
        "benchmark": {
            "name": info["name"],
            "full_name": info["full_name"],
            "dataset": info["dataset"],
            "num_datasets": len(results),
            "task_type": "video-retrieval",
            "task_name": "Video Retrieval",
            "overall_column": OVERALL,
            "source_name": "scripts/evaluate.py",
            "source_url": info["source_url"],
            "metric": f"the main metric of each dataset ({used}), averaged per ability; AVG averages the datasets",
            "decimals": 3,
        },
        "columns": columns,
        "models": [
            {
                "name": model_name,
                "params": params,
                "ours": True,
                "scores": {key: round(value["score"], 6) for key, value in summary.items()},
            }
        ],
    }
    details = {
        "benchmark": info,
        "model": {"name": model_name, "params": params, **provenance},
        "conventions": {
            "R@k": "hit@k: 1 when any relevant document is in the top k (UVRB); hit@1 (MMEB) = R@1",
            "nDCG@k": "trec_eval: linear gains (relevance grades), 1/log2(rank+1) discount, ideal from qrels",
            "ties": "non-relevant before relevant, lower grades first, then file order",
            "chance": "exact expectation under a uniformly random ranking of each query's candidates",
        },
        "summary": summary,
        "datasets": {r.name: r.as_json() for r in results},
    }
    return card, details


def _variant(provenance: dict[str, Any]) -> str:
    """What a run changed from the plain float embeddings, as words for its titles (", int8 vectors")."""
    vectors = VectorFormat(**provenance["vectors"])
    weights = provenance["settings"].get("weights")
    segmenting = provenance.get("segments")
    return (
        (f", {weights} weights" if weights else "")
        + ("" if vectors == FLOAT32 else f", {vectors.label} vectors")
        + (
            f", videos scored by their best segment ({_windows(segmenting)})"
            if segmenting and segmenting["videos"]
            else ""
        )
    )


def _windows(segmenting: dict[str, Any]) -> str:
    return f"windows of {segmenting['window']:g} s every {segmenting['stride']:g} s"


def _shown(model: str) -> str:
    """A model folder as the results file shows it: relative to the repository or the current folder if inside."""
    path = Path(model)
    if not path.is_absolute():
        return model
    for base in (ROOT, Path.cwd()):
        if path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
    return model


def format_tables(
    results: list[DatasetResult], summary: dict[str, dict[str, Any]], segmenting: dict[str, Any] | None = None
) -> str:
    """The terminal report: a table of datasets (every metric, the main one with its chance), of moments (when a
    dataset has them), then of abilities."""
    name_width = max(12, *(len(r.name) for r in results))
    main_width = max(7, *(len(r.metric) for r in results))
    head = (
        f"{'dataset':<{name_width}}  {'abilities':<14} {'ranking':<7} {'queries':>7} {'docs':>6}  "
        + " ".join(f"{m:>7}" for m in METRICS)
        + f"  {'main':>{main_width}} {'score':>6} {'chance':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<{name_width}}  {','.join(r.abilities):<14} {r.ranking:<7} {r.queries:>7} {r.documents:>6}  "
            + " ".join(f"{r.scores[m]:>7.3f}" for m in METRICS)
            + f"  {r.metric:>{main_width}} {r.scores[r.metric]:>6.3f} {r.chance[r.metric]:>6.3f}"
        )
    lines.append("(docs: the corpus, or the mean number of candidates with local ranking; R@1 is MMEB's hit@1)")
    moments = [r for r in results if MOMENT_METRICS[0] in r.scores]
    if moments:
        lines += ["", f"moments: the top segment's temporal IoU with the relevant span ({_windows(segmenting)})"]
        head = f"{'dataset':<{name_width}}  {'ranking':<7} {'queries':>7}  " + "  ".join(
            f"{m:>11} {'chance':>6}" for m in MOMENT_METRICS
        )
        lines += [head, "-" * len(head)]
        for r in moments:
            lines.append(
                f"{r.name:<{name_width}}  {r.ranking:<7} {r.queries:>7}  "
                + "  ".join(f"{r.scores[m]:>11.3f} {r.chance[m]:>6.3f}" for m in MOMENT_METRICS)
            )
    lines += ["", f"{'ability':<8} {'score':>6} {'chance':>6}  datasets", "-" * 40]
    for key, value in summary.items():
        lines.append(f"{key:<8} {value['score']:>6.3f} {value['chance']:>6.3f}  {', '.join(value['datasets'])}")
    return "\n".join(lines)
