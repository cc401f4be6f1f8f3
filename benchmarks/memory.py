"""Peak memory of a piece of work, as Linux counts it for this process: reset the high-water mark
(``/proc/self/clear_refs``), do the work, read ``VmHWM`` against ``VmRSS`` before it. Each
benchmark measures one configuration per process, so that one run's peak is not another's."""

from __future__ import annotations

import json
import subprocess
import sys


def status(key: str) -> int:
    """A ``/proc/self/status`` figure (``VmRSS``, ``VmHWM``) in bytes; 0 where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def in_fresh_process(script: str, argv: list[str]) -> dict:
    """Run ``script`` with ``argv`` in a new Python process and return the JSON of its last line
    of output: one configuration, its peak figures its own."""
    out = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
