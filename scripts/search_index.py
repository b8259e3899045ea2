#!/usr/bin/env python
"""Search a FAISS index built by `embed_corpus.py --index` with a text, image, video or composed query; prints
each hit's time range, and with `--by-video` scores each video by its best segment.

The command line of `gve_tools.corpus.search_cli`; `--help` lists its options.
"""

import sys

from gve_tools.corpus.search_cli import main

if __name__ == "__main__":
    sys.exit(main())
