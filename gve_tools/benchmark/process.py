"""What the benchmarks measure of a process, and how they start one: each run is a fresh process of its own."""

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    Linux reads the high-water mark of the process's own address space (`VmHWM`): `ru_maxrss`
    carries over the parent's resident size at the fork, so a child started by a benchmark that had
    grown to 1.4 GB (writing the corpus) reported at least that, whatever the path used.
    """
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def cpu_seconds() -> float:
    """CPU time this process has used so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_command(module: str, *args: str) -> list[str]:
    """The command that runs `module`'s `main(args)` in a fresh Python of this environment.

    The child imports this checkout's tooling whatever its working directory: the working directory is left off
    its `sys.path`, so that another checkout it runs in (`benchmark_hardening.py --code`) cannot shadow it.
    """
    code = f"import sys; sys.path = [p for p in sys.path if p]; from {module} import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]
