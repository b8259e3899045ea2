"""The card tests' fixture: the README as rendered now."""

import pytest

from gve_tools.card.render import render_model_card


@pytest.fixture(scope="module")
def card() -> str:
    return render_model_card()
