"""The OpenAI-style embeddings schema (`POST /v1/embeddings`), read with the endpoint handler's item rules.

Request: `{"input": ITEM | [ITEM, ...], "model": ..., "encoding_format": "float" | "base64", "dimensions": ...,
"user": ..., "parameters": {...}}`, where an ITEM is the handler's (a string is text; an object has `text`,
`image`, `video`, `video_start`, `video_end`) and `parameters` is the handler's `parameters` (GVE's extension).
`model` and `user` are accepted and not used; `dimensions`, when given, must be the model's own.
Answer: OpenAI's `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], "model":
..., "usage": {"prompt_tokens": n, "total_tokens": n}}`. Errors: OpenAI's `{"error": {"message", "type", "param",
"code"}}`, with the handler's message, which names the field (`input[2].image: ...`).
"""

import base64
from typing import Any

from gve_tools.serving.engine import handler_module

FIELDS = ("input", "model", "encoding_format", "dimensions", "user", "parameters")
ENCODINGS = ("float", "base64")


def parse(reader: Any, data: Any, dimension: int) -> Any:
    """Check an OpenAI embeddings request with `reader` (a `handler.RequestReader`); returns its `Request`."""
    error = handler_module().HandlerError
    reader.check_body(data, FIELDS, "input")
    for name in ("model", "user"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise error(f"{name}: must be a string, got {type(data[name]).__name__}")
    encoding = data.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise error(f"encoding_format: must be one of {', '.join(ENCODINGS)}, got {str(encoding)[:60]!r}")
    dimensions = data.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or dimensions != dimension):
        raise error(f"dimensions: this model's embeddings have {dimension} dimensions, got {str(dimensions)[:60]}")
    instruction, controls = reader.parameters(data.get("parameters"))
    return reader.features(data["input"], instruction, controls, field="input", pairs=False)


def answer(embeddings: Any, tokens: list[int], model: str, encoding: str | None) -> dict[str, Any]:
    """OpenAI's response for the embeddings (a float32 `[N, D]` tensor) of inputs of `tokens` prompt tokens."""
    rows = []
    for index, row in enumerate(embeddings):
        if encoding == "base64":  # float32, little-endian, as OpenAI's clients decode it
            value: Any = base64.b64encode(row.float().numpy().astype("<f4").tobytes()).decode()
        else:
            value = row.tolist()
        rows.append({"object": "embedding", "index": index, "embedding": value})
    total = sum(tokens)
    return {"object": "list", "data": rows, "model": model, "usage": {"prompt_tokens": total, "total_tokens": total}}


def error_body(message: str, field: str, status: int) -> dict[str, Any]:
    """OpenAI's error object for a refused request."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": field, "code": None}}
