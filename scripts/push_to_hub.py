#!/usr/bin/env python
"""Upload a built GVE folder to the Hugging Face Hub: create the repo, upload the allowlisted files, tag.

The command line of `gve_tools.checkpoint.push`; `--help` lists its options.
"""

import sys

from gve_tools.checkpoint.push import main

if __name__ == "__main__":
    sys.exit(main())
