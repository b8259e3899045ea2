"""What the benchmarks measure of a process, and how they start one: each run is a fresh process of its own."""

import os
import resource
import sys


def process_memory_mb(pid: int | str = "self") -> dict[str, float]:
    """A process's peak (`VmHWM`) and current (`VmRSS`) resident memory in MB, read from /proc (Linux; 0.0 where it
    cannot be read)."""
    figures = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    figures[line[2:5].lower()] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"peak_mb": figures.get("hwm", 0.0), "rss_mb": figures.get("rss", 0.0)}


def process_cpu_s(pid: int | str) -> float:
    """CPU seconds another process has used so far, all its threads (user and system), read from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_command(pid: int | str) -> str:
    """The program name a process was started with (its first command-line word; Ray names its workers there)."""
    with open(f"/proc/{pid}/cmdline", "rb") as file:
        return file.read().split(b"\0", 1)[0].decode(errors="replace")


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    Linux reads the high-water mark of the process's own address space (`VmHWM`): `ru_maxrss`
    carries over the parent's resident size at the fork, so a child started by a benchmark that had
    grown to 1.4 GB (writing the corpus) reported at least that, whatever the path used.
    """
    peak = process_memory_mb()["peak_mb"]
    if peak:
        return peak
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
