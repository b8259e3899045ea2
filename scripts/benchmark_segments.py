#!/usr/bin/env python
"""Long videos as segments: encode_segments against separate range inputs, and its memory on a 2-hour video.

The command line of `gve_tools.benchmark.segments`; `--help` lists its options.
"""

import sys

from gve_tools.benchmark.segments import main

if __name__ == "__main__":
    sys.exit(main())
