#!/usr/bin/env python
"""GVE's main job: index a folder of videos, answer text, image, video and composed queries with ranked results:
each video, and for one longer than a window (indexed as segments unless --no-segments) the moment that matches.

The command line of `gve_tools.video_search.cli`; `--help` lists its options.
"""

import sys

from gve_tools.video_search.cli import main

if __name__ == "__main__":
    sys.exit(main())
