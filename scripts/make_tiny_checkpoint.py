#!/usr/bin/env python
"""Write a complete, tiny, randomly initialised GVE checkpoint folder.

The command line of `gve_tools.tiny`; `--help` lists its options.
"""

import sys

from gve_tools.tiny import main

if __name__ == "__main__":
    sys.exit(main())
