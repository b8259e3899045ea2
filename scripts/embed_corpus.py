#!/usr/bin/env python
"""Embed a corpus with GVE on Ray Data, into resumable Parquet shards, and optionally a FAISS index; with
`--segment-seconds`, long videos as segments, one vector each with its start and end.

The command line of `gve_tools.corpus.cli`; `--help` lists its options.
"""

import sys

from gve_tools.corpus.cli import main

if __name__ == "__main__":
    sys.exit(main())
