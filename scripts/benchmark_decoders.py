#!/usr/bin/env python
"""torchcodec against decord as GVE reads videos: counts, rates, frames, CPU time and embeddings per clip kind.

The command line of `gve_tools.benchmark.decoders`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.decoders import main

if __name__ == "__main__":
    sys.exit(main())
