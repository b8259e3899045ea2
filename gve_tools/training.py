"""Train the bundled tiny GVE on the synthetic clips, on a CPU, in two stages, and build it like the real one.

1. **Backbone.** A tiny Qwen2.5-VL (scripts/make_tiny_checkpoint.py: its redrawn random weights,
   a tokenizer trained on the synthetic captions) is trained whole, contrastively: each query
   (text, image, clip, or text + image) against the batch's videos and each video against the
   batch's queries, with in-batch negatives. Batches are made of groups of hard negatives (clips
   that differ in one attribute). The result is saved as a plain Qwen2.5-VL base checkpoint.
2. **LoRA.** A PEFT LoRA on that base continues the same objective at a lower rate, as GVE's own
   LoRA does on Qwen2.5-VL.
3. **Build.** scripts/build_checkpoint.py merges the LoRA into the base (float32) and writes and
   verifies the complete GVE folder: the same tooling that builds GVE-3B and GVE-7B.

The embedding is the model's own (`GVEModel`: last-token pooling, L2 norm), on inputs made by the
model's processor with each task's instruction (scripts/make_synthetic_data.py), so training sees
exactly what `encode` computes. Seeded; about 13 minutes on 2 CPU cores with the defaults.

    python scripts/make_synthetic_data.py build/synthetic
    python scripts/train_tiny.py build/synthetic/train --out bundled/gve-tiny-synthetic
    python scripts/train_tiny.py build/synthetic/train --out /tmp/gve-smoke --backbone-steps 2 --lora-steps 2
"""

import argparse
import json
import math
import random
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gve_tools.checkpoint.build import build_checkpoint
from gve_tools.synthetic.tasks import TRAINING_TASKS, instructions
from gve_tools.synthetic.world import FPS, LONG_FRAMES, SIZE
from gve_tools.text import docstring_parser
from gve_tools.tiny import TRAINING_TEXT, make_tiny_checkpoint

MODEL_ID = "local/gve-tiny-synthetic"  # the names the built folder's model card uses; never pushed
BASE_MODEL_ID = "local/gve-tiny-synthetic-base"
SHAPES = {"text_hidden": 128, "text_layers": 4, "vision_hidden": 64, "vision_depth": 2}
# Embedding settings of the tiny model: the synthetic clips' own frame rate and size, so nothing is resampled.
SETTINGS = {
    "video_fps": float(FPS),
    "video_max_frames": LONG_FRAMES,
    "video_min_pixels": 4 * 28 * 28,
    "video_max_pixels": SIZE * SIZE,
    "image_min_pixels": 4 * 28 * 28,
    "image_max_pixels": SIZE * SIZE,
    "max_length": 1024,
}
# The contrastive temperature. At 0.05 the tiny model kept confusing circles with squares and held-out
# positions with seen ones (S R@1 0.83-0.86); at 0.025 those near misses cost more (benchmarks/SYNTHETIC.md).
# Fold 1's splits agree (average 0.568 against 0.477 at 0.05), one run each: within the spread between draws.
TEMPERATURE = 0.025
# Training length. 1,700 + 200 steps met the targets on some draws of the training pairs and folds, not others; 2,700 +
# 300 raised S R@1 on each of the validation folds 1-3 (0.778/0.917/0.722 to 0.944/0.972/0.972, SYNTHETIC.md)
# and still fits the 15-minute budget on 2 CPU cores.
BACKBONE_STEPS = 2700
LORA_STEPS = 300
# AdamW's weight decay, in both stages. 0.5 against 0.01 raised the mean AVG over validation folds 1-3 from 0.695 to
# 0.760 and CMP R@1 from 0.622 to 0.700, every target met on each fold (runs 26, 28, 29; SYNTHETIC.md).
WEIGHT_DECAY = 0.5
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def read_pairs(folder: Path) -> list[dict]:
    """The training pairs of make_synthetic_data.py, with media paths made absolute."""
    path = folder / "pairs.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; write it with scripts/make_synthetic_data.py")
    pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for pair in pairs:
        for key in ("image", "video", "document"):
            if key in pair:
                pair[key] = str(folder / pair[key])
    return pairs


def tokenizer_text(pairs: list[dict]) -> str:
    """What the tokenizer is trained on: the captions, the instructions and the template's words."""
    lines = {pair["text"] for pair in pairs if "text" in pair}
    return "\n".join([TRAINING_TEXT, *(instructions()[task] for task in TRAINING_TASKS), *sorted(lines)])


class Featurizer:
    """Each distinct query and document featurized once by the model's processor, then reused."""

    def __init__(self, processor) -> None:
        self.processor = processor
        self.items: dict[str, object] = {}

    def __call__(self, key: str, fields: dict, instruction: str | None):
        if key not in self.items:
            item = self.processor.load(fields, instruction, label=key)
            self.processor.featurize(item, release_media=True)
            self.items[key] = item
        return self.items[key]


def query_fields(pair: dict) -> dict:
    return {key: pair[key] for key in ("text", "image", "video") if key in pair}


def batches(pairs: list[dict], groups_per_batch: int, rng: random.Random, repeats: dict[str, int] | None = None):
    """Endless batches: `groups_per_batch` random groups of hard negatives each.

    `repeats` draws each group of a task that many times a pass over the groups ({"CMP": 2}), the rest once.
    """
    by_group = defaultdict(list)
    for pair in pairs:
        by_group[pair["group"]].append(pair)
    groups = [group for group in by_group.values() for _ in range((repeats or {}).get(group[0]["task"], 1))]
    while True:
        rng.shuffle(groups)
        for start in range(0, len(groups) - groups_per_batch + 1, groups_per_batch):
            yield [pair for group in groups[start : start + groups_per_batch] for pair in group]


def featurized(featurizer: Featurizer, batch: list[dict]) -> tuple[list, list]:
    """The query items and the distinct document items of a batch."""
    documents = list(dict.fromkeys(pair["document"] for pair in batch))
    doc_items = [featurizer(path, {"video": path}, None) for path in documents]
    query_items = [
        featurizer(json.dumps([pair["instruction"], query_fields(pair)]), query_fields(pair), pair["instruction"])
        for pair in batch
    ]
    return query_items, doc_items


def contrastive_loss(model, featurizer: Featurizer, batch: list[dict], temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: each query against the batch's distinct videos, each video against the queries.

    A video shared by two queries (PR's segments) is one candidate, and has both queries as positives.
    """
    processor = featurizer.processor
    documents = list(dict.fromkeys(pair["document"] for pair in batch))
    query_items, doc_items = featurized(featurizer, batch)
    queries = model(**processor.collate(query_items)).pooler_output
    docs = model(**processor.collate(doc_items)).pooler_output
    targets = torch.tensor([documents.index(pair["document"]) for pair in batch])
    logits = queries @ docs.T / temperature
    # and each video against the batch's queries: the log of the probability given to its own queries
    positives = targets[None, :] == torch.arange(len(documents))[:, None]
    video_to_query = torch.logsumexp(logits.T.log_softmax(dim=1).masked_fill(~positives, float("-inf")), dim=1)
    return (F.cross_entropy(logits, targets) - video_to_query.mean()) / 2


def train(
    model,
    featurizer: Featurizer,
    pairs: list[dict],
    steps: int,
    lr: float,
    groups: int,
    seed: int,
    stage: str,
    temperature: float = TEMPERATURE,
    repeats: dict[str, int] | None = None,
    weight_decay: float = WEIGHT_DECAY,
) -> list[float]:
    """AdamW with warm-up and cosine decay over `steps` batches; returns the losses."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)),
    )
    model.train()
    losses, stream = [], batches(pairs, groups, random.Random(f"{stage}-{seed}"), repeats)
    progress = tqdm(range(steps), desc=f"training ({stage})", unit="step")
    for _ in progress:
        loss = contrastive_loss(model, featurizer, next(stream), temperature=temperature)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


def train_tiny(
    data: str | Path,
    out: str | Path,
    *,
    backbone_steps: int = BACKBONE_STEPS,
    lora_steps: int = LORA_STEPS,
    groups_per_batch: int = 6,
    lr: float = 1e-3,
    lora_lr: float = 1e-3,
    lora_rank: int = 16,
    temperature: float = TEMPERATURE,
    repeats: dict[str, int] | None = None,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
    workdir: str | Path | None = None,
) -> Path:
    """Train the tiny GVE on `data` (a make_synthetic_data.py train folder) and build it at `out`."""
    data, out = Path(data), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another --out")
    pairs = read_pairs(data)  # both checked before the slow imports
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoProcessor, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    work = Path(workdir or tempfile.mkdtemp(prefix="gve-tiny-training-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    # 1. the backbone, trained whole from transformers' initialisation
    # The redrawn weights of make_tiny_checkpoint, not transformers' std-0.02 initialisation: from that one
    # every input pools to nearly the same vector (cosine ~1) and the contrastive loss hardly moves.
    initial = make_tiny_checkpoint(
        work / "initial", seed=seed, tokenizer_text=tokenizer_text(pairs), **SHAPES, **SETTINGS
    )
    model = AutoModel.from_pretrained(initial, trust_remote_code=True)
    featurizer = Featurizer(AutoProcessor.from_pretrained(initial, trust_remote_code=True))
    for pair in tqdm(pairs, desc="featurizing the training pairs", unit="pair"):
        featurized(featurizer, [pair])
    recipe = {"temperature": temperature, "repeats": repeats, "weight_decay": weight_decay}  # of both stages
    train(model, featurizer, pairs, backbone_steps, lr, groups_per_batch, seed, "backbone", **recipe)
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(initial)
    base.model.load_state_dict(model.model.state_dict())
    base.save_pretrained(work / "base")
    for name in initial.iterdir():  # the processor, tokenizer and remote code travel with the base
        if name.is_file() and name.name not in ("model.safetensors", "config.json"):
            shutil.copy2(name, work / "base" / name.name)
    shutil.copytree(initial / "additional_chat_templates", work / "base" / "additional_chat_templates")
    shutil.copy2(initial / "config.json", work / "base" / "config.json")

    # 2. a LoRA on the trained base, the way GVE's LoRA sits on Qwen2.5-VL
    model = AutoModel.from_pretrained(work / "base", trust_remote_code=True)
    lora = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, target_modules=LORA_TARGETS, lora_dropout=0.0)
    model = get_peft_model(model, lora)
    train(model, featurizer, pairs, lora_steps, lora_lr, groups_per_batch, seed, "lora", **recipe)
    model.save_pretrained(work / "adapter")
    trained = time.perf_counter() - started

    # 3. merge and build, with the checkpoint tooling
    build_checkpoint(
        out, base=str(work / "base"), adapter=str(work / "adapter"), dtype="float32",
        model_id=MODEL_ID, base_model=BASE_MODEL_ID,
    )  # fmt: skip
    print(f"trained in {trained / 60:.1f} min ({backbone_steps} + {lora_steps} steps); built {out}")
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return out


def task_repeat(value: str) -> tuple[str, int]:
    """`TASK=N` of --repeat, checked: a training task and a count of at least 1."""
    task, _, count = value.partition("=")
    if task not in TRAINING_TASKS or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected TASK=N, TASK one of {', '.join(TRAINING_TASKS)}, N >= 1")
    return task, int(count)


def main(argv: list[str] | None = None) -> None:
    parser = docstring_parser(__doc__)
    parser.add_argument("data", type=Path, help="training folder of make_synthetic_data.py (with pairs.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="GVE folder to build (must not exist)")
    parser.add_argument(
        "--backbone-steps", type=int, default=BACKBONE_STEPS, help=f"steps of stage 1 (default: {BACKBONE_STEPS})"
    )
    parser.add_argument("--lora-steps", type=int, default=LORA_STEPS, help=f"steps of stage 2 (default: {LORA_STEPS})")
    parser.add_argument("--groups-per-batch", type=int, default=6, help="hard-negative groups a batch (default: 6)")
    parser.add_argument("--lr", type=float, default=1e-3, help="stage 1 peak learning rate (default: 1e-3)")
    parser.add_argument("--lora-lr", type=float, default=1e-3, help="stage 2 peak learning rate (default: 1e-3)")
    parser.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default: 16)")
    parser.add_argument(
        "--temperature", type=float, default=TEMPERATURE, help=f"contrastive temperature (default: {TEMPERATURE})"
    )
    parser.add_argument(
        "--weight-decay", type=float, default=WEIGHT_DECAY, help=f"AdamW weight decay (default: {WEIGHT_DECAY})"
    )
    parser.add_argument(
        "--repeat",
        type=task_repeat,
        action="append",
        metavar="TASK=N",
        help="draw each group of TASK N times a pass over the groups, e.g. CMP=2 (repeatable; default: each once)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and batches (default: 0)")
    parser.add_argument("--workdir", type=Path, help="keep the intermediate base and adapter here")
    args = parser.parse_args(argv)
    train_tiny(
        args.data,
        args.out,
        backbone_steps=args.backbone_steps,
        lora_steps=args.lora_steps,
        groups_per_batch=args.groups_per_batch,
        lr=args.lr,
        lora_lr=args.lora_lr,
        lora_rank=args.lora_rank,
        temperature=args.temperature,
        repeats=dict(args.repeat or []),
        weight_decay=args.weight_decay,
        seed=args.seed,
        workdir=args.workdir,
    )


if __name__ == "__main__":
    main()
