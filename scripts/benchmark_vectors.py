#!/usr/bin/env python
"""Compact corpus vectors: size, build and search time, and recall of float32, int8 and binary FAISS indexes.

The command line of `gve_tools.benchmark.vectors`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.vectors import main

if __name__ == "__main__":
    sys.exit(main())
