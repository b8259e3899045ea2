"""Peak memory and time of hostile inputs: the media cases of issue #17, and the worst requests the limits allow.

Each case runs in a fresh process that loads a tiny GVE (the random tiny checkpoint, with GVE's settings), then
serves the case once: through the endpoint handler with its default limits, or through `model.encode` with the
library's. The process reports its peak RSS (VmHWM, model included), the CPU and wall time of the case alone,
and the outcome. `--code` runs the cases on another checkout (e.g. a worktree of the commit before the
hardening) for the "before" figures; cases that checkout cannot express are skipped.

    python scripts/benchmark_hardening.py                              # every case, this checkout
    python scripts/benchmark_hardening.py --code /tmp/before --json before.json
    python scripts/benchmark_hardening.py --cases 4k-64-frames,worst-images --timeout 300
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gve_tools.benchmark.hardening import CASES, run, run_case, table
from gve_tools.repo import ROOT
from gve_tools.text import docstring_parser


def main(argv: list[str] | None = None) -> int:
    parser = docstring_parser(__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--work", type=Path, help="folder for the media and checkpoint (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a case may run (default 600)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--run-case", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_case:  # a child process: one case, figures as JSON on the last line
        print(json.dumps(run_case(args.run_case, args.checkpoint, str(args.work / "media"), str(args.code))))
        return 0
    unknown = sorted(set(args.cases.split(",")) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; the cases are {list(CASES)}")
    with tempfile.TemporaryDirectory(prefix="gve-hardening-") as temporary:
        results = run(args.cases.split(","), args.code.resolve(), args.work or Path(temporary), args.timeout)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
