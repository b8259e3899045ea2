"""Upload a built GVE folder to the Hugging Face Hub: create the repo, upload the allowlisted files, tag.

It refuses a folder that fails the build checks (`build_checkpoint.check_folder`) or whose README
differs from what the model card generator writes for it. Only the files named by the allowlist
(`gve_tools.repo.HUB_ALLOW_PATTERNS`) are uploaded: never tests, scripts or other files.
`--dry-run` prints exactly what would be uploaded (each file and its size, the repo, the revision,
the tag) and contacts nothing. The token is resolved the standard huggingface_hub way (`HF_TOKEN`,
or `hf auth login`); it is never printed nor written anywhere.

    python scripts/push_to_hub.py build/GVE-3B --repo-id Alibaba-NLP/GVE-3B --dry-run
    python scripts/push_to_hub.py build/GVE-3B --repo-id Alibaba-NLP/GVE-3B --revision v1.1-rc --create-pr
    python scripts/push_to_hub.py build/GVE-3B --repo-id Alibaba-NLP/GVE-3B --tag v1.1
"""

import argparse
import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path

from gve_tools.errors import GVEToolsError
from gve_tools.repo import HUB_ALLOW_PATTERNS


class PushError(GVEToolsError, RuntimeError):
    """A folder or request that cannot be pushed; the message says why."""


@dataclass(frozen=True)
class UploadPlan:
    """Everything one push does, decided before anything is sent."""

    folder: Path
    repo_id: str
    files: tuple[tuple[str, int], ...]  # (path relative to the folder, size in bytes), sorted
    revision: str | None = None  # a branch; None for the default branch
    create_pr: bool = False
    tag: str | None = None
    private: bool = False
    commit_message: str = "Upload GVE checkpoint"

    def describe(self) -> str:
        """The plan, as --dry-run prints it."""
        total = sum(size for _, size in self.files)
        lines = [
            f"repo:      {self.repo_id} ({'private' if self.private else 'public'})",
            f"revision:  {self.revision or 'main'}" + (" (as a pull request)" if self.create_pr else ""),
            f"tag:       {self.tag or '(none)'}",
            f"message:   {self.commit_message}",
            f"files:     {len(self.files)}, {total:,} bytes",
        ]
        lines += [f"  {size:>15,}  {path}" for path, size in self.files]
        return "\n".join(lines)


def plan_upload(
    folder: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    create_pr: bool = False,
    tag: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    results: str | Path | None = None,
) -> UploadPlan:
    """Check `folder` and decide what to upload. Raises `PushError` naming the problem."""
    from gve_tools.checkpoint.build import CheckpointError, check_folder

    folder = Path(folder)
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    if "/" not in repo_id:
        raise PushError(f"--repo-id must be 'owner/name', got {repo_id!r}")
    if tag and create_pr:
        raise PushError("--tag and --create-pr do not go together: tag the commit once the pull request is merged")
    try:
        check_folder(folder)
    except CheckpointError as error:
        raise PushError(f"refusing to push: {error}") from error
    _check_model_card(folder, repo_id, results)
    files = sorted(
        (path.relative_to(folder).as_posix(), path.stat().st_size)
        for path in folder.rglob("*")
        if path.is_file() and any(fnmatch.fnmatch(path.relative_to(folder).as_posix(), p) for p in HUB_ALLOW_PATTERNS)
    )
    return UploadPlan(
        folder=folder,
        repo_id=repo_id,
        files=tuple(files),
        revision=revision,
        create_pr=create_pr,
        tag=tag,
        private=private,
        commit_message=commit_message or f"Upload GVE checkpoint ({len(files)} files)",
    )


def _check_model_card(folder: Path, repo_id: str, results: str | Path | None) -> None:
    """Refuse a README that is not what the generator writes for this repo (and its base model)."""
    from huggingface_hub import ModelCard

    from gve_tools.card import ModelCardError, render_model_card

    card = (folder / "README.md").read_text()
    base_model = ModelCard(card).data.base_model
    base_model = base_model[0] if isinstance(base_model, list) else base_model
    options = {"model_id": repo_id, "base_model": base_model, "audience": "hub"}
    if results is not None:
        options["results_path"] = results
    try:
        expected = render_model_card(**options)
    except ModelCardError as error:
        raise PushError(f"cannot check the model card: {error}") from error
    if card != expected:
        raise PushError(
            f"refusing to push: {folder / 'README.md'} is stale against the model card generator for {repo_id}; "
            "rebuild the folder, or regenerate the card with scripts/make_model_card.py --hub"
        )


def push(plan: UploadPlan, api=None):
    """Carry out `plan` with a `huggingface_hub.HfApi` (the token resolved the standard way)."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id=plan.repo_id, repo_type="model", private=plan.private, exist_ok=True)
    if plan.revision:
        api.create_branch(repo_id=plan.repo_id, branch=plan.revision, repo_type="model", exist_ok=True)
    commit = api.upload_folder(
        repo_id=plan.repo_id,
        repo_type="model",
        folder_path=str(plan.folder),
        allow_patterns=[path for path, _ in plan.files],
        commit_message=plan.commit_message,
        revision=plan.revision,
        create_pr=plan.create_pr,
    )
    if plan.tag:
        api.create_tag(
            repo_id=plan.repo_id,
            tag=plan.tag,
            revision=commit.oid,
            tag_message=plan.commit_message,
            repo_type="model",
        )
    return commit


def main(argv: list[str] | None = None, api=None) -> int:
    parser = argparse.ArgumentParser(
        description="Upload a built GVE folder (scripts/build_checkpoint.py) to the Hub: create the repo, upload the "
        "allowlisted files in one commit, optionally on a branch, as a pull request, and tag it.",
    )
    parser.add_argument("folder", type=Path, help="the built folder")
    parser.add_argument("--repo-id", required=True, help="target repo, e.g. Alibaba-NLP/GVE-7B")
    parser.add_argument("--private", action="store_true", help="create the repo as private (if it does not exist)")
    parser.add_argument("--revision", help="branch to commit to (created if missing; default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--tag", help="release tag to put on the new commit, e.g. v1.1")
    parser.add_argument("--commit-message", help="commit message (default: 'Upload GVE checkpoint (N files)')")
    parser.add_argument("--results", type=Path, help="UVRB results the card was generated from (default: the repo's)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be uploaded, and send nothing")
    args = parser.parse_args(argv)
    try:
        plan = plan_upload(
            args.folder,
            args.repo_id,
            revision=args.revision,
            create_pr=args.create_pr,
            tag=args.tag,
            private=args.private,
            commit_message=args.commit_message,
            results=args.results,
        )
    except PushError as error:
        parser.exit(1, f"error: {error}\n")
    print(plan.describe())
    if args.dry_run:
        print("dry run: nothing was sent")
        return 0
    commit = push(plan, api)
    print(f"pushed: {getattr(commit, 'commit_url', None) or getattr(commit, 'oid', commit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
