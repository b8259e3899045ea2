"""vLLM's side of the parity check (`gve_tools.vllm_parity`), run with the Python of vLLM's own environment.

vLLM pins other torch and transformers versions than the project's stack, so it lives in a virtual environment of
its own (`make vllm-parity` builds `.venv-vllm`), and this module is the only code that runs there: it imports
nothing of the project's but `gve_tools.loopback` (standard library only), and numpy and vLLM. It reads the
requests that GVE prepared (`GVEItem.as_vllm_request`, pickled), embeds them offline with `LLM.embed` or through
vLLM's OpenAI-compatible server on 127.0.0.1, and writes the normalised embeddings as a .npy file.

    .venv-vllm/bin/python -m gve_tools.vllm_engine offline CHECKPOINT REQUESTS.pkl OUT.npy --dtype float32
    .venv-vllm/bin/python -m gve_tools.vllm_engine server CHECKPOINT REQUESTS.pkl OUT.npy --chat-template FILE
"""

import argparse
import base64
import io
import json
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from gve_tools.loopback import free_port, stop, wait_until_serving

SERVER_START_TIMEOUT = 600  # seconds: vLLM's CPU start-up takes one to two minutes here


def _engine_options(checkpoint: str, dtype: str, max_model_len: int) -> dict:
    return {
        "model": checkpoint,
        "runner": "pooling",
        "dtype": dtype,
        "max_model_len": max_model_len,
        "limit_mm_per_prompt": {"image": 1, "video": 1},
        "trust_remote_code": True,
        "enforce_eager": True,
    }


def embed_offline(
    checkpoint: str, requests: list[dict], dtype: str, max_model_len: int, transformers_positions: bool = False
) -> np.ndarray:
    """`LLM.embed` over GVE's prepared requests, in order. `transformers_positions` is a diagnosis: vLLM's rope
    positions with transformers 5.x's rule for the text after an image or a video (`use_transformers_positions`)."""
    if transformers_positions:
        use_transformers_positions()
    from vllm import LLM

    llm = LLM(**_engine_options(checkpoint, dtype, max_model_len))
    outputs = llm.embed(requests)
    return _normalised([output.outputs.embedding for output in outputs])


def use_transformers_positions() -> None:
    """Make vLLM place the text after an image or a video as transformers 5.x does: at the block's start plus its
    larger merged side, where vLLM (like transformers 4.x) starts it one past the block's largest position, the
    temporal one included. Runs the engine in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) so that the
    patch reaches it; for the parity check's diagnosis only."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import torch
    from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration as Model

    def positions(self, input_tokens: list[int], mm_features: list) -> tuple:
        parts, current, start = [], 0, 0
        for offset, grid_t, grid_h, grid_w, factor in self.iter_mm_grid_thw(mm_features):
            parts.append(np.broadcast_to(np.arange(offset - start), (3, offset - start)) + current)
            current += offset - start
            grid = np.indices((grid_t, grid_h, grid_w))
            grid[0] = (grid[0] * factor).astype(np.int64)
            parts.append(grid.reshape(3, -1) + current)
            current += max(grid_h, grid_w)
            start = offset + grid_t * grid_h * grid_w
        parts.append(np.broadcast_to(np.arange(len(input_tokens) - start), (3, len(input_tokens) - start)) + current)
        table = np.concatenate(parts, axis=1).reshape(3, -1)
        return torch.from_numpy(table), int(table.max() + 1 - len(input_tokens))

    Model.get_mrope_input_positions = positions


def embed_server(
    checkpoint: str, requests: list[dict], dtype: str, max_model_len: int, chat_template: str
) -> np.ndarray:
    """The same inputs through vLLM's OpenAI-compatible server (`/v1/embeddings` with chat messages and the
    shipped embedding template), started on 127.0.0.1 and stopped afterwards. Images go as PNG data URLs of the
    pixels GVE prepared, already sized to the patch grid, which the server's own resizing leaves as they are (the
    server refuses per-request processor settings, so `do_resize` is not sent); requests with a video are refused
    (vLLM's server samples a video file with its own sampler, so GVE's frames cannot be sent)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model", checkpoint,
        "--runner", "pooling",
        "--dtype", dtype,
        "--max-model-len", str(max_model_len),
        "--trust-remote-code",
        "--enforce-eager",
        "--chat-template", chat_template,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--limit-mm-per-prompt", json.dumps({"image": 1, "video": 1}),
    ]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=sys.stderr, stderr=sys.stderr, env={**os.environ, "VLLM_HOST_IP": "127.0.0.1"}
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", server, SERVER_START_TIMEOUT, "vLLM's server")
        vectors = []
        for request in requests:
            body = {"model": checkpoint, "messages": _messages(request), "encoding_format": "float"}
            answer = _post(f"http://127.0.0.1:{port}/v1/embeddings", body)
            vectors.append(answer["data"][0]["embedding"])
        return _normalised(vectors)
    finally:
        stop(server, timeout=60)


def _messages(request: dict) -> list[dict]:
    """A prepared request as the chat messages its prompt was made from: system and user turns, the image as a
    data URL. The shipped template renders them back to the same prompt (checked by the caller's cosines)."""
    if "video" in request.get("multi_modal_data", {}):
        raise ValueError("the server path takes no video: vLLM's server samples video files itself")
    content: list[dict] = []
    image = request.get("multi_modal_data", {}).get("image")
    if image is not None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        content.append({"type": "image_url", "image_url": {"url": url}})
    text = request["user_text"]
    if text:
        content.append({"type": "text", "text": text})
    return [{"role": "system", "content": request["instruction"]}, {"role": "user", "content": content}]


def _post(url: str, body: dict) -> dict:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        answer = error.read().decode(errors="replace")[:2000]
        raise RuntimeError(f"vLLM's server answered {error.code}: {answer}") from None


def _normalised(vectors: list) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=("offline", "server"))
    parser.add_argument("checkpoint")
    parser.add_argument("requests", type=Path, help="the pickled requests (gve_tools.vllm_parity)")
    parser.add_argument("output", type=Path, help="the embeddings, as .npy")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--chat-template", help="the embedding chat template (server)")
    parser.add_argument(
        "--transformers-positions",
        action="store_true",
        help="diagnosis (offline): transformers 5.x's rope positions for the text after an image or a video",
    )
    args = parser.parse_args(argv)
    requests = pickle.loads(args.requests.read_bytes())
    if args.path == "offline":
        offline = [
            {key: request[key] for key in ("prompt", "multi_modal_data", "mm_processor_kwargs") if key in request}
            for request in requests
        ]
        vectors = embed_offline(args.checkpoint, offline, args.dtype, args.max_model_len, args.transformers_positions)
    else:
        vectors = embed_server(args.checkpoint, requests, args.dtype, args.max_model_len, args.chat_template)
    np.save(args.output, vectors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
