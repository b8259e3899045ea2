"""gve_tools.evaluation.cli: the help explains the format; errors are usage errors (exit 2) naming the fault."""

import re
import subprocess
import sys

import pytest

from gve_tools.evaluation.cli import main
from gve_tools.repo import ROOT
from tests.evaluation.support import text_dataset


@pytest.mark.slow
def test_scripts_help_explains_the_format():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for needle in ("queries.jsonl", "candidates.jsonl", "qrels.jsonl", "--cache-dir", "Ties are broken"):
        assert needle in result.stdout


def test_errors_exit_with_status_2_and_say_what_is_wrong(tmp_path, capsys):
    cases = [
        ([str(tmp_path / "empty")], "benchmark folder \\S*empty does not exist"),  # an EvaluationError
        ([str(tmp_path), "--model", str(tmp_path / "nothing")], "no such checkpoint folder"),  # a ModelLoadError
        ([str(tmp_path), "--batch-size", "0"], "--batch-size must be at least 1"),
        ([str(tmp_path), "--rescore", "10"], "float32 vectors need none"),
        ([str(tmp_path), "--vectors", "binary", "--rescore", "-1"], "rescore must be 0 \\(off\\)"),
        ([str(tmp_path), "--truncate-dim", "0"], "dims must be at least 1"),
        ([str(tmp_path), "--vectors", "int4"], "invalid choice: 'int4'"),
    ]
    text_dataset(tmp_path / "toy")
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert re.search(f"evaluate.py: error: .*{message}", capsys.readouterr().err), argv
