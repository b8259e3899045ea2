"""Build a complete GVE checkpoint folder, ready to push, and verify it.

From a Qwen2.5-VL base plus a PEFT LoRA adapter (merged here in fp32, following peft's recipe), or
from an already merged checkpoint to repackage (e.g. the upstream GVE-3B), it writes:

- the weights in the transformers 5.x key layout (`model.language_model.*`, `model.visual.*`,
  `lm_head.*`), bf16 by default, as sharded safetensors with an index;
- `config.json`: the source's Qwen2.5-VL config as a `GVEConfig`, with the `auto_map`;
- the processor, tokenizer and chat template of the source, plus GVE's embedding chat template;
- the remote code, the sentence-transformers files, `handler.py`, `requirements.txt` and the model
  card in its Hub rendering (`gve_tools.card`).

Then it checks itself: no `lora_`/`base_layer` key is left, every backbone tensor is present, the
saved tensors are the merged ones, and the folder reloaded through `AutoModel` with remote code
embeds fixed text, image and video inputs like the unmerged adapter model (cosine >= 0.9999 for a
float32 build; bf16/fp16 builds are held to 0.99, their rounding of the weights). The folder is
written under a temporary name and renamed only once every check has passed.

Memory: the model is held once, in fp32 (4 bytes a parameter): about 15 GB for GVE-3B (3.75 B
parameters) and 33 GB for GVE-7B (8.29 B), plus the verification's activations. The cast to the
output dtype is done parameter by parameter and the shards are written one at a time; the model is
freed before the folder is reloaded for verification, so the peak stays at one fp32 copy.

    python scripts/build_checkpoint.py --base Qwen/Qwen2.5-VL-3B-Instruct --adapter ./gve-3b-lora --out build/GVE-3B
    python scripts/build_checkpoint.py --merged Alibaba-NLP/GVE-3B --out build/GVE-3B \
        --model-id Alibaba-NLP/GVE-3B --base-model Qwen/Qwen2.5-VL-3B-Instruct
"""

import argparse
import gc
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from gve_tools.errors import GVEToolsError
from gve_tools.models import DTYPES, torch_dtype
from gve_tools.repo import REQUIRED_FILES, copy_code_files, remote_class, write_sentence_transformers_files
from gve_tools.text import first_line

MIN_COSINE = {"float32": 0.9999, "bfloat16": 0.99, "float16": 0.99}
FORBIDDEN_KEY_PARTS = ("lora_", "base_layer")


class CheckpointError(GVEToolsError, RuntimeError):
    """A build that cannot be made, or a folder that fails its checks; the message says which and why."""


def build_checkpoint(
    out: str | Path,
    *,
    base: str | None = None,
    adapter: str | None = None,
    merged: str | None = None,
    dtype: str = "bfloat16",
    max_shard_size: str = "5GB",
    model_id: str | None = None,
    base_model: str | None = None,
    results: str | Path | None = None,
) -> Path:
    """Build and verify a GVE folder at `out` from `base` + `adapter`, or from a `merged` checkpoint.

    Raises `CheckpointError` (leaving nothing at `out`) when the inputs are wrong or a check fails.
    """
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    if merged is not None and (base is not None or adapter is not None):
        raise CheckpointError("give either --merged, or --base with --adapter, not both")
    if merged is None and (base is None or adapter is None):
        raise CheckpointError("give --base and --adapter (to merge a LoRA), or --merged (to repackage)")
    if dtype not in DTYPES:
        raise CheckpointError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    out = Path(out)
    if out.exists():
        raise CheckpointError(f"{out} already exists; remove it or choose another --out")
    source = merged or base
    if adapter is not None and not _adapter_exists(adapter):
        raise CheckpointError(f"adapter not found: {adapter!r} (expected a folder or repo with adapter_config.json)")
    base_model = base_model or base
    if base_model is None or base_model.count("/") != 1 or Path(base_model).exists():
        raise CheckpointError("give --base-model: the Hub id of the base model, for the model card")
    card = _model_card(model_id, base_model, results)  # before any heavy work: bad card inputs fail fast

    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent if out.parent.exists() else None))
    try:
        processor = _write_processor(source, work)
        batch = processor.prepare(_verification_inputs(work))

        model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            source, dtype=torch.float32, output_loading_info=True
        )
        missing = [key for key in info["missing_keys"] if not key.startswith("lm_head.")]
        if missing:
            raise CheckpointError(
                f"{source!r} does not cover the Qwen2.5-VL backbone: {len(missing)} weight(s) missing"
            )
        if adapter is not None:
            try:
                model = PeftModel.from_pretrained(model, adapter)
            except (RuntimeError, ValueError, OSError) as error:
                raise CheckpointError(f"adapter {adapter!r} does not fit base {base!r}: {first_line(error)}") from error
            reference = _embed_stock(model.get_base_model().model, batch)
            model = model.merge_and_unload(safe_merge=True)
        else:
            reference = _embed_stock(model.model, batch)
        merge_cosine = F.cosine_similarity(_embed_stock(model.model, batch), reference)
        if adapter is not None and merge_cosine.min() < 0.9999:
            raise CheckpointError(f"the merged model drifts from the adapter model (cosine {merge_cosine.min():.6f})")

        model.to(torch_dtype(dtype))
        model.save_pretrained(work, max_shard_size=max_shard_size, save_original_format=False)
        _check_saved_tensors(work, model.state_dict())
        del model
        gc.collect()

        _write_config(processor.embedding_config, work, dtype)
        _write_repo_files(work, card)
        check_folder(work)
        cosine = _verify_reload(work, batch, reference)
        if cosine < MIN_COSINE[dtype]:
            raise CheckpointError(
                f"the built folder, reloaded, embeds differently from the source (cosine {cosine:.6f} < "
                f"{MIN_COSINE[dtype]} for a {dtype} build)"
            )
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"built {out}: {dtype} weights, reload cosine {cosine:.6f} against the unmerged source")
    return out


def check_folder(folder: str | Path) -> None:
    """Static checks of a built folder: every file there, no LoRA leftovers, every backbone tensor present.

    Raises `CheckpointError` listing what is wrong.
    """
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    problems = [f"missing file {name}" for name in REQUIRED_FILES if not (folder / name).is_file()]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        shards = ["model.safetensors"] if (folder / "model.safetensors").is_file() else []
    if not shards:
        problems.append("no weights (model.safetensors or model.safetensors.index.json)")
    keys = set()
    for shard in shards:
        if not (folder / shard).is_file():
            problems.append(f"missing weight shard {shard}")
            continue
        with safe_open(folder / shard, framework="pt") as file:
            keys.update(file.keys())
    leftovers = sorted(key for key in keys if any(part in key for part in FORBIDDEN_KEY_PARTS))
    if leftovers:
        problems.append(f"{len(leftovers)} unmerged LoRA tensor(s), e.g. {leftovers[:3]}")
    if keys and (folder / "config.json").is_file() and not problems:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        with torch.device("meta"):
            expected = set(AutoModel.from_config(config, trust_remote_code=True).state_dict())
        absent = sorted(expected - keys)
        if absent:
            problems.append(f"{len(absent)} backbone tensor(s) missing, e.g. {absent[:3]}")
    if problems:
        raise CheckpointError(f"{folder} fails its checks: " + "; ".join(problems))


def _adapter_exists(adapter: str) -> bool:
    """Whether `adapter` is a folder, or a Hub repo, holding a PEFT `adapter_config.json`."""
    if Path(adapter).exists() or adapter.startswith((".", "/", "~")) or adapter.count("/") != 1:
        return (Path(adapter).expanduser() / "adapter_config.json").is_file()
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(adapter, "adapter_config.json")
        return True
    except Exception:
        return False


def _verification_inputs(folder: Path) -> list:
    """Fixed text, image and video inputs (synthetic media written to `folder`)."""
    from gve_tools.media import moving_square, write_image, write_video

    media = folder / ".verification"
    media.mkdir()
    video = write_video(media / "clip.mp4", moving_square(16, colour="red", direction="right"))
    image = write_image(media / "image.png", colour="blue")
    return ["a red square moving to the right", str(image), str(video), {"text": "moving", "video": str(video)}]


def _write_processor(source: str, folder: Path):
    """Save the source's processor as a GVE processor (with the embedding chat template) into `folder`."""
    from transformers import AutoProcessor

    stock = AutoProcessor.from_pretrained(source)
    processor_class = remote_class("processing_gve.GVEProcessor")
    templates = stock.chat_template if isinstance(stock.chat_template, dict) else {"default": stock.chat_template}
    stock.tokenizer.init_kwargs["padding_side"] = "left"
    processor = processor_class(
        image_processor=stock.image_processor,
        tokenizer=stock.tokenizer,
        video_processor=stock.video_processor,
        chat_template={**templates, "embedding": processor_class.embedding_chat_template},
    )
    processor.save_pretrained(folder)
    # The source's config as a GVEConfig: GVE fields it already has are kept, the rest get their defaults.
    processor.embedding_config = remote_class("configuration_gve.GVEConfig").from_pretrained(source)
    return processor


def _write_config(config, folder: Path, dtype: str) -> None:
    """Save the source's GVEConfig (read once, with the processor) with the auto_map and the output dtype."""
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    config.auto_map = {"AutoConfig": "configuration_gve.GVEConfig", "AutoModel": "modeling_gve.GVEModel"}
    config.dtype = dtype
    config.save_pretrained(folder)


def _model_card(model_id: str | None, base_model: str, results) -> str:
    """The folder's card: the Hub rendering (only what is on the Hub, with a link to the source repository)."""
    from gve_tools.card import ModelCardError, render_model_card

    options = {"model_id": model_id, "base_model": base_model, "results_path": results, "audience": "hub"}
    try:
        return render_model_card(**{key: value for key, value in options.items() if value is not None})
    except ModelCardError as error:
        raise CheckpointError(f"cannot write the model card: {error}") from error


def _write_repo_files(folder: Path, card: str) -> None:
    copy_code_files(folder)
    dimension = json.loads((folder / "config.json").read_text())["text_config"]["hidden_size"]
    write_sentence_transformers_files(folder, dimension)
    (folder / "README.md").write_text(card)
    shutil.rmtree(folder / ".verification", ignore_errors=True)


def _check_saved_tensors(folder: Path, state_dict: dict) -> None:
    """The files hold exactly the merged, cast tensors (compared one tensor at a time)."""
    from safetensors import safe_open

    for shard in folder.glob("*.safetensors"):
        with safe_open(shard, framework="pt") as file:
            for key in file.keys():
                if key in state_dict and not torch.equal(file.get_tensor(key), state_dict[key]):
                    raise CheckpointError(f"saved tensor {key} differs from the merged model's")


@torch.no_grad()
def _embed_stock(backbone, batch) -> torch.Tensor:
    """GVE embeddings from a stock Qwen2.5-VL backbone (with or without LoRA layers)."""
    hidden = backbone(**batch, use_cache=False).last_hidden_state
    return F.normalize(hidden[:, -1].float(), dim=-1)


@torch.no_grad()
def _verify_reload(folder: Path, batch, reference: torch.Tensor) -> float:
    """Reload the folder through AutoModel with remote code, in fp32; return the lowest cosine to `reference`."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32).eval()
    cosine = F.cosine_similarity(model(**batch).pooler_output, reference).min().item()
    del model
    gc.collect()
    return cosine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build a complete, verified GVE checkpoint folder from a Qwen2.5-VL base plus a LoRA adapter "
        "(merged in fp32), or from an already merged checkpoint.",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to create (must not exist)")
    parser.add_argument("--base", help="Qwen2.5-VL base model: local folder or Hub repo id")
    parser.add_argument("--adapter", help="PEFT LoRA adapter trained on --base: local folder or Hub repo id")
    parser.add_argument("--merged", help="an already merged checkpoint to repackage, instead of --base/--adapter")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES), help="weights dtype (default bfloat16)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard, e.g. 5GB or 500MB")
    parser.add_argument("--model-id", help="Hub repo id the model card is written for (default: Alibaba-NLP/GVE-7B)")
    parser.add_argument("--base-model", help="Hub id of the base model, for the model card (default: --base, if an id)")
    parser.add_argument("--results", type=Path, help="UVRB results file for the model card (default: the repo's)")
    args = parser.parse_args(argv)
    try:
        build_checkpoint(
            args.out,
            base=args.base,
            adapter=args.adapter,
            merged=args.merged,
            dtype=args.dtype,
            max_shard_size=args.max_shard_size,
            model_id=args.model_id,
            base_model=args.base_model,
            results=args.results,
        )
    except CheckpointError as error:
        parser.exit(1, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
