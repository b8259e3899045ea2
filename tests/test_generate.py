"""Derived files: one command regenerates them all (`make generate`), and this test fails, naming it, while any is
stale (gve_tools.generate)."""

import os

from gve_tools.generate import COMMAND, Derived, derived_files, stale_files
from gve_tools.repo import BUNDLED_MODEL, CODE_FILES, ROOT


def test_every_derived_file_is_fresh():
    stale = [str(path.relative_to(ROOT)) for path in stale_files()]
    assert not stale, f"stale derived files: {', '.join(stale)}; run `{COMMAND}` and commit the result"


def test_the_list_covers_the_cards_configs_templates_and_every_bundled_code_file():
    paths = {file.path.relative_to(ROOT).as_posix() for file in derived_files()}
    bundled = BUNDLED_MODEL.relative_to(ROOT).as_posix()
    assert {"README.md", f"{bundled}/README.md", "modules.json", f"{bundled}/1_Pooling/config.json"} <= paths
    assert {
        "additional_chat_templates/embedding.jinja",
        f"{bundled}/additional_chat_templates/embedding.jinja",
    } <= paths
    assert {f"{bundled}/{name}" for name in CODE_FILES} <= paths
    for name in CODE_FILES:  # the bundled model runs the repository's own code
        assert (BUNDLED_MODEL / name).read_bytes() == (ROOT / name).read_bytes()


def test_a_stale_file_is_found_and_rewritten(tmp_path):
    text_file = Derived(tmp_path / "card.md", lambda: "the card\n")
    link = Derived(tmp_path / "bundled" / "code.py", link_to=tmp_path / "code.py")
    (tmp_path / "code.py").write_text("print('code')\n")
    assert not text_file.is_fresh() and not link.is_fresh()  # missing
    for file in (text_file, link):
        file.write()
    assert (
        text_file.is_fresh() and link.is_fresh() and (tmp_path / "bundled" / "code.py").read_text() == "print('code')\n"
    )
    (tmp_path / "card.md").write_text("edited by hand\n")
    link.path.unlink()
    link.path.write_text("print('code')\n")  # a copy, not a link: it could go stale
    assert not text_file.is_fresh() and not link.is_fresh()
    text_file.write()
    link.write()
    assert (tmp_path / "card.md").read_text() == "the card\n" and os.path.islink(link.path)
