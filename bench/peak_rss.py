"""Run a command and read its own peak resident memory.

Linux carries a process's peak RSS across exec, so a command spawned straight from a large
process (a benchmark holding tokenised texts, a pytest session with models loaded) reports
at least that process's size. This file, run as a script, is a small launcher instead: it
spawns the command, writes the command's peak from wait4 to a file, passes SIGINT/SIGTERM
on, and dies of the signal that killed the command. Its own start (tens of ms) is the same
for every run it launches. Used by bench_roofline.py and the streaming-memory test.

    python bench/peak_rss.py PEAK_FILE COMMAND [ARG ...]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["call_with_peak_rss"]


def call_with_peak_rss(cmd: list[str], **popen: Any) -> tuple[int, float | None]:
    """``subprocess.call(cmd, **popen)`` through the launcher: the exit status and the
    command's own peak RSS in MB (None where it did not run to an end)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_rss_kb"
        code = subprocess.call([sys.executable, str(Path(__file__).resolve()), str(peak), *cmd], **popen)
        return code, int(peak.read_text()) / 1024 if peak.is_file() else None


def main(argv: list[str]) -> int:
    peak, cmd = argv[0], argv[1:]
    proc = subprocess.Popen(cmd)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _: proc.send_signal(s))
    _, status, usage = os.wait4(proc.pid, 0)
    Path(peak).write_text(str(usage.ru_maxrss))
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # die of the same signal (Python handles or ignores these three)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
