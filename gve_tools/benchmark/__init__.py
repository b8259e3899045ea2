"""The benchmarks (`scripts/benchmark.py`, `scripts/benchmark_hardening.py`); their figures are in `benchmarks/`.

Modules:
    corpus         the throughput benchmark's generated corpus of videos, images and texts
    throughput     its runs: the model, the stage clock and its instrumentation, each path in a process of its own
    report         its report: the table of every path's figures and the bounds they give
    cli            its command line (`main`)
    hardening      the hardening benchmark's hostile cases, each served in a fresh process
    hardening_cli  its command line (`main`)
    process        what both measure of a process (peak RSS, CPU time) and how they start their child processes
"""
