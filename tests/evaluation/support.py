"""Writing datasets in the evaluation format, for the tests."""

import json
from pathlib import Path

from gve_tools.media import write_image


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_dataset(folder: Path, spec: dict, queries, corpus, qrels, candidates=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(spec))
    write_jsonl(folder / "queries.jsonl", queries)
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(folder / "qrels.jsonl", qrels)
    if candidates is not None:
        write_jsonl(folder / "candidates.jsonl", candidates)
    return folder


def text_dataset(folder: Path, ranking: str = "local") -> Path:
    """A small valid dataset: 2 text queries, 3 documents (one an image), local or global ranking."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "blue.png", colour="blue")
    return write_dataset(
        folder,
        {"name": "toy", "abilities": ["TXT"], "ranking": ranking, "metric": "MRR", "query_instruction": None},
        [{"id": "q1", "text": "a blue square"}, {"id": "q2", "text": "a red square"}],
        [{"id": "d1", "image": "blue.png"}, {"id": "d2", "text": "red"}, {"id": "d3", "text": "green"}],
        [{"query_id": "q1", "doc_id": "d1", "relevance": 2}, {"query_id": "q2", "doc_id": "d2", "relevance": 1}],
        [{"query_id": "q1", "doc_ids": ["d1", "d2"]}, {"query_id": "q2", "doc_ids": ["d2", "d3"]}]
        if ranking == "local"
        else None,
    )
