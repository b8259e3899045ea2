#!/usr/bin/env python
"""Write a synthetic corpus (videos, images, texts, composed items) and its manifest, for embed_corpus.

The command line of `gve_tools.corpus.samples_cli`; `--help` lists its options.
"""

import sys

from gve_tools.corpus.samples_cli import main

if __name__ == "__main__":
    sys.exit(main())
