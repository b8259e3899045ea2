#!/usr/bin/env python
"""Peak memory and time of hostile inputs: the media cases of issue #17, and the worst requests the limits allow.

The command line of `gve_tools.benchmark.hardening_cli`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.hardening_cli import main

if __name__ == "__main__":
    sys.exit(main())
