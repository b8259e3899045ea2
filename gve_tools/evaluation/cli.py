"""Evaluate a GVE checkpoint on a folder of retrieval datasets, UVRB-style: metrics per dataset and per ability.

A benchmark is a folder of datasets, one subfolder each (any folder with a `dataset.json`; an optional
`benchmark.json` at the top names the benchmark: {"name", "full_name", "dataset", "source_url"}, all optional).
A dataset folder holds:

- `dataset.json`: {"name": "TXT-synthetic", "abilities": ["TXT", "CG"], "ranking": "global" | "local",
  "metric": "R@1", "query_instruction": str | null, "document_instruction": str | null, "description": str}.
  `name`, `abilities` and `ranking` are required. `metric` is the dataset's main metric (default R@1), one of
  R@1, R@5, R@10, nDCG@5, nDCG@10, MRR. A null or absent `query_instruction` means GVE's QUERY_INSTRUCTION
  ("Find the video that matches the query."); a null or absent `document_instruction` means the checkpoint's
  default instruction (config `default_instruction`).
- `queries.jsonl` and `corpus.jsonl`: one item a line, {"id": str, "text": str, "image": path, "video": path,
  "instruction": str, "meta": any}. `id` and at least one of text/image/video are required; the item's modality
  is the set of those present (text, image, video, text+image, text+video, ...). `instruction` overrides the
  dataset's instruction for this item; `meta` is ignored. Media paths are relative to the dataset folder
  (absolute paths are allowed). Ids are unique within their file. Blank lines are skipped.
- `qrels.jsonl`: {"query_id": str, "doc_id": str, "relevance": int >= 0}. Relevance is graded: every value >= 1
  is relevant (R@k, MRR) and is its gain in nDCG; 0, or no line for the pair, is not relevant. Each query needs
  at least one relevant document; a pair appears once.
- `candidates.jsonl`, only with "ranking": "local": {"query_id": str, "doc_ids": [str, ...]}, one line per
  query. The query is ranked against its own candidates only (MMEB-style), which must include its relevant
  documents. With "global" ranking every query is ranked against the whole corpus.

Moment datasets (temporal grounding, MMEB-V2's moment retrieval): qrels rows carry the relevant span,
{"query_id", "doc_id", "relevance", "start": seconds, "end": seconds} (all rows of the dataset, or none; a video
may have several spans for one query, a line each). Every ranked document must be a video alone: it is embedded
as segments (`model.encode_segments`: windows of --segment-window seconds every --segment-stride seconds, by
default the model's, `processing_gve.segment_settings`), and each query's segments are ranked - those of its
candidate videos with "local" ranking (the segments of one video, when the candidate is the video that holds
the moment), of every corpus video with "global" (video corpus moment retrieval). The top segment's temporal IoU
(intersection over union of the two time spans) with a relevant span of the same video (0 in another video)
gives R@1,IoU=0.5 and R@1,IoU=0.7 (1 when it is at least 0.5 or 0.7) and mIoU (its mean); their chance is the
same for a segment drawn uniformly from the ranked ones. Equal scores rank the lower IoU first. The main metric
defaults to R@1,IoU=0.5; the document metrics above are reported too, each video scored by its best segment.

Everything is checked before the model loads; an error names the file, the line and the field.

Metrics (numpy, per query, then averaged over the dataset's queries): R@1, R@5, R@10 with UVRB's convention,
hit@k (1 when any relevant document is in the top k); nDCG@5 and nDCG@10 with trec_eval's convention (linear
gains = relevance grades, discount 1/log2(rank + 1), ideal ranking from the query's qrels); MRR (1/rank of the
first relevant document). MMEB-V2's headline metrics are hit@1 (= R@1) and nDCG@5. A score is the dot product
of the L2-normalised embeddings. Ties are broken pessimistically and deterministically: among equal scores,
non-relevant documents rank before relevant ones, then lower grades before higher ones, then file order
(corpus.jsonl, or the candidate list) - so a model that gives everything one score gets no credit.

Per ability: the mean of the main metric over the datasets tagged with it. AVG: the mean over datasets of their
main metric (UVRB's overall average). Chance is the exact expected value of each metric under a uniformly random
ranking of the query's candidates (hit@k: 1 - C(n-r, k)/C(n, k) for n candidates of which r are relevant; MRR:
sum over i of P(first relevant at rank i)/i; nDCG@k: the mean gain times the first k discounts, over the ideal
DCG), averaged like the scores.

--vectors, --rescore and --truncate-dim score as a compact corpus index would (`gve_tools.vectors`, the code
`embed_corpus.py --index` uses): int8 trains FAISS's scalar quantizer on each dataset's ranked documents and scores
float queries against the decoded codes; binary scores 1 - 2*hamming/D, which ties often (and ties count against
the relevant documents, as above); --rescore N ranks the top N again by the float vectors. They change no
embedding, so the cache serves them all.

--segments scores every video document (a video alone) of every dataset by its best segment, as a corpus indexed
with `embed_corpus.py --segment-seconds` would: the partially relevant (PR) and long-context (LC) abilities
measured with segment search, against whole-video embeddings without it.

Embeddings are cached under --cache-dir, one .npy a distinct input, in a folder per checkpoint and settings.
The checkpoint key is the Hub commit for a model in the Hub cache, else a hash of the names, sizes and
modification times of the folder's files (README/*.md aside) - weights, config and remote code: content hashes
of multi-GB weights would cost more than many evaluations. The settings key holds dtype, device type and the
config's embedding settings (max_length, video and image controls, pooling token). An input's key holds its
fields, its effective instruction and, for each media file, its resolved path, size and modification time.
A re-run embeds only what changed. The results file (--output) is what `scripts/make_model_card.py --results`
reads; the per-dataset metrics and chance levels go beside it, in `<output stem>.details.json`.

    python scripts/evaluate.py BENCHMARK_DIR                              # the bundled tiny model, on the CPU
    python scripts/evaluate.py BENCHMARK_DIR --datasets TXT-synthetic --output build/eval/tiny.json
    python scripts/evaluate.py BENCHMARK_DIR --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16
    python scripts/evaluate.py BENCHMARK_DIR --vectors binary --rescore 100     # what a compact index costs
    python scripts/evaluate.py BENCHMARK_DIR --datasets PR LC --segments --segment-window 2 --segment-stride 1
"""

import argparse
from pathlib import Path

from gve_tools.errors import GVEToolsError
from gve_tools.evaluation.cache import DEFAULT_CACHE_DIR
from gve_tools.evaluation.runner import DEFAULT_OUTPUT, evaluate
from gve_tools.models import DTYPES
from gve_tools.quantization import WEIGHT_SETTINGS
from gve_tools.repo import BUNDLED_MODEL, ROOT
from gve_tools.text import docstring_parser
from gve_tools.vectors import VECTOR_KINDS, VectorFormat


def build_parser() -> argparse.ArgumentParser:
    parser = docstring_parser(__doc__, "evaluate.py", "exit status: 0 done; 2 bad arguments, benchmark or inputs.")
    parser.add_argument("benchmark", type=Path, metavar="BENCHMARK_DIR", help="folder of dataset folders (see above)")
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH_OR_HUB_ID",
        help=f"checkpoint folder or Hub id (default: the bundled tiny model, {BUNDLED_MODEL.relative_to(ROOT)})",
    )
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of --model (default: main)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    parser.add_argument(
        "--dtype", choices=DTYPES, default=None, help="weights' dtype (default: bfloat16 on cuda, float32 on cpu)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="most inputs per forward pass (default: 16)")
    parser.add_argument(
        "--datasets", nargs="+", default=None, metavar="NAME", help="evaluate only these datasets (name or folder)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help=f"embedding cache (default: {DEFAULT_CACHE_DIR})"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="JSON",
        help=f"results file for make_model_card.py --results, details beside it (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--weights",
        choices=WEIGHT_SETTINGS,
        default="float",
        help="the language model's weights: float (default), or quantized while loading to int8 (torchao on the "
        "CPU, bitsandbytes on a GPU) or int4 (bitsandbytes NF4, GPU only); the vision tower stays in --dtype",
    )
    parser.add_argument(
        "--vectors",
        choices=VECTOR_KINDS,
        default="float32",
        help="score as an index of these vectors would (gve_tools.vectors): int8 (FAISS's scalar quantizer, "
        "trained on each dataset's documents) or binary (sign bits, hamming); default float32",
    )
    parser.add_argument(
        "--rescore",
        type=int,
        default=0,
        metavar="N",
        help="with int8 or binary: re-rank each query's top N by the float vectors (default 0: off)",
    )
    parser.add_argument(
        "--truncate-dim",
        type=int,
        default=None,
        metavar="D",
        help="keep the first D values of every embedding, L2-normalised again (GVE was not trained for it)",
    )
    parser.add_argument(
        "--segments",
        action="store_true",
        help="score every video document by its best segment (moment datasets always rank segments)",
    )
    parser.add_argument(
        "--segment-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="segments' length (default: the model's max_frames / fps)",
    )
    parser.add_argument(
        "--segment-stride",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time between the starts of consecutive segments (default: the model's, a fraction of the window)",
    )
    parser.add_argument(
        "--model-name",
        default=None,
        help="the model's name in the results (default: the last part of --model); "
        "make_model_card.py --model-id owner/NAME picks this row",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        vectors = VectorFormat(args.vectors, rescore=args.rescore, dims=args.truncate_dim)
    except ValueError as error:
        parser.error(f"--vectors/--rescore/--truncate-dim: {error}")
    try:
        evaluate(
            args.benchmark,
            args.model,
            revision=args.revision,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            datasets=args.datasets,
            cache_dir=None if args.no_cache else args.cache_dir,
            output=args.output,
            model_name=args.model_name,
            vectors=vectors,
            weights=args.weights,
            segments=args.segments,
            segment_window=args.segment_window,
            segment_stride=args.segment_stride,
        )
    except GVEToolsError as error:  # a bad benchmark or input (EvaluationError), a model that cannot load, ...
        parser.error(str(error))
    return 0
