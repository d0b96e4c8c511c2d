"""The peak resident memory of this process, as the benchmarks report it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB: Linux's ``VmHWM``, which starts again at ``exec``.

    ``getrusage``'s ``ru_maxrss`` is kept across ``exec``: a child that ``multiprocessing``'s
    spawn starts from a parent holding 140 MB reports at least 140 MB, whatever it used itself
    (bench_sync's nightly runs reported the parent's 138 MB beside their own 50 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
