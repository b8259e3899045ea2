"""The synthetic data tests' fixture: a small data set, written once."""

from pathlib import Path

import pytest

from tests.synthetic.support import write_synthetic


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """train/ and test/ of seed 3 at scale 0.02, written by the command line."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))
