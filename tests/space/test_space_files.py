"""The Space's folder can be pushed as a Space as it is: its card's metadata, its requirements (the tested stack, and
the tooling at a commit with what the app runs from it) and its screenshot."""

import re
import subprocess
import sys
from pathlib import Path

from huggingface_hub import SpaceCard
from packaging.requirements import Requirement
from PIL import Image

from gve_tools.card.render import SOURCE_URL
from gve_tools.repo import ROOT
from tests.space.conftest import SPACE

SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # the Hub's colorFrom/colorTo


def pins(path) -> dict[str, str]:
    """The `name==version` lines of a requirements or constraints file, by normalised name."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            versions = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            found[requirement.name.lower().replace("_", "-")] = versions[0] if versions else None
    return found


def test_the_card_is_a_gradio_space_at_the_tested_gradio():
    card = SpaceCard.load(SPACE / "README.md")
    data = card.data
    assert data.title and data.emoji and data.short_description and len(data.short_description) <= 60
    assert data.sdk == "gradio" and data.sdk_version == pins(ROOT / "constraints.txt")["gradio"]
    assert data.app_file == "app.py" and (SPACE / data.app_file).is_file()
    assert data.license == "apache-2.0" and data.python_version
    assert set(data.models) == {"Alibaba-NLP/GVE-3B", "Alibaba-NLP/GVE-7B"}
    assert {data.colorFrom, data.colorTo} <= SPACE_COLORS
    assert "![" in card.text and "(screenshot.png)" in card.text
    assert ".venv/bin/python space/app.py" in card.text


def app_modules() -> list[str]:
    """The tooling's files that importing the app loads, as paths from the repository's root."""
    script = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('app', sys.argv[1]); "
        "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
        "print('\\n'.join(getattr(module, '__file__', None) or '' for module in list(sys.modules.values())))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(SPACE / "app.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tooling = ROOT / "gve_tools"
    files = {Path(line).resolve() for line in done.stdout.splitlines() if line.endswith(".py")}
    return sorted(str(path.relative_to(ROOT)) for path in files if path.is_relative_to(tooling))


def test_the_requirements_are_the_tested_stack_and_the_tooling_at_a_commit_of_the_app():
    lines = (SPACE / "requirements.txt").read_text()
    space, tested = pins(SPACE / "requirements.txt"), pins(ROOT / "constraints.txt")
    runtime = pins(ROOT / "requirements.txt")  # GVE's runtime requirements (ranges): each pinned as tested
    assert set(space) == set(runtime), "space/requirements.txt must pin every runtime requirement, and only them"
    assert {name: space[name] for name in space} == {name: tested[name] for name in space}
    assert "gradio" not in space  # the Space installs it from sdk_version
    assert "ffmpeg" in (SPACE / "packages.txt").read_text().split()  # torchcodec's FFmpeg libraries (Debian's)

    (tooling,) = [line for line in lines.splitlines() if line.startswith("-e ")]
    owner, name = re.fullmatch(r"https://([\w-]+)\.github\.io/([\w.-]+)/?", SOURCE_URL).groups()
    match = re.fullmatch(rf"-e git\+https://github\.com/{owner}/{name}@([0-9a-f]{{40}})#egg=gve-tools", tooling)
    assert match, f"{tooling!r}: expected the source repository ({SOURCE_URL}) at a full commit"
    commit = match.group(1)
    git = ["git", "-C", str(ROOT)]
    ancestor = subprocess.run([*git, "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True, timeout=30)
    assert ancestor.returncode == 0, f"{commit} is not a commit of this repository's history"
    # what the app runs from the clone: the tooling's modules it imports, the remote code, the bundled model and
    # samples, the requirements
    paths = [*app_modules(), "configuration_gve.py", "modeling_gve.py", "processing_gve.py", "bundled"]
    paths += ["requirements.txt", ":(exclude,glob)bundled/**/*.md"]  # the bundled card is regenerated with the README
    changed = subprocess.run(
        [*git, "diff", "--stat", commit, "HEAD", "--", *paths], capture_output=True, text=True, timeout=30
    )
    assert changed.stdout == "", (
        f"what the Space runs changed since its pinned commit {commit}: pin space/requirements.txt to "
        f"`git log -1 --format=%H -- {' '.join(repr(path) for path in paths)}` once that is committed\n"
        + changed.stdout
    )


def test_the_screenshot_is_a_small_png():
    path = SPACE / "screenshot.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and 800 <= image.width <= 1600 and image.height <= 1400
    assert path.stat().st_size < 250_000
