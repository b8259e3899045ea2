"""Small text helpers shared by the tooling: short forms of values for messages, and command-line help."""

import argparse
from typing import Any


def first_line(error: BaseException) -> str:
    """An exception's first line, or its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(value: Any, limit: int = 80) -> str:
    """A value's repr, cut at `limit` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def seconds(value: float) -> str:
    """Seconds as time ranges show them: at most two decimals, at least one (8.0, 7.75, 31.25)."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def docstring_parser(doc: str, prog: str | None = None, epilog: str = "") -> argparse.ArgumentParser:
    """An argument parser whose help is a command's docstring: its text, then its `    python ...` examples.

    `epilog` (exit statuses, notes) follows the examples.
    """
    description, examples = doc.split("\n\n    python", 1)
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n    python" + examples.rstrip() + (f"\n\n{epilog}" if epilog else ""),
    )
