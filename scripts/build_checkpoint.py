#!/usr/bin/env python
"""Build a complete GVE checkpoint folder, ready to push, and verify it.

The command line of `gve_tools.checkpoint.build`; `--help` lists its options.
"""

import sys

from gve_tools.checkpoint.build import main

if __name__ == "__main__":
    sys.exit(main())
