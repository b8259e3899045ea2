"""Training the tiny GVE on the synthetic clips (gve_tools.training)."""

import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from gve_tools.training import SETTINGS, batches, main, read_pairs, tokenizer_text, train_tiny
from tests.synthetic.support import write_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


def test_training_asks_for_its_pairs_and_keeps_an_existing_output(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/make_synthetic_data.py"):
        read_pairs(tmp_path)
    with pytest.raises(FileExistsError, match="already exists"):
        train_tiny(tmp_path / "data", tmp_path)


def test_the_tokenizer_learns_the_captions_and_the_instructions(synthetic):
    from gve_tools.synthetic import instructions

    pairs = read_pairs(synthetic / "train")
    assert all(Path(pair["document"]).is_file() for pair in pairs)
    text = tokenizer_text(pairs)
    assert all(instruction in text for instruction in instructions().values())
    assert all(pair["text"] in text.splitlines() for pair in pairs if "text" in pair)


@pytest.mark.slow
def test_training_runs_and_builds_a_checkpoint(synthetic, tmp_path):
    from transformers import AutoModel

    from gve_tools.checkpoint.build import check_folder

    out = train_tiny(synthetic / "train", tmp_path / "tiny", backbone_steps=2, lora_steps=1, groups_per_batch=2)
    check_folder(out)
    model = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert model.config.video_fps == SETTINGS["video_fps"]
    assert not any("lora" in name for name, _ in model.named_parameters())
    clip = next((synthetic / "test" / "TXT" / "media").glob("*.mp4"))
    embeddings = model.encode(["a large red circle moves left quickly", {"video": str(clip)}])
    assert embeddings.shape == (2, 128)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))


def test_repeat_draws_a_tasks_groups_that_many_times_a_pass():
    pairs = [
        {"group": g, "task": task, "document": f"{g}-{i}"}
        for g, task in enumerate(["CMP", "TXT", "S"])
        for i in range(2)
    ]
    once = next(batches(pairs, 3, random.Random(0)))
    twice = next(batches(pairs, 4, random.Random(0), {"CMP": 2}))  # a pass: the CMP group twice, the others once
    assert Counter(pair["task"] for pair in once) == {"CMP": 2, "TXT": 2, "S": 2}
    assert Counter(pair["task"] for pair in twice) == {"CMP": 4, "TXT": 2, "S": 2}


@pytest.mark.parametrize("value", ["CMP", "CMP=0", "CMP=x", "MR=2"])
def test_repeat_names_a_training_task_and_a_count(value, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--out", str(tmp_path / "out"), "--repeat", value])
    assert (
        f"argument --repeat: {value!r}: expected TASK=N, TASK one of TXT, CMP, VIS, S, T, PR, LC"
        in capsys.readouterr().err
    )
