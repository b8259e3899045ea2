#!/usr/bin/env python
"""Throughput benchmark: three ways of embedding one mixed corpus with one checkpoint, and the decode ceiling.

The command line of `gve_tools.benchmark.cli`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
