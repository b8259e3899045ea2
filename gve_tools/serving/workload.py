"""The load test's requests: the benchmark's mixed corpus as single-item requests in both schemas (texts, images as
data URIs, videos by URL, composed items, some with an instruction), a share of requests the handler refuses, and
the local `model.encode` input each good request must equal."""

import base64
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTRUCTION = "Find the video that matches the query."


@dataclass
class Case:
    """One request of the workload: what is sent, and what must come back."""

    kind: str  # text, image, video, text+image, text+video, or bad:<what>
    route: str  # "/" (the handler's schemas) or "/v1/embeddings"
    body: bytes
    local: dict[str, Any] | None = None  # the `model.encode` input it must equal (good requests)
    field: str | None = None  # the request field a refusal must name (bad requests)

    @property
    def good(self) -> bool:
        return self.local is not None


def _data_uri(path: str, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def good_case(item: str, index: int, media_url: str, rng: random.Random) -> Case:
    """One corpus item as a single-item request; every 4th item is composed with a text, every 8th has an
    instruction, every 3rd goes to the OpenAI route."""
    name = Path(item).name
    if item.endswith(".mp4"):
        kind, sent, local = "video", {"video": f"{media_url}/{name}"}, {"video": item}
    elif item.endswith(".png"):
        kind, sent, local = "image", {"image": _data_uri(item, "image/png")}, {"image": item}
    else:
        kind, sent, local = "text", item, {"text": item}
    if kind != "text" and index % 4 == 0:
        caption = rng.choice(["a square moving", "the colour of the scene", "what happens next"])
        kind, sent, local = f"text+{kind}", {**sent, "text": caption}, {**local, "text": caption}
    parameters = {}
    if index % 8 == 5:
        parameters["instruction"] = INSTRUCTION
        local = {**local, "instruction": INSTRUCTION}
    if index % 3 == 2:
        body = {"input": sent, **({"parameters": parameters} if parameters else {})}
        return Case(kind, "/v1/embeddings", json.dumps(body).encode(), local)
    body = {"inputs": sent, **({"parameters": parameters} if parameters else {})}
    return Case(kind, "/", json.dumps(body).encode(), local)


def bad_cases(media_url: str, not_video: str, truncated_video: str) -> list[Case]:
    """Requests the handler refuses, each with the field its message must name."""
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    cases = [
        ("unknown parameter", {"inputs": "x", "parameters": {"colour": 1}}, "parameters.colour"),
        ("local path", {"inputs": {"image": "/etc/passwd"}}, "inputs.image"),
        ("file URL", {"inputs": [{"video": "file:///etc/passwd"}]}, "inputs[0].video"),
        ("ftp URL", {"inputs": {"image": "ftp://example.com/a.png"}}, "inputs.image"),
        ("too many inputs", {"inputs": ["x"] * 33}, "inputs"),
        ("max_frames out of range", {"inputs": "x", "parameters": {"max_frames": 500}}, "parameters.max_frames"),
        ("not a video", {"inputs": {"video": f"{media_url}/{Path(not_video).name}"}}, "inputs.video"),
        ("truncated video", {"inputs": [{"video": f"{media_url}/{Path(truncated_video).name}"}]}, "inputs[0].video"),
        ("nested too deep", {"inputs": deep}, "inputs" + "[0]" * 32),
        ("openai: not an item", {"input": ["a", 3]}, "input[1]"),
    ]
    out = [
        Case(f"bad:{what}", "/v1/embeddings" if "input" in body else "/", json.dumps(body).encode(), field=field)
        for what, body, field in cases
    ]
    return [*out, Case("bad:invalid JSON", "/", b'{"inputs": ["unfinished', field="request")]


def build_workload(items: list[str], media_url: str, folder: Path, bad_share: float, seed: int = 0) -> list[Case]:
    """The corpus `items` as good requests, mixed with `bad_share` (of all requests) refused ones, shuffled.

    Writes the two broken videos the bad requests fetch into `folder` (served at `media_url`).
    """
    rng = random.Random(seed)
    not_video, truncated = folder / "bad_notes.mp4", folder / "bad_truncated.mp4"
    not_video.write_text("this is a text file, not a video\n" * 20)
    video = next(item for item in items if item.endswith(".mp4"))
    data = Path(video).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    good = [good_case(item, index, media_url, rng) for index, item in enumerate(items)]
    kinds = bad_cases(media_url, str(not_video), str(truncated))
    count = round(len(good) * bad_share / (1 - bad_share)) if bad_share < 1 else len(kinds)
    cases = good + [kinds[index % len(kinds)] for index in range(count)]
    rng.shuffle(cases)
    return cases
