"""Helpers of the corpus tests: manifests, the shards of an output folder, and what `model.encode` makes of rows."""

import json

import torch


def write_manifest(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def as_input(row):
    """A manifest row as the input `model.encode` takes."""
    return {key: row[key] for key in ("text", "image", "video", "instruction") if row.get(key) is not None}


def encode_rows(model, rows, **kwargs):
    return model.encode([as_input(row) for row in rows], show_progress_bar=False, **kwargs)


def resolved(rows, folder):
    """The corpus rows with the relative image path as the manifest reader resolves it."""
    return [{**row, "image": str(folder / "local.jpg")} if row["id"] == "img-rel" else row for row in rows]


def shard_files(out):
    return sorted((out / "embeddings").glob("part-*.parquet"))


def cosines(a, b):
    return torch.nn.functional.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b), dim=-1)
