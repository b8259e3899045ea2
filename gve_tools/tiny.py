"""Write a complete, tiny, randomly initialised GVE checkpoint folder.

The folder has everything a real GVE repo has: `config.json` with the `auto_map`, the remote code,
a byte-level BPE tokenizer trained offline that carries the Qwen special tokens and the Qwen2.5-VL
chat template, the processor configs and safetensors weights (a stock Qwen2.5-VL state dict, with
an untied `lm_head` like GVE-7B's). Tests and the other scripts build their models with it.

The weights are drawn so that attention is far from uniform (see `redraw_weights`): with default
initialisers a wrong rope position or pooling position can still look right.

    python scripts/make_tiny_checkpoint.py OUT_DIR [--layout v5|legacy] [--seed N]
"""

import argparse
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from gve_tools.repo import copy_code_files, remote_class, write_sentence_transformers_files

# The stock Qwen2.5-VL chat template, as published with Qwen/Qwen2.5-VL-*-Instruct.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen's special tokens, in vocabulary order (151643 onwards in the real vocabulary).
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2's pre-tokenizer split (GPT-4 style, one digit at a time).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TRAINING_TEXT = """
You are a helpful assistant. Describe this video. Describe this image. Find the video that matches.
Retrieve the video described by the caption. Represent the query for retrieving relevant videos.
a red circle moves left. a blue square moves right. a green triangle moves up. a yellow star moves down.
a small white ball appears, then a large black box disappears. the camera pans slowly across a city.
a dog runs on the beach while the sun sets. two people talk in a kitchen. a car drives through rain.
first the circle appears, then the square, then both move towards the centre of the frame.
"""

TEXT_HIDDEN = 64
TEXT_LAYERS = 2
VISION_HIDDEN = 32
VISION_DEPTH = 2
VOCAB_SIZE = 384


def build_tokenizer(vocab_size: int = 320, text: str = TRAINING_TEXT):
    """Train a tiny byte-level BPE tokenizer offline on `text` and wrap it as a `Qwen2Tokenizer`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(text.split("\n") * 20, trainer)
    bpe.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
        padding_side="left",
    )
    return tokenizer


def tiny_config(
    tokenizer,
    config_class: type,
    text_hidden: int = TEXT_HIDDEN,
    text_layers: int = TEXT_LAYERS,
    vision_hidden: int = VISION_HIDDEN,
    vision_depth: int = VISION_DEPTH,
    **settings,
):
    """A GVEConfig with tiny shapes (by default text hidden 64 in 2 layers, vision depth 2).

    `settings` are GVEConfig's embedding settings (`video_fps`, `video_max_pixels`, ...).
    """
    ids = dict(zip(QWEN_SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)), strict=True))
    assert len(tokenizer) <= VOCAB_SIZE, len(tokenizer)
    half_head = text_hidden // 4 // 2  # 4 attention heads; mrope splits half a head over (t, h, w)
    mrope_section = [half_head - 2 * (3 * half_head // 8), 3 * half_head // 8, 3 * half_head // 8]
    return config_class(
        text_config={
            "vocab_size": VOCAB_SIZE,
            "hidden_size": text_hidden,
            "intermediate_size": 2 * text_hidden,
            "num_hidden_layers": text_layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden,
            "intermediate_size": 2 * vision_hidden,
            "num_heads": 2,
            "out_hidden_size": text_hidden,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": list(range(1, vision_depth, 2)),
            "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        pooling_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
        auto_map={"AutoConfig": "configuration_gve.GVEConfig", "AutoModel": "modeling_gve.GVEModel"},
        **settings,
    )


@torch.no_grad()
def redraw_weights(model: torch.nn.Module, seed: int) -> None:
    """Redraw every weight so that tiny-model tests can tell right from wrong.

    Linear and conv weights get std 1.5/sqrt(fan_in), embeddings std 1, norm weights uniform in
    [0.5, 1.5] and biases std 0.1: attention is then far from uniform, so a wrong position, a wrong
    pooling token or a missing final norm changes the embedding.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in sorted(model.named_parameters()):
        if "norm" in name or ".ln_q." in name:
            param.copy_(torch.rand(param.shape, generator=generator) + 0.5)
        elif name.endswith("embed_tokens.weight"):
            param.copy_(torch.randn(param.shape, generator=generator))
        elif param.ndim >= 2:
            fan_in = param[0].numel()
            param.copy_(torch.randn(param.shape, generator=generator) * 1.5 / fan_in**0.5)
        else:
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


def to_layout(state_dict: dict, layout: str) -> dict:
    """Rename a transformers 5.x Qwen2.5-VL state dict to the requested key layout."""
    if layout == "v5":
        return dict(state_dict)
    if layout != "legacy":
        raise ValueError(f"unknown layout {layout!r}; expected 'v5' or 'legacy'")
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith("model.language_model."):
            key = "model." + key[len("model.language_model.") :]
        elif key.startswith("model.visual."):
            key = key[len("model.") :]
        renamed[key] = value
    return renamed


def make_tiny_checkpoint(
    out_dir: str | Path,
    layout: str = "v5",
    seed: int = 0,
    *,
    tokenizer_text: str = TRAINING_TEXT,
    redraw: bool = True,
    **config: Any,
) -> Path:
    """Write a tiny GVE checkpoint folder to `out_dir` and return its path.

    `tokenizer_text` is what the tokenizer is trained on; `redraw=False` keeps transformers' own
    initialisation (a starting point for training); `config` goes to `tiny_config` (shapes, settings).
    """
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    copy_code_files(out)

    tokenizer = build_tokenizer(text=tokenizer_text)
    config = tiny_config(tokenizer, remote_class("configuration_gve.GVEConfig", out), **config)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    if redraw:
        redraw_weights(model, seed)
    state_dict = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(to_layout(state_dict, layout), out / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out)

    processor_class = remote_class("processing_gve.GVEProcessor", out)
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template={"default": QWEN2_5_VL_CHAT_TEMPLATE, "embedding": processor_class.embedding_chat_template},
    )
    processor.save_pretrained(out)
    write_sentence_transformers_files(out, dimension=config.text_config.hidden_size)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Write a tiny, randomly initialised GVE checkpoint folder (config with auto_map, remote "
        "code, offline-trained tokenizer with the Qwen special tokens and chat template, processor "
        "configs, safetensors weights).",
    )
    parser.add_argument("out_dir", help="folder to write (created if missing)")
    parser.add_argument(
        "--layout",
        choices=("v5", "legacy"),
        default="v5",
        help="weight key layout: transformers 5.x (model.language_model.*, model.visual.*) or legacy "
        "(model.layers.*, visual.*); default: v5",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default: 0)")
    shapes = parser.add_argument_group(
        "shapes", "the backbone's sizes; vLLM's CPU attention needs a text head size (text hidden / 4) of 32 or more"
    )
    shapes.add_argument("--text-hidden", type=int, default=TEXT_HIDDEN, help=f"default {TEXT_HIDDEN} (4 heads)")
    shapes.add_argument("--text-layers", type=int, default=TEXT_LAYERS, help=f"default {TEXT_LAYERS}")
    shapes.add_argument("--vision-hidden", type=int, default=VISION_HIDDEN, help=f"default {VISION_HIDDEN} (2 heads)")
    shapes.add_argument("--vision-depth", type=int, default=VISION_DEPTH, help=f"default {VISION_DEPTH}")
    args = parser.parse_args(argv)
    if args.text_hidden % 8:
        parser.error(f"--text-hidden must be a multiple of 8 (4 heads of an even size), got {args.text_hidden}")
    shape = {key: getattr(args, key) for key in ("text_hidden", "text_layers", "vision_hidden", "vision_depth")}
    out = make_tiny_checkpoint(args.out_dir, layout=args.layout, seed=args.seed, **shape)
    print(f"wrote a tiny GVE checkpoint ({args.layout} layout, seed {args.seed}, {shape}) to {out}")


if __name__ == "__main__":
    main()
