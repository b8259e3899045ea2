"""The generator's command line (gve_tools.synthetic.cli): folds, and outputs reproducible from the seed."""

import numpy as np
import pytest

from gve_tools.synthetic.cli import main
from gve_tools.synthetic.pairs import make_training_pairs
from gve_tools.synthetic.splits import make_test_splits
from tests.synthetic.support import decoded, is_held_out, parse, read_jsonl, write_synthetic


@pytest.mark.slow
def test_another_fold_trains_and_tests_on_its_own_combinations(tmp_path):
    write_synthetic(tmp_path, "--fold", "1")
    for row in read_jsonl(tmp_path / "train" / "pairs.jsonl"):
        if "text" in row and "this object" not in row["text"]:
            assert not any(is_held_out(event, 1) for event in parse(row["text"])), row
    for split in ("TXT", "S", "T", "PR", "LC"):
        for query in read_jsonl(tmp_path / "test" / split / "queries.jsonl"):
            assert all(is_held_out(event, 1) for event in parse(query["text"])), (split, query)
            assert not any(is_held_out(event, 0) for event in parse(query["text"])), (split, query)


@pytest.mark.slow
def test_the_generator_is_reproducible_from_its_seed(tmp_path):
    first, again, other = (tmp_path / name for name in ("a", "b", "c"))
    for folder, seed in ((first, 1), (again, 1), (other, 2)):
        make_training_pairs(folder / "train", seed, scale=0.01)
        make_test_splits(folder / "test", seed, scale=0.01)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        # x264 does not always encode the same frames to the same pixels (seen here: up to 19 levels apart on
        # 16% of the pixels, mean well under 1), so clips are compared by their mean difference: a different
        # scene (an object elsewhere, another colour) moves it by far more.
        if name.suffix == ".mp4":
            difference = np.abs(decoded(first / name).astype(int) - decoded(again / name).astype(int))
            assert difference.mean() < 1.0, name
        else:
            assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (first / "train" / "pairs.jsonl").read_text() != (other / "train" / "pairs.jsonl").read_text()


def test_scale_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--scale", "0"])
    assert exit_info.value.code == 2 and "--scale must be positive" in capsys.readouterr().err
