#!/usr/bin/env python
"""Write README.md, GVE's model card, from model_card/template.md and the UVRB results in model_card/uvrb_results.json.

The command line of `gve_tools.card.cli`; `--help` lists its options.
"""

import sys

from gve_tools.card.cli import main

if __name__ == "__main__":
    sys.exit(main())
