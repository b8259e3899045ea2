#!/usr/bin/env python
"""Load-test a GVE server (scripts/serve.py) on 127.0.0.1: N concurrent clients, bounded by count and time, every
answer checked against model.encode; throughput against one offline encode call, latency percentiles, answers by
kind, the server's batch sizes and peak memory; optionally the replica killed mid-run.

The command line of `gve_tools.serving.load_test_cli`; `--help` lists its options.
"""

import sys

from gve_tools.serving.load_test_cli import main

if __name__ == "__main__":
    sys.exit(main())
