"""The training pairs (gve_tools.synthetic.pairs): each names its task's instruction and its media."""

from gve_tools.synthetic.tasks import instructions
from tests.synthetic.support import SPLITS, read_jsonl


def test_pairs_name_their_instruction_and_media_in_numbered_groups(synthetic):
    rows = read_jsonl(synthetic / "train" / "pairs.jsonl")
    assert {row["task"] for row in rows} <= set(SPLITS)
    for row in rows:
        assert row["instruction"] == instructions()[row["task"]], row
        assert row.keys() & {"text", "image", "video"}, row
        for key in ("image", "video", "document"):
            if key in row:
                assert (synthetic / "train" / row[key]).is_file(), row
    groups = [row["group"] for row in rows]
    assert groups == sorted(groups) and set(groups) == set(range(len(set(groups))))
