"""The run: `embed_corpus` checks the output folder, finds the shards left to do, runs the Ray Data pipeline over
them (the stages of `stages`) and writes each shard as soon as all its rows are back (a row embedded as segments
comes back once, with all its segments)."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from gve_tools.corpus.cluster import check_resources, wait_for_cpus
from gve_tools.corpus.manifest import MANIFEST_FIELDS, TIME_RANGE, read_manifest, shard_digest
from gve_tools.corpus.settings import DEFAULT_SHARD_SIZE, check_segments, check_settings, run_settings
from gve_tools.corpus.shards import OutputMismatch, errors_path, gather_errors, shard_metadata, shard_path, write_shard
from gve_tools.corpus.stages import Embedder, ItemError, find_item_error, preprocess

DECODE_TASK_MEMORY = 2**30  # bytes reserved per decoding task (torch and the processor take ~650 MiB)


@dataclass
class Summary:
    """What `embed_corpus` did."""

    out: Path
    items: int = 0  # rows in the manifest
    embedded: int = 0  # embedded and written by this run
    segmented: int = 0  # of those, videos embedded as segments (--segment-seconds)
    vectors: int = 0  # vectors written by this run: one per item embedded whole, one per segment
    resumed: int = 0  # already in finished shards, not recomputed
    failed: int = 0  # bad items this run (in the errors files)
    shards_written: list[int] = field(default_factory=list)
    shards_skipped: list[int] = field(default_factory=list)
    shards_left: int = 0  # not done because of --max-shards
    seconds: float = 0.0
    index: Path | None = None

    @property
    def items_per_second(self) -> float:
        return (self.embedded + self.failed) / self.seconds if self.seconds else 0.0

    def report(self) -> str:
        lines = [
            f"items in manifest: {self.items}",
            f"embedded:          {self.embedded} ({len(self.shards_written)} shard(s) written)",
            *(
                [f"segmented:         {self.segmented} video(s) as segments; {self.vectors} vector(s) written"]
                if self.segmented
                else []
            ),
            f"skipped (done):    {self.resumed} ({len(self.shards_skipped)} finished shard(s) from earlier runs)",
            f"failed:            {self.failed}" + (f" (listed in {self.out / 'errors.jsonl'})" if self.failed else ""),
            f"speed:             {self.items_per_second:.2f} items/s ({self.seconds:.1f} s)",
            f"embeddings:        {self.out / 'embeddings'}",
        ]
        if self.shards_left:
            lines.append(f"not done:          {self.shards_left} shard(s) left by --max-shards; re-run to continue")
        if self.index:
            lines.append(f"index:             {self.index} (ids in {self.index.with_suffix('.json')})")
        return "\n".join(lines)


def embed_corpus(
    manifest: str | Path,
    out: str | Path,
    checkpoint: str,
    *,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    float16: bool = False,
    instruction: str | None = None,
    on_error: str = "raise",
    concurrency: int = 1,
    num_gpus: float = 0.0,
    actor_cpus: float = 1.0,
    batch_size: int = 16,
    max_batch_tokens: int = 16384,
    num_workers: int | None = None,
    preprocess_mode: str = "tasks",
    shard_size: int = DEFAULT_SHARD_SIZE,
    max_shards: int | None = None,
    show_progress_bar: bool = True,
    segment_seconds: float | None = None,
    segment_stride: float | None = None,
) -> Summary:
    """Embed a manifest into Parquet shards under `out` (see the package docstring); Ray must be initialised.

    With `segment_seconds`, a row that is a video alone (no text, no image, no `video_start`/`video_end` of its
    own) longer than that is embedded as segments of `segment_seconds` seconds, `segment_stride` apart (None: the
    model's default; see `model.encode_segments`), one shard row each, with its `start` and `end`.

    Raises:
        ValueError: bad arguments (e.g. a stride longer than the segments).
        ManifestError: the manifest is invalid.
        OutputMismatch: `out` holds embeddings of other settings or other manifest rows.
        DamagedShard: a finished shard in `out` cannot be read.
        ItemError: with `on_error="raise"`, an item that cannot be embedded (named by id and row).
    """
    options = dict(locals())  # the call's arguments, which the pipeline reads its own from
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if preprocess_mode not in ("tasks", "actor"):
        raise ValueError(f"preprocess_mode must be 'tasks' or 'actor', got {preprocess_mode!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    check_segments(segment_seconds, segment_stride)
    out = Path(out)
    started = time.perf_counter()
    rows = read_manifest(manifest)
    settings = run_settings(
        checkpoint,
        revision,
        dtype=dtype,
        float16=float16,
        instruction=instruction,
        shard_size=shard_size,
        segment_seconds=segment_seconds,
        segment_stride=segment_stride,
    )
    check_settings(out, settings)
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for stale in (out / folder).glob(".*.tmp"):  # left by an interrupted run
            stale.unlink()

    shards = [rows[start : start + shard_size] for start in range(0, len(rows), shard_size)]
    summary = Summary(out=out, items=len(rows))
    pending = _pending_shards(summary, shards, settings)
    if max_shards is not None:
        summary.shards_left = max(0, len(pending) - max_shards)
        pending = pending[:max_shards]
    if pending:
        _run_pipeline(summary, shards, pending, settings, options)
    gather_errors(out)
    summary.seconds = time.perf_counter() - started
    return summary


def _pending_shards(summary: Summary, shards: list[list[dict]], settings: dict) -> list[int]:
    """The shards not finished yet; a finished one must hold the same settings and manifest rows, and is skipped."""
    out, shard_size = summary.out, settings["shard_size"]
    pending = []
    for number, shard_rows in enumerate(shards):
        path = shard_path(out, number)
        if path.exists():
            written = shard_metadata(path)
            if written.get("settings") != settings:
                raise OutputMismatch(f"{path} was written with other settings than {out / 'settings.json'}")
            if written.get("digest") != shard_digest(shard_rows):
                raise OutputMismatch(
                    f"{path} holds manifest rows {number * shard_size + 1} to {number * shard_size + len(shard_rows)} "
                    "as they were when it was written, and the manifest has changed there (rows edited, added "
                    "before them, or reordered). Use a new --out folder, or delete the shards from this one on."
                )
            summary.shards_skipped.append(number)
            summary.resumed += len(shard_rows)
        else:
            errors_path(out, number).unlink(missing_ok=True)
            pending.append(number)
    return pending


def _run_pipeline(summary: Summary, shards: list, pending: list[int], settings: dict, options: dict) -> None:
    """Run the Ray Data pipeline over the pending shards, writing each one as soon as all its rows are back.

    `options` are `embed_corpus`'s arguments.
    """
    import ray
    from tqdm.auto import tqdm

    wait_for_cpus(ray, check_resources(ray, options))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one tqdm bar below instead of Ray's per-operator bars
    raise_original = context.raise_original_map_exception
    context.raise_original_map_exception = True  # a stage's ItemError comes back as itself (`find_item_error`)
    expected = {number: len(shards[number]) for number in pending}
    results: dict[int, list[dict]] = {number: [] for number in pending}
    total = sum(expected.values())
    segments = options["segment_seconds"] is not None
    progress = tqdm(total=total, desc="Embedding", unit="item", disable=not options["show_progress_bar"])
    dataset, stopped_by = None, None
    try:
        dataset = _dataset(ray, shards, pending, settings, options)
        for outputs in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for output in outputs.to_pylist():
                number = output["shard"]
                results[number].append(output)
                progress.update(1)
                if len(results[number]) == expected[number]:
                    finished = results.pop(number)
                    written, failed = write_shard(summary.out, number, shards[number], finished, settings)
                    summary.embedded += written
                    summary.failed += failed
                    embedded = [result for result in finished if result["error"] is None]
                    summary.segmented += sum(result["starts"] is not None for result in embedded)
                    summary.vectors += sum(len(result["starts"] or [None]) for result in embedded)
                    summary.shards_written.append(number)
                    postfix = {"shards": len(summary.shards_written), "failed": summary.failed}
                    if segments:
                        postfix["vectors"] = summary.vectors
                    progress.set_postfix(postfix)
    except Exception as error:
        item_error = find_item_error(error)
        if item_error is None:
            raise
        stopped_by = item_error.message
    finally:
        context.raise_original_map_exception = raise_original
        progress.close()
    if stopped_by is not None:
        # Raised here, out of the `except`, and without the dataset: an ItemError raised there would hold Ray's
        # error as its context, and its traceback this run's dataset, whose model actors then keep their CPUs for
        # as long as anyone keeps the error (a test's pytest.raises, a notebook's last exception), and a resume
        # in the same process waits for those CPUs forever.
        del dataset
        raise ItemError(
            f"{stopped_by} -- stopped (--on-error raise); {len(summary.shards_written)} shard(s) were "
            "written and are kept. Fix or remove the item, or use --on-error skip, and re-run to resume."
        )


def _dataset(ray, shards: list, pending: list[int], settings: dict, options: dict):
    """The Ray Data pipeline: the pending shards' rows, the decoding tasks (`preprocess_mode="tasks"`), the actors."""
    import pyarrow as pa
    from ray import cloudpickle

    import gve_tools

    cloudpickle.register_pickle_by_value(gve_tools)  # the stages go to the workers by value: they need no copy of it
    checkpoint, revision, on_error = settings["checkpoint"], settings["revision"], options["on_error"]
    table = pa.Table.from_pylist(
        [
            {**row, "row": number * settings["shard_size"] + offset, "shard": number}
            for number in pending
            for offset, row in enumerate(shards[number])
        ],
        schema=pa.schema(  # the time range in seconds: numbers (rows with one failed here before as "not bytes")
            [(key, pa.float64() if key in TIME_RANGE else pa.string()) for key in MANIFEST_FIELDS]
            + [("row", pa.int64()), ("shard", pa.int64())]
        ),
    )
    batch = options["batch_size"]
    # Blocks cut here, in the driver: a repartition would need CPU tasks of its own.
    step = max(batch * 2, -(-len(table) // 256))
    dataset = ray.data.from_arrow([table.slice(start, step) for start in range(0, len(table), step)])
    if options["preprocess_mode"] == "tasks":
        dataset = dataset.map_batches(
            preprocess,
            batch_size=max(1, batch // 2),
            batch_format="pyarrow",
            fn_kwargs={
                "checkpoint": checkpoint,
                "revision": revision,
                "instruction": options["instruction"],
                "on_error": on_error,
                "segment_seconds": options["segment_seconds"],
                "video_reader": settings["video_reader"]["reader"],
            },
            # One CPU and room for a few decoded videos a task. Asking for memory also keeps Ray from
            # fusing this stage into the model actors (it fuses stages with equal resource requests).
            num_cpus=1,
            memory=DECODE_TASK_MEMORY,
        )
    return dataset.map_batches(
        Embedder,
        batch_size=batch * 2,
        batch_format="pyarrow",  # a window of encode's own pipeline; it batches within it by length and tokens
        fn_constructor_kwargs={
            "checkpoint": checkpoint,
            "revision": revision,
            "device": options["device"],
            "dtype": options["dtype"],
            "instruction": options["instruction"],
            "on_error": on_error,
            "batch_size": batch,
            "max_batch_tokens": options["max_batch_tokens"],
            "num_workers": options["num_workers"],
            "segment_seconds": options["segment_seconds"],
            "segment_stride": options["segment_stride"],
            "video_reader": settings["video_reader"]["reader"],
        },
        compute=ray.data.ActorPoolStrategy(size=options["concurrency"]),
        num_gpus=options["num_gpus"] or None,
        num_cpus=options["actor_cpus"],
    )
