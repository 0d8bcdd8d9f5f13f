"""Run loads of hostile files in a child process, so a crash is a test failure, not a dead run.

The child imports what it needs, then caps its own address space (RLIMIT_AS) at what it has
mapped plus `budget_mb`, so a load that tries to allocate gigabytes fails fast inside the child
(MemoryError / an allocator error -- never the real thing) instead of exhausting the machine.
Each case's outcome comes back as JSON: its exception class chain and message, or its result.
The parent asserts the exit code is 0: a segfault or abort is a negative return code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_HARNESS = '''
import json, resource, sys
{setup}

def _mapped():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))

_soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (_mapped() + {budget}, _hard))
_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_out = {{}}
for _label, _case in CASES:
    try:
        _value = _case()
        _out[_label] = {{"ok": True, "value": repr(_value)[:300]}}
    except BaseException as _err:  # the parent judges every outcome
        _out[_label] = {{"ok": False, "error": type(_err).__name__, "message": str(_err),
                        "classes": [c.__name__ for c in type(_err).__mro__]}}
_out["peak_rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _base) / 1024
print("RESULTS " + json.dumps(_out))
'''


def run_isolated(setup, budget_mb=1024, timeout=300, env=None):
    """Run `setup` (Python source defining CASES = [(label, zero-argument callable)]) in a child.

    Returns {label: outcome} plus "peak_rss_growth_mb" (peak RSS above the post-import level).
    """
    script = _HARNESS.format(setup=setup, budget=int(budget_mb) << 20)
    child_env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2", TF_CPP_MIN_LOG_LEVEL="3",
                     CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT, **(env or {}))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=child_env, capture_output=True,
                          text=True, timeout=timeout)
    tail = (proc.stdout[-2000:] + proc.stderr[-4000:]).strip()
    assert proc.returncode == 0, f"child exited with {proc.returncode} (negative = killed by a signal):\n{tail}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"child printed no results:\n{tail}"
    return json.loads(lines[-1][len("RESULTS "):])


def assert_refused(outcomes, label, error_class, path=None, match=None):
    """The case failed cleanly: `error_class` in its class chain, one line, naming `path`."""
    import re

    outcome = outcomes[label]
    assert not outcome["ok"], f"{label}: loaded instead of being refused: {outcome['value']}"
    assert error_class in outcome["classes"], f"{label}: {outcome['error']}: {outcome['message']}"
    message = outcome["message"]
    assert "\n" not in message, f"{label}: message is not one line: {message!r}"
    if path is not None:
        assert str(path) in message, f"{label}: message does not name {path}: {message}"
    if match is not None:
        assert re.search(match, message), f"{label}: {message!r} does not match {match!r}"
    return message
