#!/usr/bin/env python
"""Evaluate a GVE checkpoint on a folder of retrieval datasets, UVRB-style: metrics per dataset and per ability.

The command line of `gve_tools.evaluation.cli`; `--help` lists its options.
"""

import sys

from gve_tools.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
