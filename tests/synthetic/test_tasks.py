"""The tasks' instructions (gve_tools.synthetic.tasks), read from the remote code only when asked for."""

import subprocess
import sys

import pytest

from gve_tools.repo import ROOT, query_instruction
from gve_tools.synthetic.tasks import instructions
from tests.synthetic.support import SPLITS


def test_every_task_has_an_instruction_and_the_plain_ones_are_the_models_default():
    assert list(instructions()) == ["TXT", "CMP", "VIS", "S", "T", "PR", "LC", "MR", "VCMR"] and set(
        instructions()
    ) == set(SPLITS)
    assert {instructions()[task] for task in ("TXT", "S", "T")} == {query_instruction()}
    assert len(set(instructions().values())) == 5
    with pytest.raises(TypeError):
        instructions()["TXT"] = "changed"  # type: ignore[index]


def test_importing_the_generator_does_not_import_transformers():
    code = "import sys, gve_tools.synthetic, gve_tools.synthetic.cli; print('transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]
