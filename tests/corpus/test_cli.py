"""The corpus commands' command lines: scripts/embed_corpus.py, search_index.py and make_sample_manifest.py."""

import subprocess
import sys

import pytest

from gve_tools.corpus.cli import main
from gve_tools.repo import ROOT


def test_help_explains_itself(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option in ("--address", "--concurrency", "--num-gpus", "--on-error", "--float16", "--index", "--max-shards"):
        assert option in text
    for option in ("--segment-seconds", "--segment-stride"):
        assert option in text
    assert "own video_start/video_end (that span stays one vector)" in " ".join(text.split())
    assert "import gve_tools.corpus as m; help(m)" in text  # where the manifest format is described


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "options"),
    [
        ("embed_corpus.py", ("--checkpoint", "--shard-size", "--index-kind", "--segment-seconds")),
        ("search_index.py", ("--text", "--image", "--video", "--k", "--json", "--by-video")),
        ("make_sample_manifest.py", ("--items", "--bad", "--seed")),
    ],
)
def test_scripts_explain_themselves(script, options):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith(f"usage: {script}")
    for option in options:
        assert option in result.stdout
