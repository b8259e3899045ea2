#!/usr/bin/env python
"""Train the bundled tiny GVE on the synthetic clips, on a CPU, in two stages, and build it like the real one.

The command line of `gve_tools.training`; `--help` lists its options.
"""

import sys

from gve_tools.training import main

if __name__ == "__main__":
    sys.exit(main())
