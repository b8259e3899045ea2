"""The embedding cache: one .npy per distinct input, in a folder per checkpoint and embedding settings.

The folder's key is the checkpoint's identity (`gve_tools.identity.checkpoint_identity`: the Hub commit, or the
names, sizes and modification times of a folder's files) with the embedding settings (dtype, device type, the
config's embedding settings); an input's key holds its fields, its effective instruction and, for each media
file, its resolved path, size and modification time. `load_config` reads the settings without the weights;
`embed_all` and `embed_segments` (videos as time windows, for moments and segment search) compute only what the
cache lacks, and load the model only then.
"""

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.evaluation.format import MEDIA_FIELDS, Dataset, EvaluationError, Item
from gve_tools.evaluation.moments import Segments
from gve_tools.identity import digest
from gve_tools.models import ModelLoadError
from gve_tools.text import first_line

DEFAULT_CACHE_DIR = Path("build/eval-cache")
CACHE_VERSION = 1


def load_config(model_id: str, revision: str | None) -> Any:
    """The checkpoint's GVEConfig (its embedding settings, as the processor reads them), without the weights.

    Raises `ModelLoadError`, worded as `gve_tools.models.load_model` words it, when the checkpoint cannot be loaded.
    """
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_id, trust_remote_code=True, revision=revision)
    except (OSError, ValueError) as error:  # not found, not in the cache while offline, no access, not a model
        raise ModelLoadError(f"cannot load the model {model_id!r}: {first_line(error)}") from error


def encoder_input(item: Item, instruction: str) -> dict[str, str]:
    """The dict `model.encode` takes for an item, with its effective instruction."""
    return {**item.fields, "instruction": item.instruction if item.instruction is not None else instruction}


def input_key(payload: dict[str, str]) -> str:
    """The cache key of an encoder input: its fields and instruction, and each media file's path, size and mtime."""
    described = dict(payload)
    for name in MEDIA_FIELDS:
        if name in payload:
            stat = os.stat(payload[name])
            described[name] = [payload[name], stat.st_size, stat.st_mtime_ns]
    return digest(described)


Requests = dict[str, tuple[dict[str, str], list[str]]]  # input key -> (encoder input, the items' origins)


@dataclass(frozen=True)
class Segmenting:
    """How videos are embedded as segments (`model.encode_segments`): window and stride in seconds, and whether
    every video document is (`videos`), or only those of moment datasets."""

    window: float
    stride: float
    videos: bool = False

    def applies(self, dataset: Dataset, item: Item) -> bool:
        """Whether the document is embedded as segments: a video alone, in a moment dataset or with `videos`."""
        return set(item.fields) == {"video"} and (self.videos or dataset.moments is not None)

    def key(self, payload: dict[str, str]) -> str:
        """The cache key of a video's segments: its input's key with the window and stride."""
        return digest({"segments": input_key(payload), "window": self.window, "stride": self.stride})


def dataset_inputs(
    datasets: list[Dataset],
    query_instruction: str,
    document_instruction: str,
    segmenting: Segmenting | None = None,
) -> tuple[Requests, Requests, dict[str, tuple[list[str], dict[str, str]]]]:
    """Every input of the datasets, keyed: (whole inputs, videos to embed as segments, {dataset name: (its queries'
    keys, {doc id: key})}).

    The instructions are the defaults of datasets that set none. Identical inputs (a corpus shared by datasets,
    with the same instruction) have one key, so they are embedded once; with local ranking, only the documents
    that are some query's candidates are needed. `segmenting` says which documents are embedded as segments.
    """
    requests: Requests = {}
    segment_requests: Requests = {}
    keys: dict[str, tuple[list[str], dict[str, str]]] = {}
    for dataset in datasets:
        if dataset.ranking == "local":
            needed = {doc for docs in dataset.candidates.values() for doc in docs}
            documents = [item for item in dataset.corpus if item.id in needed]
        else:
            documents = dataset.corpus
        for_queries = query_instruction if dataset.query_instruction is None else dataset.query_instruction
        for_documents = document_instruction if dataset.document_instruction is None else dataset.document_instruction
        query_keys, doc_keys = [], {}
        if dataset.moments is not None and segmenting is None:
            raise EvaluationError(f"{dataset.name}: a moment dataset needs its videos embedded as segments")
        for items, instruction, sink in ((dataset.queries, for_queries, None), (documents, for_documents, doc_keys)):
            for item in items:
                payload = encoder_input(item, instruction)
                if sink is not None and segmenting is not None and segmenting.applies(dataset, item):
                    key, pending = segmenting.key(payload), segment_requests
                else:
                    key, pending = input_key(payload), requests
                pending.setdefault(key, (payload, []))[1].append(f"{dataset.name}: {item.origin} (id {item.id!r})")
                if sink is None:
                    query_keys.append(key)
                else:
                    sink[item.id] = key
        keys[dataset.name] = (query_keys, doc_keys)
    return requests, segment_requests, keys


class EmbeddingCache:
    """One float32 .npy per input key under `folder` (= cache_dir/<checkpoint and settings key>); None: no cache."""

    def __init__(self, folder: Path | None, description: dict[str, Any] | None = None):
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            if description is not None and not (folder / "key.json").exists():
                (folder / "key.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")

    @classmethod
    def for_checkpoint(
        cls, cache_dir: str | Path | None, identity: dict[str, str], settings: dict[str, Any]
    ) -> "EmbeddingCache":
        """The cache of a checkpoint (its `checkpoint_identity`) and settings under `cache_dir`; None: no cache.

        Its key.json tells what the folder holds.
        """
        folder = None
        if cache_dir is not None:
            folder = Path(cache_dir) / digest({"v": CACHE_VERSION, "content": identity["content"], **settings})[:24]
        return cls(folder, {"checkpoint": identity, "settings": settings, "version": CACHE_VERSION})

    def _path(self, key: str, suffix: str) -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def get(self, key: str, segments: bool = False) -> "np.ndarray | Segments | None":
        """The cached embedding of `key` ([D]), or its Segments with `segments`; None when absent."""
        path = None if self.folder is None else self._path(key, ".npz" if segments else ".npy")
        if path is None or not path.is_file():
            return None
        try:
            if not segments:
                return np.load(path)
            with np.load(path) as stored:
                return Segments(stored["spans"], stored["embeddings"])
        except (OSError, ValueError, KeyError):  # a torn or foreign file: recompute it
            return None

    def put(self, key: str, value: "np.ndarray | Segments") -> None:
        """Store an embedding, or a video's Segments, atomically."""
        if self.folder is None:
            return
        path = self._path(key, ".npz" if isinstance(value, Segments) else ".npy")
        path.parent.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            if isinstance(value, Segments):
                np.savez(file, spans=value.spans, embeddings=value.embeddings)
            else:
                np.save(file, np.asarray(value, dtype=np.float32))
        os.replace(temporary, path)


def embed_all(
    load: Callable[[], Any], requests: Requests, cache: EmbeddingCache, batch_size: int
) -> dict[str, np.ndarray]:
    """Embeddings of {key: (encoder input, origins)}: from the cache, else by the model (then cached as they come).

    `load()` gives the model; it is called only when some embedding is not in the cache.

    Inputs the model cannot embed are all reported at once, with their file and line.
    """
    out, missing = _cached(requests, cache)
    print(f"embeddings: {len(out)} cached, {len(missing)} to compute", flush=True)
    if not missing:
        return out
    failures = []
    stream = load().encode_stream(
        [requests[key][0] for key in missing], batch_size=batch_size, show_progress_bar=True, on_error="skip"
    )
    for index, output in stream:
        key = missing[index]
        if isinstance(output, Exception):  # a GVEInputError: its reason, without the `inputs[i]: ` label
            failures.append(f"{_origins(requests[key][1])}: {output.reason}")
            continue
        embedding = output.float().numpy()
        cache.put(key, embedding)
        out[key] = embedding
    _raise_failures(failures)
    return out


def embed_segments(
    load: Callable[[], Any], requests: Requests, cache: EmbeddingCache, segmenting: Segmenting, batch_size: int
) -> dict[str, Segments]:
    """Each video's Segments (`model.encode_segments` with the window and stride of `segmenting`), of {key: (encoder
    input, origins)}: from the cache, else by the model, loaded only then. Failures are reported as `embed_all`'s."""
    from tqdm.auto import tqdm

    out, missing = _cached(requests, cache, segments=True)
    print(f"videos as segments: {len(out)} cached, {len(missing)} to compute", flush=True)
    if not missing:
        return out
    model = load()
    failures = []
    for key in tqdm(missing, desc="Embedding segments", unit="video"):
        payload, origins = requests[key]
        try:
            found = model.encode_segments(
                payload["video"],
                segmenting.window,
                segmenting.stride,
                payload["instruction"],
                batch_size=batch_size,
                show_progress_bar=False,
            )
        except ValueError as error:  # a GVEInputError: its reason, without the `video: ` label
            failures.append(f"{_origins(origins)}: {getattr(error, 'reason', error)}")
            continue
        out[key] = Segments(np.array(found.spans), found.embeddings.float().numpy())
        cache.put(key, out[key])
    _raise_failures(failures)
    return out


def _cached(requests: Requests, cache: EmbeddingCache, segments: bool = False) -> tuple[dict[str, Any], list[str]]:
    """({key: what the cache holds}, the keys it lacks)."""
    out, missing = {}, []
    for key in requests:
        found = cache.get(key, segments)
        if found is None:
            missing.append(key)
        else:
            out[key] = found
    return out, missing


def _origins(origins: list[str]) -> str:
    """Where an input comes from: its first origin, and a few of the others."""
    also = f" (also {'; '.join(origins[1:3])}{', ...' if len(origins) > 3 else ''})" if len(origins) > 1 else ""
    return origins[0] + also


def _raise_failures(failures: list[str]) -> None:
    if failures:
        more = f"\n... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise EvaluationError(f"{len(failures)} input(s) could not be embedded:\n" + "\n".join(failures[:10]) + more)
