"""GVEModel.encode against stock transformers Qwen2.5-VL on the same tiny weights (fp32)."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel

from tests.reference import stock_embeddings, stock_inputs

PARITY = 0.9999
BUG = 0.999  # a deliberate bug must fall below this, far under PARITY


@pytest.fixture(scope="session")
def stock(tiny_path):
    """Stock `Qwen2_5_VLModel` and processor with the checkpoint's weights, loaded without remote code.

    The backbone is taken from `Qwen2_5_VLForConditionalGeneration`: in transformers 5.23,
    `Qwen2_5_VLModel.from_pretrained` on a 5.x-layout checkpoint leaves the vision tower randomly
    initialised (its key conversion misses `model.visual.*`).
    """
    full, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert isinstance(full.model, Qwen2_5_VLModel)
    return full.model.eval(), AutoProcessor.from_pretrained(tiny_path)


@pytest.fixture(scope="session")
def cases(media) -> dict[str, dict]:
    return {
        "text": {"text": "a red square moves to the right"},
        "image": {"image": media["image"]},
        "video": {"video": media["video"]},
        "text+image": {"text": "the same square, but moving left", "image": media["image"]},
        "text+video": {"text": "describe the motion", "video": media["video_2"]},
    }


def as_input(case: dict):
    """The natural `encode` input for a case: bare values for single modalities, a dict otherwise."""
    if len(case) == 1:
        return str(next(iter(case.values())))
    return {key: str(value) for key, value in case.items()}


@pytest.mark.parametrize("kind", ["text", "image", "video", "text+image", "text+video"])
def test_encode_matches_stock_model(model, stock, cases, kind):
    reference = stock_embeddings(*stock, [cases[kind]])
    embedding = model.encode([as_input(cases[kind])])
    assert embedding.shape == (1, 64)
    assert F.cosine_similarity(embedding, reference).item() >= PARITY


def test_a_time_range_matches_stock_model(model, stock, media):
    """qwen-vl-utils' own `video_start`/`video_end`, in the reference's content element as in the input."""
    spans = [{"video_start": 2.5, "video_end": 7.0}, {"video_start": 6.0}, {"video_end": 3.0}]
    items = [{"video": media["long_video"], **span} for span in spans]
    items.append({"text": "describe the motion", "video": media["long_video"], **spans[0]})
    reference = stock_embeddings(*stock, items)
    embeddings = model.encode([{**item, "video": str(item["video"])} for item in items], batch_size=len(items))
    assert torch.all(F.cosine_similarity(embeddings, reference) >= PARITY)
    whole = model.encode([str(media["long_video"])])
    assert torch.all(F.cosine_similarity(embeddings[:3], whole) < BUG)  # each span is its own moment


def test_mixed_batch_matches_stock_model_and_single_items(model, stock, cases):
    items = list(cases.values())
    reference = stock_embeddings(*stock, items)
    batch = model.encode([as_input(item) for item in items], batch_size=len(items))
    assert torch.all(F.cosine_similarity(batch, reference) >= PARITY)
    singles = torch.cat([model.encode([as_input(item)]) for item in items])
    assert torch.all(F.cosine_similarity(batch, singles) >= 0.99999)
    # the items really differ, so order and identity are checked too
    assert F.cosine_similarity(batch[:, None], batch[None], dim=-1).fill_diagonal_(0).max() < BUG


def test_instruction_matches_stock_model(model, stock, cases):
    instruction = "Find the video that matches the description."
    reference = stock_embeddings(*stock, [cases["text"]], instruction=instruction)
    assert F.cosine_similarity(model.encode([as_input(cases["text"])], instruction=instruction), reference) >= PARITY
    default = model.encode([as_input(cases["text"])])
    assert F.cosine_similarity(default, reference).item() < BUG


def test_stock_generation_class_reads_the_same_embedding(model, tiny_path, cases):
    """mteb's route: Qwen2_5_VLForConditionalGeneration + AutoProcessor, no remote code."""
    stock_model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_path).eval()
    processor = AutoProcessor.from_pretrained(tiny_path)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert processor.tokenizer.padding_side == "left"
    items = [cases["text+video"], cases["image"]]
    reference = stock_embeddings(stock_model, processor, items)
    assert torch.all(F.cosine_similarity(model.encode([as_input(item) for item in items]), reference) >= PARITY)


def test_forward_returns_hidden_state_and_pooled_embedding(model, processor, stock, cases):
    batch = processor.prepare([as_input(cases["text+video"]), as_input(cases["text"])])
    with torch.no_grad():
        outputs = model(**batch)
        stock_outputs = stock[0](**batch)
    # GVE computes the patch embedding as a matrix product, so sums run in another order than the
    # stock Conv3d's: float32 rounding differences, no more.
    close = {"rtol": 1e-4, "atol": 1e-4}
    torch.testing.assert_close(outputs["last_hidden_state"], stock_outputs.last_hidden_state, **close)
    expected = F.normalize(stock_outputs.last_hidden_state[:, -1], dim=-1)
    torch.testing.assert_close(outputs.pooler_output, expected, **close)
    assert (batch["input_ids"][:, -1] == model.config.pooling_token_id).all()


def test_pooling_follows_the_attention_mask_with_right_padding(model, processor, cases):
    """A right-padded batch (e.g. a tokenizer set to the right) still pools the last real token."""
    items = [as_input(cases["text"]), as_input(cases["text+image"])]
    left = processor.prepare(items)
    right = processor(
        text=[processor.load(item).prompt for item in items],
        images=processor.load(items[1]).images,
        images_kwargs={"do_resize": False},
        padding=True,
        padding_side="right",
        return_tensors="pt",
    )
    assert right["attention_mask"][:, -1].tolist() != [1, 1]
    with torch.no_grad():
        torch.testing.assert_close(model(**right).pooler_output, model(**left).pooler_output, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_tiny_weights_expose_each_bug(stock, cases):
    """Each classic embedding bug, put in on purpose, moves the embedding well past the parity bound.

    With default initialisers attention is nearly uniform and most of these bugs go unseen; the tiny
    checkpoint's redrawn weights make the parity tests above able to fail.
    """
    model, processor = stock
    items = [cases["text+video"], cases["text+image"], cases["text"]]
    good = stock_embeddings(model, processor, items)

    def cosine(other):
        return F.cosine_similarity(good, other)

    inputs = stock_inputs(processor, items)
    no_types = {key: value for key, value in inputs.items() if key != "mm_token_type_ids"}
    assert cosine(F.normalize(model(**no_types).last_hidden_state[:, -1], dim=-1))[:2].max() < BUG

    wrong_time = {**inputs, "second_per_grid_ts": inputs["second_per_grid_ts"] * 4}
    assert cosine(F.normalize(model(**wrong_time).last_hidden_state[:, -1], dim=-1))[0] < BUG

    captured = {}
    hook = model.language_model.norm.register_forward_hook(lambda m, args, out: captured.update(pre=args[0]))
    model(**inputs)
    hook.remove()
    assert cosine(F.normalize(captured["pre"][:, -1], dim=-1)).max() < BUG

    assert cosine(stock_embeddings(model, processor, items, padding_side="right"))[2] < BUG
    assert cosine(stock_embeddings(model, processor, items, order=("text", "video", "image")))[:2].max() < BUG
    assert cosine(stock_embeddings(model, processor, items, pooling_token="")).max() < BUG


def test_forward_refuses_vision_inputs_without_token_types(model, processor, cases):
    batch = processor.prepare([as_input(cases["text+image"])])
    del batch["mm_token_type_ids"]
    with pytest.raises(ValueError, match="mm_token_type_ids is required with images or videos"):
        model(**batch)


def test_forward_warns_when_the_pooling_token_is_missing(model, processor):
    prompt = processor.load("a text").prompt.removesuffix(processor.pooling_token)
    bare = processor.tokenizer([prompt], return_tensors="pt")  # the seed card's bug: no pooling token
    with pytest.warns(UserWarning, match="pooling token .* do not end with it"):
        model(**bare)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_batched_vision_attention_equals_the_stock_window_loop(implementation):
    """All windows of one length in one call give the stock per-window results (to float32 rounding)."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLVisionAttention, Qwen2_5_VLVisionConfig

    from gve_tools.repo import remote_class

    config = Qwen2_5_VLVisionConfig(hidden_size=32, num_heads=4)
    config._attn_implementation = implementation
    torch.manual_seed(0)
    stock = Qwen2_5_VLVisionAttention(config).eval()
    ours = remote_class("modeling_gve.GVEVisionAttention")(config).eval()
    ours.load_state_dict(stock.state_dict())
    # windows of four lengths, interleaved as Qwen2.5-VL orders them at the edges of a frame
    cu_seqlens = torch.tensor([0, 16, 32, 40, 56, 60, 76, 84, 85])
    hidden = torch.randn(85, 32)
    rotary = (torch.randn(85, 4).repeat(1, 2).cos(), torch.randn(85, 4).repeat(1, 2).sin())  # head dim 8
    close = {"rtol": 1e-6, "atol": 1e-6}
    with torch.no_grad():
        expected = stock(hidden, cu_seqlens, rotary)
        torch.testing.assert_close(ours(hidden, cu_seqlens, rotary), expected, **close)
        ours.max_scores_per_call = 4 * 16 * 16  # one window a call
        torch.testing.assert_close(ours(hidden, cu_seqlens, rotary), expected, **close)


def test_matrix_product_patch_embedding_equals_the_stock_conv3d():
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionPatchEmbed

    from gve_tools.repo import remote_class

    torch.manual_seed(0)
    stock = Qwen2_5_VisionPatchEmbed(14, 2, 3, 48)
    ours = remote_class("modeling_gve.GVEVisionPatchEmbed")(14, 2, 3, 48)
    ours.load_state_dict(stock.state_dict())
    patches = torch.randn(50, 3 * 2 * 14 * 14)
    torch.testing.assert_close(ours(patches), stock(patches), rtol=1e-5, atol=1e-5)


def test_model_uses_the_batched_vision_modules(model):
    names = {type(block.attn).__name__ for block in model.model.visual.blocks}
    assert names == {"GVEVisionAttention"}
    assert type(model.model.visual.patch_embed).__name__ == "GVEVisionPatchEmbed"
