"""A benchmark's results file: its markdown under a header naming the command, the machine and the date, printed
and written to `benchmarks/results/`. Every benchmark ends with one call:

    write_report(args.out, "Speed", lines)

which writes

    # Speed

    `python benchmarks/speed.py --threads 1` on AMD EPYC, 2 logical cores, load average 0.95 1.29 1.66,
    Python 3.11.7, 2026-12-07 08:00 UTC

    ...the benchmark's own lines...

The machine is described here once for every benchmark: timings on a busy two-core machine move, and the load
average beside them says how busy it was.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, "0.95 1.29 1.66" ("unknown" where the system has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> str:
    """One line: CPU model, logical cores, load average now, Python version."""
    return (f"{cpu_model()}, {os.cpu_count()} logical cores, load average {load_average()}, "
            f"Python {platform.python_version()}")


def command_line(argv: list[str] | None = None) -> str:
    """The command that ran the benchmark, as it would be typed from the repository root."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        pass
    return shlex.join(["python", script.as_posix(), *argv[1:]])


def header(title: str, command: str | None = None) -> list[str]:
    """The lines every results file starts with: its title, then the command, the machine and the date."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return [f"# {title}", "", f"`{command or command_line()}` on {machine()}, {when}", ""]


def write_report(path: str | Path, title: str, lines: list[str], *, command: str | None = None,
                 quiet: bool = False) -> str:
    """Write `header(title, command)` and `lines` to `path` (folders made as needed), print it unless `quiet`,
    and return the text."""
    text = "\n".join([*header(title, command), *lines]).rstrip("\n") + "\n"
    if not quiet:
        print(text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text
