"""The Ray Data stages: `preprocess` (CPU tasks that read, decode and featurize items with the checkpoint's
processor) and `Embedder` (the model actors, which embed with `model.encode`), and `ItemError`, what they raise for
an item that cannot be embedded.

Each stage takes and returns pyarrow batches of manifest rows with their `row` (0-based manifest row) and `shard`,
and adds its own columns: `features` and `error` (preprocess), `embedding` and `error` (Embedder). The pipeline
ships this package's code to the workers by value, so they need no copy of the tooling.
"""

import pickle
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from gve_tools.corpus.cluster import causes
from gve_tools.corpus.manifest import CONTENT_FIELDS, TIME_RANGE
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


def preprocess(
    batch,
    checkpoint: str,
    revision: str | None,
    instruction: str | None,
    on_error: str,
) -> dict[str, Any]:
    """CPU task: read, decode and featurize items with the checkpoint's processor.

    Adds `features` (the pickled prompt and model inputs, plain numpy) and `error` (why the item
    cannot be embedded, with `on_error="skip"`). With `on_error="raise"` a bad item raises `ItemError`.
    """
    processor = _processor(checkpoint, revision)
    rows = _rows(batch)
    features, errors = [], []
    for row in rows:
        try:
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


class Embedder:
    """`map_batches` actor: loads the model once, then embeds batches with `model.encode`."""

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
    ):
        self.model = load_model(checkpoint, revision=revision, device=device, dtype=dtype)
        self.processor = self.model.processor
        self.item_class = sys.modules[type(self.processor).__module__].GVEItem
        self.instruction, self.on_error = instruction, on_error
        self.options = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "show_progress_bar": False}
        self.num_workers = num_workers

    def __call__(self, batch):
        rows = _rows(batch)
        if "features" in batch.column_names:  # preprocessed by the CPU tasks
            vectors, errors = self._embed_preprocessed(rows)
        else:  # decoded here, by encode's own worker threads
            vectors, errors = self._embed(rows)
        embeddings = [vectors[row["id"]].astype(np.float32).tobytes() if row["id"] in vectors else b"" for row in rows]
        return _table(rows, embedding=(embeddings, "binary"), error=([errors.get(row["id"]) for row in rows], "string"))

    def _embed_preprocessed(self, rows: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        inputs = [row for row in rows if row["error"] is None]
        items = [self._item(row) for row in inputs]
        errors = {row["id"]: row["error"] for row in rows if row["error"] is not None}
        self.model.processor = _Preloaded(self.processor, self.item_class)
        try:
            result = self.model.encode(items, self.instruction, on_error="raise", num_workers=1, **self.options)
        finally:
            self.model.processor = self.processor
        return dict(zip((row["id"] for row in inputs), result.numpy(), strict=True)), errors

    def _embed(self, rows: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        vectors, errors = {}, {}
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
                    errors[row["id"]] = item_message(row, output)
                else:
                    vectors[row["id"]] = output.numpy()
        except ValueError as error:  # the call's own settings
            raise ItemError(str(error)) from None
        if errors and self.on_error == "raise":
            raise ItemError(next(iter(errors.values())))
        return vectors, errors

    def _item(self, row: dict[str, Any]):
        import torch
        from transformers.feature_extraction_utils import BatchFeature

        payload = pickle.loads(row["features"])
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


def _table(rows: Sequence[dict[str, Any]], **columns: tuple[list, str]):
    """A stage's output: the rows' `row`, `shard` and `id`, plus the given (values, pyarrow type) columns."""
    import pyarrow as pa

    data = {
        "row": pa.array([row["row"] for row in rows], pa.int64()),
        "shard": pa.array([row["shard"] for row in rows], pa.int64()),
        "id": pa.array([row["id"] for row in rows], pa.string()),
    }
    for name, (values, kind) in columns.items():
        data[name] = pa.array(values, getattr(pa, kind)())
    return pa.table(data)


def _numpy(value: Any) -> Any:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
