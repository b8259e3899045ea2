"""Embed a corpus with GVE on Ray Data, into resumable Parquet shards, and optionally a FAISS index.

The same command runs on one machine (Ray in local mode, started here) and on a Ray cluster
(`--address`). Ray, FAISS and pyarrow are the `scale` extra: `pip install ".[scale]"`.

Manifest: JSONL (one object a line) or Parquet, one row per item:

    {"id": "clip-0001", "video": "clips/0001.mp4", "text": "optional caption"}
    {"id": "img-7", "image": "https://example.org/7.jpg", "instruction": "optional system instruction"}
    {"id": "talk-2@60", "video": "talks/2.mp4", "video_start": 60, "video_end": 90}

`id` is required and unique (a string or an integer; written as a string). Each row has at least
one of `text`, `image` and `video` (a path or an http(s) URL; relative paths are read from the
manifest's folder); together they make one composed input. `instruction` replaces the system
instruction for that row; `video_start` and `video_end` (seconds) embed a part of its video. Any other column is
refused.

Long videos as segments (`--segment-seconds S`, `--segment-stride T`): a row that is a video alone (no text, no
image, no `video_start`/`video_end` of its own) and longer than S seconds is embedded as windows of S seconds, T
apart (default: `model.encode_segments`' own stride), by `model.encode_segments` in the model actor, which reads
the video once and holds a few windows' frames at a time: one shard row and one index vector per segment, with its
`start` and `end`. Its windows are `processing_gve.segment_spans(duration, S, T)`, and each window's vector is that
of `{"video", "video_start", "video_end"}` embedded alone. Shorter videos, texts, images, composed rows and rows
with their own range stay one vector each, embedded as without segments. A bad long video is reported like any
bad row (by id and manifest row), never written in part. `search_index.py` prints each hit's time range, and
`--by-video` scores each video by its best segment.

Pipeline (Ray Data): Ray Data reads the manifest, which is validated and cut into shards of
`--shard-size` rows in manifest order. CPU tasks read, decode and preprocess each item with the
checkpoint's processor (`GVEProcessor.load` + `featurize`, as the encode pipeline's own workers do);
`map_batches` actors (`--concurrency` of them, `--num-gpus` each) load the model once and run
`model.encode`, the package's batched path (length-sorted batches within `--max-batch-tokens`).
`--preprocess actor` instead leaves the decoding to `model.encode`'s worker threads inside each actor.

Output folder:

    settings.json                  checkpoint, revision and embedding settings of the run (with --segment-seconds,
                                   `segments`: {"seconds", "stride"}, stride null for the model's default)
    embeddings/part-00000.parquet  `id`, `start`, `end` (float64 seconds) and `embedding` (float32, or float16 with
                                   --float16), the settings in the file metadata (key b"gve"), manifest order:
                                   one row per item, or one per segment (in time order) of a video embedded as
                                   segments. `start` and `end` are null for an item embedded whole (a text, an
                                   image, a composed row, a whole video); a segment has its window; a row with its
                                   own range has it (a missing start is 0.0, a missing end stays null: to the end)
    errors/part-00000.jsonl        the shard's bad items (--on-error skip), {"id", "row", "error"}
    errors.jsonl                   all bad items, gathered at the end of every run
    index.faiss, index.json        with --index: FAISS index (one vector per shard row) and its description (ids,
                                   their spans when any has one, vector format)
    vectors.npy                    with --vectors int8 or binary: the float16 vectors a search re-scores with

Resume: shard k always holds manifest rows [k * shard_size, (k + 1) * shard_size). A shard is
written to a hidden temporary file, flushed to disk and renamed, so a shard file is complete or
absent, even after a crash or a power cut. A re-run skips every finished shard (after checking its
rows' digest against the manifest) and writes no duplicate id; a run whose settings differ from the
folder's is refused (segment settings included), and so is a damaged shard (cut short or overwritten, e.g. by a
disk fault or an interrupted copy): the error names it; delete it and re-run to re-embed its rows. `--max-shards`
stops after that many new shards. A video embedded as segments is one manifest row: its shard is written once all
of its segments are back.

Bad items follow the encode pipeline's policy: `--on-error raise` (default) stops at the first item
that cannot be embedded, naming its id; `--on-error skip` leaves it out of the shards and lists it
in the errors files. No placeholder vector is ever written.

    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb --index
    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb \\
        --address auto --concurrency 8 --num-gpus 1 --device cuda --dtype bfloat16 --on-error skip --index
    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-7B --out corpus-emb --index \\
        --vectors binary --rescore 100    # 32x smaller index, its top 100 re-scored by the float vectors
    python scripts/search_index.py corpus-emb --text "a red square moving right" --k 5
    python scripts/embed_corpus.py talks.jsonl --checkpoint Alibaba-NLP/GVE-3B --out talks-emb --index \\
        --segment-seconds 8 --segment-stride 4    # long videos as overlapping 8-second segments
    python scripts/search_index.py talks-emb --text "the speaker draws a graph" --by-video --k 5

Modules:
    manifest     reading and checking a manifest (`read_manifest`, `validate_manifest`), `shard_digest`; `ManifestError`
    settings     what a run's embeddings depend on (`run_settings`, `check_segments`) and the folder's `settings.json`
    shards       the output folder's files: durable writes, `write_shard` (`item_span`), `read_corpus` (ids, spans,
                 vectors), `read_embeddings`; `DamagedShard`
    cluster      Ray itself: `ensure_ray`, the plan's CPUs (`PlanError`), the exceptions Ray wraps
    stages       the Ray Data stages: `preprocess` (CPU tasks) and `Embedder` (model actors; `wants_segments`);
                 `ItemError`
    pipeline     the run: `embed_corpus` and its `Summary`
    index        the FAISS index (float32, int8 or binary: `gve_tools.vectors`): `build_index`, `load_index`, `search`
                 (`Hit`s: id, score, start, end; `by_video`: each id by its best segment)
    samples      a synthetic corpus and its manifest (`make_sample_manifest`)
    cli          the `embed_corpus` command (scripts/embed_corpus.py)
    search_cli   the `search_index` command (scripts/search_index.py)
    samples_cli  the `make_sample_manifest` command (scripts/make_sample_manifest.py)
"""

from gve_tools.corpus.cluster import PlanError, ensure_ray
from gve_tools.corpus.index import (
    DEFAULT_RESCORE,
    EXACT_INDEX_LIMIT,
    Hit,
    build_index,
    load_index,
    load_query_model,
    search,
)
from gve_tools.corpus.manifest import (
    CONTENT_FIELDS,
    MANIFEST_FIELDS,
    ManifestError,
    read_manifest,
    shard_digest,
    validate_manifest,
)
from gve_tools.corpus.pipeline import DECODE_TASK_MEMORY, Summary, embed_corpus
from gve_tools.corpus.samples import make_sample_manifest
from gve_tools.corpus.settings import DEFAULT_SHARD_SIZE, check_segments, resolve_revision, run_settings
from gve_tools.corpus.shards import (
    METADATA_KEY,
    CorpusVectors,
    DamagedShard,
    OutputMismatch,
    errors_path,
    gather_errors,
    item_span,
    read_corpus,
    read_embeddings,
    shard_metadata,
    shard_path,
    write_shard,
)
from gve_tools.corpus.stages import Embedder, ItemError, preprocess, wants_segments

__all__ = [
    "CONTENT_FIELDS",
    "DECODE_TASK_MEMORY",
    "DEFAULT_RESCORE",
    "DEFAULT_SHARD_SIZE",
    "EXACT_INDEX_LIMIT",
    "MANIFEST_FIELDS",
    "METADATA_KEY",
    "CorpusVectors",
    "DamagedShard",
    "Embedder",
    "Hit",
    "ItemError",
    "ManifestError",
    "OutputMismatch",
    "PlanError",
    "Summary",
    "build_index",
    "check_segments",
    "embed_corpus",
    "ensure_ray",
    "errors_path",
    "gather_errors",
    "item_span",
    "load_index",
    "load_query_model",
    "make_sample_manifest",
    "preprocess",
    "read_corpus",
    "read_embeddings",
    "read_manifest",
    "resolve_revision",
    "run_settings",
    "search",
    "shard_digest",
    "shard_metadata",
    "shard_path",
    "validate_manifest",
    "wants_segments",
    "write_shard",
]
