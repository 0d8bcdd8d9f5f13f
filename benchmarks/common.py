"""Shared helpers of the benchmark scripts: environment line, medians, tables."""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment():
    """One line: date, host CPU, cores, load, versions."""
    import importlib.metadata as md

    versions = []
    for pkg in ("tensorflow", "tensorflow-cpu", "keras", "torch", "albumentations"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {cpu_name()}, {os.cpu_count()} logical CPUs; load avg {load}; "
        f"python {platform.python_version()}; " + ", ".join(versions)
    )


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def table(header, rows):
    """A GitHub-markdown table as a string."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def fmt(x, digits=2):
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"
