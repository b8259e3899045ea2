#!/usr/bin/env python
"""The one GPU check: bf16/fp32 parity, sdpa/flash-attention, the 3B-shape benchmark and vLLM parity, one file.

The command line of `gve_tools.gpu_check`; `--help` lists its options.
"""

import sys

from gve_tools.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
