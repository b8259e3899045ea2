#!/usr/bin/env python
"""Compare vLLM's GVE embeddings with `model.encode` on text, image, video and composed inputs (GPU machine).

The command line of `gve_tools.vllm_parity`; `--help` lists its options.
"""

import sys

from gve_tools.vllm_parity import main

if __name__ == "__main__":
    sys.exit(main())
