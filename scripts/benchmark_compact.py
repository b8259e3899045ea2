#!/usr/bin/env python
"""Memory and storage: what compact vectors, truncated dimensions and quantized weights cost in retrieval quality.

The command line of `gve_tools.benchmark.compact`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.compact import main

if __name__ == "__main__":
    sys.exit(main())
