"""The Ray Data stages: `preprocess` (CPU tasks that read, decode and featurize items with the checkpoint's
processor) and `Embedder` (the model actors, which embed with `model.encode`, and long videos with
`model.encode_segments`), and `ItemError`, what they raise for an item that cannot be embedded.

Each stage takes and returns pyarrow batches of manifest rows with their `row` (0-based manifest row) and `shard`,
and adds its own columns: `features` and `error` (preprocess), `embedding`, `starts`, `ends` and `error`
(Embedder). A row is still one output row when it is embedded as segments: its `embedding` holds the segments'
vectors one after the other, `starts` and `ends` their spans (None for a row embedded whole). The pipeline ships
this package's code to the workers by value, so they need no copy of the tooling.

Segments (`segment_seconds`): a row that is a video alone (no text, no image, no time range of its own) longer
than `segment_seconds` is embedded as windows of that length (`segment_stride` apart; None: the model's default)
by `model.encode_segments` in the model actor, which reads the video once and holds a few windows' frames at a
time: the decoding task only probes a local file's length (`wants_segments`) and passes the row on. A URL is
passed on unprobed (the actor downloads it once); one no longer than a window comes back as one span, the whole
video, and is kept as a whole row.
"""

import os
import pickle
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from gve_tools.corpus.cluster import causes
from gve_tools.corpus.manifest import CONTENT_FIELDS, TIME_RANGE, URL_PREFIXES
from gve_tools.errors import GVEToolsError
from gve_tools.models import load_model


class ItemError(GVEToolsError, ValueError):
    """An item that cannot be embedded (with `on_error="raise"`); the message names its id and row.

    The message is also `message`, and is all that is pickled: Ray appends its retry advice to the text of an
    exception on its way out of a worker.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __reduce__(self):
        return type(self), (self.message,)


def find_item_error(error: BaseException) -> ItemError | None:
    """The worker's ItemError that a Ray failure wraps, if any (the innermost, as the worker raised it)."""
    found = [inner for inner in causes(error) if isinstance(inner, ItemError)]
    return found[-1] if found else None


def item_label(row: dict[str, Any]) -> str:
    """An item as messages name it: its id and manifest row (1-based)."""
    return f"id {row['id']!r} (manifest row {row['row'] + 1})"


def item_message(row: dict[str, Any], error: Exception) -> str:
    """Why an item cannot be embedded, named by `item_label`: the reason of a `GVEInputError`, without its label."""
    return f"{item_label(row)}: {getattr(error, 'reason', error)}"


_PROCESSORS: dict[tuple, Any] = {}  # per worker process: Ray reuses task workers, so each loads the processor once


def _processor(checkpoint: str, revision: str | None):
    key = (checkpoint, revision)
    if key not in _PROCESSORS:
        from transformers import AutoProcessor

        _PROCESSORS[key] = AutoProcessor.from_pretrained(checkpoint, trust_remote_code=True, revision=revision)
    return _PROCESSORS[key]


def _encode_input(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in (*CONTENT_FIELDS, "instruction", *TIME_RANGE) if row.get(key) is not None}


def wants_segments(row: dict[str, Any], segment_seconds: float | None, processor) -> bool:
    """Whether a row is embedded as segments: with `segment_seconds`, a video alone (no text, no image, no
    `video_start`/`video_end` of its own) that is longer than `segment_seconds`.

    A local file's length is probed as the processor counts it (`processing_gve.probe_video`: its header and
    packet index, nothing decoded). A URL is not probed here (the model actor's `encode_segments` downloads it
    once, and gives a video no longer than a window back whole). A local file that cannot be probed is embedded
    whole, so that reading it reports why, as for any row.
    """
    if segment_seconds is None or not isinstance(row.get("video"), str) or row.get("text") or row.get("image"):
        return False
    if any(row.get(key) is not None for key in TIME_RANGE):
        return False
    video = row["video"]
    if video.startswith(URL_PREFIXES) or video[:5].lower() == "data:":
        return True
    processing = sys.modules[type(processor).__module__]
    try:
        duration = processing.probe_video(video, processor.decode_budget().limits).duration
    except Exception:  # noqa: BLE001 - any reader's failure: processor.load reports it, as for a whole row
        return False
    return duration > segment_seconds


def preprocess(
    batch,
    checkpoint: str,
    revision: str | None,
    instruction: str | None,
    on_error: str,
    segment_seconds: float | None = None,
    video_reader: str | None = None,
) -> dict[str, Any]:
    """CPU task: read, decode and featurize items with the checkpoint's processor (and `video_reader`, see
    `use_video_reader`).

    Adds `features` (the pickled prompt and model inputs, plain numpy) and `error` (why the item
    cannot be embedded, with `on_error="skip"`). With `on_error="raise"` a bad item raises `ItemError`.
    A row to embed as segments (`wants_segments`) is not decoded here: its `features` are the pickled
    `{"segments": {"video", "instruction"}}` that the model actor embeds with `encode_segments`.
    """
    processor = _processor(checkpoint, revision)
    use_video_reader(processor, video_reader)
    rows = _rows(batch)
    features, errors = [], []
    for row in rows:
        try:
            if wants_segments(row, segment_seconds, processor):
                payload = {"segments": {"video": row["video"], "instruction": row.get("instruction")}}
                features.append(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
                errors.append(None)
                continue
            loaded = processor.load(_encode_input(row), instruction, label=item_label(row))
            model_inputs = processor.featurize(loaded, release_media=True)
            payload = {"prompt": loaded.prompt, "max_length": loaded.features_max_length}
            payload["features"] = {key: _numpy(value) for key, value in model_inputs.items()}
            features.append(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
            errors.append(None)
        except ValueError as error:  # GVEInputError and bad controls, as in the encode pipeline
            if on_error == "raise":
                raise ItemError(item_message(row, error)) from None
            features.append(b"")
            errors.append(item_message(row, error))
    return _table(rows, features=(features, "binary"), error=(errors, "string"))


def use_video_reader(processor, reader: str | None) -> None:
    """Read videos with `reader` in this worker: the one the run's settings record (the driver's choice), whatever
    the worker's own environment would choose, so that no shard mixes embeddings of two readers."""
    if reader is None:
        return
    processing = sys.modules[type(processor).__module__]
    if os.environ.get(processing.VIDEO_READER_VARIABLE) != reader:
        os.environ[processing.VIDEO_READER_VARIABLE] = reader
        processing.video_reader.cache_clear()
    processing.video_reader()  # a reader that cannot work here fails now, naming why


class Embedder:
    """`map_batches` actor: loads the model once, then embeds batches with `model.encode` (and the rows to embed as
    segments with `model.encode_segments`, `segment_seconds` long and `segment_stride` apart)."""

    def __init__(
        self,
        checkpoint: str,
        revision: str | None,
        device: str,
        dtype: str,
        instruction: str | None,
        on_error: str,
        batch_size: int,
        max_batch_tokens: int,
        num_workers: int | None,
        segment_seconds: float | None = None,
        segment_stride: float | None = None,
        video_reader: str | None = None,
    ):
        self.model = load_model(checkpoint, revision=revision, device=device, dtype=dtype)
        self.processor = self.model.processor
        use_video_reader(self.processor, video_reader)
        self.item_class = sys.modules[type(self.processor).__module__].GVEItem
        self.instruction, self.on_error = instruction, on_error
        self.options = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "show_progress_bar": False}
        self.num_workers = num_workers
        self.segment_seconds, self.segment_stride = segment_seconds, segment_stride

    def __call__(self, batch):
        import pyarrow as pa

        rows = _rows(batch)
        vectors: dict[str, np.ndarray] = {}  # id -> [n, D]: one row, or one per segment
        spans: dict[str, list[tuple[float, float]]] = {}  # id -> its segments' (start, end), for segmented rows
        errors: dict[str, str] = {}
        if "features" in batch.column_names:  # preprocessed by the CPU tasks
            self._embed_preprocessed(rows, vectors, spans, errors)
        else:  # decoded here, by encode's own worker threads
            self._embed(rows, vectors, spans, errors)
        embeddings = [vectors[row["id"]].astype(np.float32).tobytes() if row["id"] in vectors else b"" for row in rows]
        found = [spans.get(row["id"]) for row in rows]
        return _table(
            rows,
            embedding=(embeddings, pa.binary()),
            starts=([[s for s, _ in part] if part else None for part in found], pa.list_(pa.float64())),
            ends=([[e for _, e in part] if part else None for part in found], pa.list_(pa.float64())),
            error=([errors.get(row["id"]) for row in rows], pa.string()),
        )

    def _embed_preprocessed(self, rows: list[dict[str, Any]], vectors: dict, spans: dict, errors: dict) -> None:
        errors.update({row["id"]: row["error"] for row in rows if row["error"] is not None})
        inputs = [(row, pickle.loads(row["features"])) for row in rows if row["error"] is None]
        whole = [(row, payload) for row, payload in inputs if "segments" not in payload]
        if whole:
            items = [self._item(row, payload) for row, payload in whole]
            self.model.processor = _Preloaded(self.processor, self.item_class)
            try:
                result = self.model.encode(items, self.instruction, on_error="raise", num_workers=1, **self.options)
            finally:
                self.model.processor = self.processor
            vectors.update((row["id"], vector[None]) for (row, _), vector in zip(whole, result.numpy(), strict=True))
        for row, payload in inputs:
            if "segments" in payload:
                self._embed_segments(row, payload["segments"], vectors, spans, errors)

    def _embed(self, rows: list[dict[str, Any]], vectors: dict, spans: dict, errors: dict) -> None:
        segmented = [wants_segments(row, self.segment_seconds, self.processor) for row in rows]
        whole = [row for row, flag in zip(rows, segmented, strict=True) if not flag]
        self._embed_whole(whole, vectors, errors)
        for row, flag in zip(rows, segmented, strict=True):
            if flag:
                self._embed_segments(
                    row, {"video": row["video"], "instruction": row.get("instruction")}, vectors, spans, errors
                )

    def _embed_whole(self, rows: list[dict[str, Any]], vectors: dict, errors: dict) -> None:
        if not rows:
            return
        found = {}
        stream = self.model.encode_stream(
            [_encode_input(row) for row in rows],
            self.instruction,
            on_error="skip",
            num_workers=self.num_workers,
            **self.options,
        )
        try:
            for position, output in stream:  # GVEInputErrors come as outputs, with the input's position
                row = rows[position]
                if isinstance(output, Exception):
                    found[row["id"]] = item_message(row, output)
                else:
                    vectors[row["id"]] = output.numpy()[None]
        except ValueError as error:  # the call's own settings
            raise ItemError(str(error)) from None
        if found and self.on_error == "raise":
            raise ItemError(next(iter(found.values())))
        errors.update(found)

    def _embed_segments(self, row: dict[str, Any], source: dict[str, Any], vectors: dict, spans: dict, errors: dict):
        """One video as segments (`model.encode_segments`): every segment's vector, or the row's error. A video no
        longer than a window comes back as one span, the whole video, and is kept as a whole row."""
        try:
            segments = self.model.encode_segments(
                source["video"],
                self.segment_seconds,
                self.segment_stride,
                self.instruction if source["instruction"] is None else source["instruction"],
                **self.options,
            )
        except ValueError as error:  # GVEInputError: the video cannot be read, or a window cannot be embedded
            if self.on_error == "raise":
                raise ItemError(item_message(row, error)) from None
            errors[row["id"]] = item_message(row, error)
            return
        vectors[row["id"]] = segments.embeddings.numpy()
        if len(segments.spans) > 1:
            spans[row["id"]] = [(float(start), float(end)) for start, end in segments.spans]

    def _item(self, row: dict[str, Any], payload: dict[str, Any]):
        import torch
        from transformers.feature_extraction_utils import BatchFeature

        features = BatchFeature({key: torch.from_numpy(value) for key, value in payload["features"].items()})
        return self.item_class(
            label=item_label(row),
            prompt=payload["prompt"],
            features=features,
            features_max_length=payload["max_length"],
        )


class _Preloaded:
    """The checkpoint's processor, for items already read and featurized by the CPU tasks.

    `model.encode` asks its processor to `load` each input; items that are already loaded pass
    through (their cached features are reused by `featurize`), everything else is the real processor.
    """

    def __init__(self, processor, item_class: type):
        self._processor, self._item_class = processor, item_class

    def load(self, item, *args, **kwargs):
        return item if isinstance(item, self._item_class) else self._processor.load(item, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._processor, name)


def _rows(batch) -> list[dict[str, Any]]:
    """A pyarrow batch as row dicts (None stays None, unlike numpy or pandas batches)."""
    return batch.to_pylist()


def _table(rows: Sequence[dict[str, Any]], **columns: tuple[list, Any]):
    """A stage's output: the rows' `row`, `shard` and `id`, plus the given (values, pyarrow type) columns (a type,
    or the name of a pyarrow type without arguments)."""
    import pyarrow as pa

    data = {
        "row": pa.array([row["row"] for row in rows], pa.int64()),
        "shard": pa.array([row["shard"] for row in rows], pa.int64()),
        "id": pa.array([row["id"] for row in rows], pa.string()),
    }
    for name, (values, kind) in columns.items():
        data[name] = pa.array(values, kind if isinstance(kind, pa.DataType) else getattr(pa, kind)())
    return pa.table(data)


def _numpy(value: Any) -> Any:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
