"""scripts/push_to_hub.py: the dry-run plan, the exact Hub calls (against a stand-in for HfApi), refusals."""

import fnmatch
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from gve_tools.checkpoint.push import PushError, main, plan_upload, push
from gve_tools.repo import HUB_ALLOW_PATTERNS, ROOT

SCRIPT = str(ROOT / "scripts" / "push_to_hub.py")
REPO = "Alibaba-NLP/GVE-tiny"


class FakeApi:
    """Records every call `push` makes, in order, with its arguments."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "upload_folder":
                return SimpleNamespace(oid="c0ffee", commit_url=f"https://huggingface.co/{REPO}/commit/c0ffee")
            return None

        return record


@pytest.fixture()
def folder(built, tmp_path):
    """A copy of the built folder, with files that must never be pushed next to the real ones."""
    copy = shutil.copytree(built, tmp_path / "GVE-tiny")
    (copy / "notes.txt").write_text("private notes")
    (copy / "scripts").mkdir()
    (copy / "scripts" / "train.py").write_text("print('no')")
    (copy / "tests").mkdir()
    (copy / "tests" / "test_x.py").write_text("")
    return copy


def allowed_files(folder) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and any(fnmatch.fnmatch(path.relative_to(folder).as_posix(), p) for p in HUB_ALLOW_PATTERNS)
    }


def test_dry_run_lists_exactly_the_allowlisted_files(folder, capsys):
    assert main([str(folder), "--repo-id", REPO, "--dry-run", "--revision", "dev", "--tag", "v0.1"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[-1]: int(line.split()[0].replace(",", "")) for line in out.splitlines() if line[:2] == "  "}
    expected = allowed_files(folder)
    assert listed.keys() == expected
    assert {"notes.txt", "scripts/train.py", "tests/test_x.py"}.isdisjoint(listed)
    assert {"handler.py", "README.md", "model.safetensors.index.json", "1_Pooling/config.json"} <= listed.keys()
    assert any(name.startswith("model-00001-of-") for name in listed)
    for name, size in listed.items():
        assert size == (folder / name).stat().st_size
    assert f"repo:      {REPO} (public)" in out and "revision:  dev" in out and "tag:       v0.1" in out
    assert out.rstrip().endswith("dry run: nothing was sent")


def test_push_makes_exactly_these_calls(folder):
    plan = plan_upload(folder, REPO, revision="dev", tag="v0.1", private=True, commit_message="GVE tiny v0.1")
    api = FakeApi()
    commit = push(plan, api)
    assert commit.oid == "c0ffee"
    files = sorted(allowed_files(folder))
    assert api.calls == [
        ("create_repo", (), {"repo_id": REPO, "repo_type": "model", "private": True, "exist_ok": True}),
        ("create_branch", (), {"repo_id": REPO, "branch": "dev", "repo_type": "model", "exist_ok": True}),
        (
            "upload_folder",
            (),
            {
                "repo_id": REPO,
                "repo_type": "model",
                "folder_path": str(folder),
                "allow_patterns": files,
                "commit_message": "GVE tiny v0.1",
                "revision": "dev",
                "create_pr": False,
            },
        ),
        (
            "create_tag",
            (),
            {
                "repo_id": REPO,
                "tag": "v0.1",
                "revision": "c0ffee",
                "tag_message": "GVE tiny v0.1",
                "repo_type": "model",
            },
        ),
    ]


def test_pull_request_to_main(folder):
    api = FakeApi()
    push(plan_upload(folder, REPO, create_pr=True), api)
    assert [name for name, _, _ in api.calls] == ["create_repo", "upload_folder"]
    upload = api.calls[1][2]
    assert upload["create_pr"] is True and upload["revision"] is None
    assert upload["commit_message"] == f"Upload GVE checkpoint ({len(upload['allow_patterns'])} files)"


def test_token_is_resolved_by_huggingface_hub_and_never_shown(folder, monkeypatch, capsys):
    secret = "hf_" + "s3cr3t" * 6
    monkeypatch.setenv("HF_TOKEN", secret)
    created = []

    class RecordingApi(FakeApi):
        def __init__(self, *args, **kwargs):
            super().__init__()
            created.append((args, kwargs))

    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    assert main([str(folder), "--repo-id", REPO]) == 0
    assert created == [((), {})]  # no token handed over: HfApi finds HF_TOKEN itself
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    assert all(secret not in path.read_text(errors="ignore") for path in folder.rglob("*") if path.is_file())


def test_refuses_a_folder_that_fails_the_build_checks(folder, capsys):
    (folder / "handler.py").unlink()
    with pytest.raises(SystemExit) as exited:
        main([str(folder), "--repo-id", REPO, "--dry-run"])
    assert exited.value.code == 1
    assert "refusing to push" in capsys.readouterr().err


def test_refuses_a_stale_model_card(folder):
    (folder / "README.md").write_text((folder / "README.md").read_text() + "\nhand edit\n")
    with pytest.raises(PushError, match="README.md is stale against the model card generator"):
        plan_upload(folder, REPO)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--repo-id", "GVE-tiny"], "--repo-id must be 'owner/name'"),
        (["--repo-id", REPO, "--tag", "v1", "--create-pr"], "--tag and --create-pr do not go together"),
        (["--repo-id", REPO, "--results", "/nonexistent/r.json"], "results file /nonexistent/r.json does not exist"),
    ],
)
def test_bad_arguments(folder, arguments, message):
    result = subprocess.run(
        [sys.executable, SCRIPT, str(folder), *arguments, "--dry-run"], capture_output=True, text=True
    )
    assert result.returncode == 1 and message in result.stderr


@pytest.mark.slow
def test_missing_folder_and_help(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path / "absent"), "--repo-id", REPO], capture_output=True, text=True
    )
    assert result.returncode == 1 and "is not a folder" in result.stderr
    help_text = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True).stdout
    for option in ("--repo-id", "--private", "--revision", "--create-pr", "--tag", "--commit-message", "--dry-run"):
        assert option in help_text
