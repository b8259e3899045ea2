#!/usr/bin/env python
"""Write a complete, tiny, randomly initialised GVE checkpoint folder.

The command line of `gve_tools.make_tiny_checkpoint`; `--help` lists its options.
"""

import sys

from gve_tools.make_tiny_checkpoint import main

if __name__ == "__main__":
    sys.exit(main())
