"""GVE's model card, generated from `model_card/template.md` and a results file.

results  the results file: reading and checking it, the results table
render   the metadata block and the body, in the repository's and the Hub's renderings
cli      `python scripts/make_model_card.py`: write or check README.md (or another card)
"""

from gve_tools.card.render import AUDIENCES, render_model_card, stale_summary
from gve_tools.card.results import ModelCardError, load_results, results_table

__all__ = ["AUDIENCES", "ModelCardError", "load_results", "render_model_card", "results_table", "stale_summary"]
