"""`SentenceTransformer(path, trust_remote_code=True)` gives exactly `model.encode`'s embeddings."""

import json
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sentence_transformers import SentenceTransformer

from gve_tools.media import moving_square
from gve_tools.repo import ROOT, SENTENCE_TRANSFORMERS_FILES
from tests.hub import run_offline

PARITY = 0.9999
QUERY_INSTRUCTION = json.loads((ROOT / "config_sentence_transformers.json").read_text())["prompts"]["query"]


@pytest.fixture(scope="module")
def st_model(tiny_path):
    return SentenceTransformer(str(tiny_path), trust_remote_code=True, device="cpu")


@pytest.fixture(scope="module")
def inputs(media) -> list:
    frames = [Image.fromarray(frame) for frame in moving_square(6, colour="green", direction="up")]
    return [
        "a red square moves to the right",
        Image.open(media["image"]),
        str(media["image_2"]),
        str(media["video"]),
        frames,
        {"text": "the same square, moving left", "image": str(media["image"])},
        {"text": "describe the motion", "video": str(media["video_2"])},
    ]


def cosine(a, b) -> torch.Tensor:
    return F.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b))


def test_modules_are_gve_preprocessing_then_library_pooling_and_normalize(st_model):
    names = [type(module).__name__ for module in st_model]
    assert names == ["GVETransformer", "Pooling", "Normalize"]
    assert st_model[1].pooling_mode == "lasttoken"
    assert st_model.similarity_fn_name == "cosine"
    assert st_model.get_embedding_dimension() == 64


def test_each_input_kind_matches_model_encode(st_model, model, inputs):
    for item in inputs:
        assert cosine(st_model.encode([item]), model.encode([item])).item() >= PARITY


def test_a_time_range_matches_model_encode(st_model, model, media):
    items = [
        {"video": str(media["long_video"]), "video_start": 2.5, "video_end": 7.0},
        {"text": "describe the motion", "video": str(media["long_video"]), "video_start": 6.0},
    ]
    embeddings = st_model.encode(items)
    assert torch.all(cosine(embeddings, model.encode(items)) >= PARITY)
    assert cosine(embeddings[:1], model.encode([str(media["long_video"])])).item() < PARITY


def test_mixed_batch_matches_model_encode_in_input_order(st_model, model, inputs):
    embeddings = st_model.encode(inputs, batch_size=3)
    assert isinstance(embeddings, np.ndarray) and embeddings.shape == (len(inputs), 64)
    assert torch.all(cosine(embeddings, model.encode(inputs)) >= PARITY)
    tensors = st_model.encode(inputs, batch_size=len(inputs), convert_to_tensor=True, show_progress_bar=True)
    assert isinstance(tensors, torch.Tensor) and torch.all(cosine(tensors, embeddings) >= 0.99999)
    single = st_model.encode(inputs[0])
    assert single.shape == (64,)


def test_encode_query_and_encode_document_use_gve_instructions(st_model, model, inputs):
    queries = st_model.encode_query(inputs[:1] + inputs[5:])
    assert torch.all(cosine(queries, model.encode(inputs[:1] + inputs[5:], instruction=QUERY_INSTRUCTION)) >= PARITY)
    documents = st_model.encode_document(inputs[1:5])
    assert torch.all(cosine(documents, model.encode(inputs[1:5])) >= PARITY)
    # the instruction matters, and can be set per call
    assert cosine(st_model.encode_query(inputs[:1]), st_model.encode_document(inputs[:1])).item() < 0.999
    custom = st_model.encode_query(inputs[:1], prompt="Retrieve a matching clip.")
    assert cosine(custom, model.encode(inputs[:1], instruction="Retrieve a matching clip.")).item() >= PARITY


def test_similarity_is_cosine(st_model, inputs):
    a, b = st_model.encode(inputs[:3], convert_to_tensor=True), st_model.encode(inputs[3:], convert_to_tensor=True)
    torch.testing.assert_close(st_model.similarity(a, b), F.normalize(a) @ F.normalize(b).T)


def test_truncate_dim(st_model, model, inputs):
    full = model.encode(inputs[:3])
    truncated = st_model.encode(inputs[:3], truncate_dim=16, normalize_embeddings=True, convert_to_tensor=True)
    assert truncated.shape == (3, 16)
    torch.testing.assert_close(truncated, F.normalize(full[:, :16]), rtol=1e-4, atol=1e-5)
    # cosine similarity does not depend on the norm, so the scores agree without renormalising too
    raw = st_model.encode(inputs[:3], truncate_dim=16, convert_to_tensor=True)
    torch.testing.assert_close(st_model.similarity(raw, raw), truncated @ truncated.T, rtol=1e-4, atol=1e-5)


def test_video_settings_reach_the_processor(st_model, model, media):
    video = str(media["long_video"])
    four = st_model.encode([video], processing_kwargs={"video": {"max_frames": 4}})
    assert cosine(four, model.encode([video], max_frames=4)).item() >= PARITY
    assert cosine(four, model.encode([video])).item() < 0.999
    small = st_model.encode([str(media["image"])], processing_kwargs={"image": {"max_pixels": 8 * 28 * 28}})
    assert cosine(small, model.encode([str(media["image"])], image_max_pixels=8 * 28 * 28)).item() >= PARITY
    with pytest.raises(TypeError, match=r"does not use processing_kwargs\['video'\] \['max_frame'\]"):
        st_model.encode([video], processing_kwargs={"video": {"max_frame": 4}})


def test_bad_inputs_raise_the_packages_errors(st_model, media):
    with pytest.raises(ValueError, match=r"inputs\[\d\]: could not read video .*empty \(0 bytes\)"):
        st_model.encode(["fine", str(media["empty_video"])])


def test_files_are_what_sentence_transformers_saves(st_model, tiny_path, tmp_path):
    st_model.save(str(tmp_path / "saved"))
    for name in SENTENCE_TRANSFORMERS_FILES:
        ours = (tiny_path / name).read_text()
        saved = (tmp_path / "saved" / name).read_text()
        if name.endswith(".json"):
            ours, saved = json.loads(ours), json.loads(saved)
        if name == "config_sentence_transformers.json":  # sentence-transformers adds the library versions
            del saved["__version__"]
        assert ours == saved, name
    reloaded = SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(reloaded.encode(["a text"]), st_model.encode(["a text"]), rtol=1e-5, atol=1e-6)


ST_HUB_SCRIPT = textwrap.dedent(
    """
    import json
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("Alibaba-NLP/GVE-tiny", trust_remote_code=True, device="cpu")
    pinned = SentenceTransformer("Alibaba-NLP/GVE-tiny", trust_remote_code=True, device="cpu", revision="v2")
    text = ["a red square moves to the right"]
    print(json.dumps({
        "main": model.encode(text).tolist(),
        "query": model.encode_query(text).tolist(),
        "v2": pinned.encode_document(text).tolist(),
    }))
    """
)


@pytest.mark.slow
def test_loads_from_a_hub_cache_offline(hub_cache, model, tmp_path):
    output = run_offline(ST_HUB_SCRIPT, hub_cache, tmp_path)
    text = ["a red square moves to the right"]
    assert cosine(output["main"], model.encode(text)).item() >= PARITY
    assert cosine(output["query"], model.encode(text, instruction=QUERY_INSTRUCTION)).item() >= PARITY
    assert cosine(output["v2"], model.encode(text, instruction="Revision two.")).item() >= PARITY
