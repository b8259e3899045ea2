#!/usr/bin/env python
"""Generate GVE's synthetic video retrieval data: clips whose content is known, training pairs, and test splits.

The command line of `gve_tools.synthetic.cli`; `--help` lists its options.
"""

import sys

from gve_tools.synthetic.cli import main

if __name__ == "__main__":
    sys.exit(main())
