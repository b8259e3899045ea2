"""`scripts/make_model_card.py`: writing, checking, and naming bad inputs (gve_tools.card.cli)."""

from gve_tools.card.cli import main
from gve_tools.repo import ROOT
from tests.card.support import malformed, run_script


def test_committed_readme_is_the_generated_card(card):
    committed = (ROOT / "README.md").read_text(encoding="utf-8")
    assert committed == card, (
        "README.md is stale: it is generated from model_card/template.md and model_card/uvrb_results.json "
        "(plus handler.py's limits table and the transformers pins); run `python scripts/make_model_card.py` "
        "and commit the result"
    )


def test_cli_explains_itself():
    result = run_script("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage:")
    for option in ("--results", "--template", "--model-id", "--base-model", "--output", "--check"):
        assert option in result.stdout
    assert "model_card/uvrb_results.json" in result.stdout and "exit status" in result.stdout


def test_check_passes_on_a_fresh_file_and_fails_on_a_stale_one(tmp_path, capsys):
    output = tmp_path / "README.md"
    assert main(["--output", str(output)]) == 0
    fresh = output.read_bytes()
    assert main(["--check", "--output", str(output)]) == 0

    stale = fresh.decode().replace("| GME-7B | 0.562 |", "| GME-7B | 0.999 |")
    output.write_text(stale)
    capsys.readouterr()
    assert main(["--check", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "python scripts/make_model_card.py" in err
    assert "-| GME-7B | 0.999 |" in err and "+| GME-7B | 0.562 |" in err
    assert output.read_text() == stale  # --check writes nothing

    missing = tmp_path / "missing.md"
    assert main(["--check", "--output", str(missing)]) == 1 and not missing.exists()


def test_check_from_the_command_line(tmp_path):
    output = tmp_path / "README.md"
    output.write_text("---\nlicense: mit\n---\n\n# old\n")
    result = run_script("--check", "--output", str(output))
    assert result.returncode == 1 and "is stale" in result.stderr


def test_missing_results_file_is_named(tmp_path):
    missing = tmp_path / "nope.json"
    result = run_script("--results", str(missing), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2 and f"results file {missing} does not exist" in result.stderr
    assert not (tmp_path / "out.md").exists()


def test_missing_template_is_named(tmp_path):
    missing = tmp_path / "nope.md"
    result = run_script("--template", str(missing), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2 and f"template {missing} does not exist" in result.stderr


def test_malformed_results_from_the_command_line(tmp_path):
    path = malformed(tmp_path, lambda d: d["models"][6]["scores"].pop("CMP"))
    result = run_script("--results", str(path), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2 and "models[6] (GME-2B) has no score for column 'CMP'" in result.stderr
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"source": "x",')
    result = run_script("--results", str(invalid), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2 and f"{invalid}: not valid JSON" in result.stderr
