#!/usr/bin/env python
"""Serve GVE embeddings on 127.0.0.1 with Ray Serve: the endpoint handler's Hub schemas, OpenAI's embeddings
schema, cross-request batching, bounded queues (503 with Retry-After), health and stats; local Ray, or a cluster
with --address.

The command line of `gve_tools.serving.cli`; `--help` lists its options.
"""

import sys

from gve_tools.serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
