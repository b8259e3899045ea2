"""The benchmarks (`scripts/benchmark.py`, `benchmark_hardening.py`, `benchmark_vectors.py`, `benchmark_compact.py`,
`benchmark_segments.py`); their figures are in `benchmarks/`.

Modules:
    corpus         the throughput benchmark's generated corpus of videos, images and texts
    throughput     its runs: the model, the stage clock and its instrumentation, each path in a process of its own
    report         its report: the table of every path's figures and the bounds they give
    cli            its command line (`main`)
    hardening      the hardening benchmark's hostile cases, each served in a fresh process
    hardening_cli  its command line (`main`)
    vectors        compact vector indexes: size, build and search time, recall, at GVE-3B/7B dimensions
    compact        memory and storage: each vector, truncation and weight setting's retrieval cost, the weights'
                   memory and the vector figures, in the results file the model card's section is made from
    segments       long videos: encode_segments against separate range inputs, and its memory on a 2-hour video
    process        what both measure of a process (peak RSS, CPU time) and how they start their child processes
"""
