"""How connlint's time grows with the size of what it checks.

Generates modules of growing size along one axis at a time (statements in one function, acquisitions in
one function, leaking acquisitions in one function, nesting depth of blocks, bytes of a module), times
``connlint.runner.check_file`` on each, and prints the growth curve: time per size, the ratio of each
step's time to the previous one next to the ratio of sizes, and a flag where time grows faster than size.
The largest size of each axis is also run end to end (``connlint check FILE`` in a new interpreter)
against the 2-second target of issue 5.

    python benchmarks/scaling.py                 # all axes, default sizes
    python benchmarks/scaling.py --quick         # smaller sizes (a few seconds)
    python benchmarks/scaling.py --json out.json

The generators are also used by tests/test_scaling_shapes.py (shapes and results, never timings).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

TARGET_SECONDS = 2.0
# CPython's tokenizer allows 100 indentation levels (column 0 included): a function body at level 1
# holds at most 98 nested blocks; with the def itself that is 99 blocks, the deepest any file can have.
MAX_NESTED_BLOCKS = 98
SUPER_LINEAR = 1.5  # time ratio / size ratio above this at a step: flagged

HEADER = "import sqlite3\n\n\n"


# ---------------------------------------------------------------------------------------------- generators


def big_function(statements: int, acquisitions: int, branch_depth: int = 6, leak_every: int = 0) -> str:
    """One function of about ``statements`` statements holding ``acquisitions`` connections, each
    closed in a ``finally`` (or, for every ``leak_every``-th, only on the normal path), with plain
    statements and if/else ladders ``branch_depth`` deep between them."""
    acquisitions = max(1, acquisitions)
    per_acq = max(4, statements // acquisitions)
    out = [HEADER, "def work(path, rows, flag):\n", "    total = 0\n"]
    written = 1
    for i in range(acquisitions):
        leaky = leak_every and i % leak_every == 0
        pad = "    "
        out.append(f"{pad}c{i} = sqlite3.connect(path)\n")
        if not leaky:
            out.append(f"{pad}try:\n")
            pad = "        "
        body = per_acq - 3
        depth = 0
        needs_else = False
        for k in range(body):
            if k % 8 == 0 and depth < branch_depth and k + 2 < body:
                out.append(f"{pad}{'    ' * depth}if flag > {k}:\n")
                depth += 1
                needs_else = True
            elif k % 8 == 4 and needs_else and k + 1 < body:
                out.append(f"{pad}{'    ' * depth}total += c{i}.execute('select {k}').fetchone()[0]\n")
                out.append(f"{pad}{'    ' * (depth - 1)}else:\n")
                needs_else = False
            else:
                out.append(f"{pad}{'    ' * depth}total += rows[{k % 7}] * {k}\n")
        if leaky:
            out.append(f"{pad}c{i}.close()\n")
        else:
            out.append("    finally:\n        c" + str(i) + ".close()\n")
        written += per_acq
    out.append("    return total\n")
    return "".join(out)


def leaking_function(acquisitions: int) -> str:
    """One function where every connection leaks on some path (each finding needs its own witness path)."""
    out = [HEADER, "def work(path, flag):\n"]
    for i in range(acquisitions):
        out.append(f"    c{i} = sqlite3.connect(path)\n    if flag == {i}:\n        return {i}\n")
    out.extend(f"    c{i}.close()\n" for i in range(acquisitions))
    out.append("    return -1\n")
    return "".join(out)


def one_with(items: int) -> str:
    """``with a.cursor() as c0, a.cursor() as c1, ...:`` -- cursors whose ``with`` does not close the
    connection they came from; each item is a separately tracked resource."""
    cms = ", ".join(f"conn.cursor() as c{i}" for i in range(items))
    return f"{HEADER}def work(path):\n    conn = sqlite3.connect(path)\n    with {cms}:\n        pass\n"


_BLOCKS = (
    ("if flag > {d}:", ""),
    ("for x{d} in rows:", ""),
    ("with lock:", ""),
    ("try:", "finally:\n{pad}    total += {d}"),
    ("while flag > {d}:", ""),
)


def nested_blocks(depth: int) -> str:
    """A connection opened outside ``depth`` nested blocks (if/for/with/try-finally/while in turn) and
    closed in the innermost one only: a leak on every path that skips a block."""
    depth = min(depth, MAX_NESTED_BLOCKS)
    out = [HEADER, "def work(path, rows, flag, lock):\n", "    total = 0\n", "    conn = sqlite3.connect(path)\n"]
    closers: list[str] = []
    for d in range(depth):
        pad = "    " * (d + 1)
        head, tail = _BLOCKS[d % len(_BLOCKS)]
        out.append(pad + head.format(d=d) + "\n")
        closers.append(pad + tail.format(d=d, pad=pad) + "\n" if tail else "")
    out.append("    " * (depth + 1) + "conn.close()\n")
    out.extend(reversed(closers))
    out.append("    return total\n")
    return "".join(out)


_MODULE_UNIT = '''

def load_{i}(path, key):
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("select v from t where k = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row


def leak_{i}(path):
    conn = sqlite3.connect(path)
    rows = conn.execute("select * from t").fetchall()
    if not rows:
        return None
    conn.close()
    return rows


class Repo{i}:
    def __init__(self, path):
        self.path = path

    def count(self):
        with sqlite3.connect(self.path) as conn:
            return conn.execute("select count(*) from t").fetchone()[0]

    def helper(self, values):
        total = 0
        for v in values:
            if v % 3 == 0:
                total += v * {i}
            elif v % 3 == 1:
                total -= v
            else:
                total ^= v
        return total
'''


_PLAIN_UNIT = '''

def transform_{i}(values, scale=1.0):
    """Scale, clip and sum the values."""
    out = []
    for v in values:
        if v is None:
            continue
        x = v * scale + {i}
        out.append(x if x < 1e9 else 1e9)
    return sum(out), len(out)


TABLE_{i} = {{"name": "t{i}", "columns": ["id", "value", "created"], "rows": [({i}, "x", None), ({i} + 1, "y", None)]}}
'''


def module_of_bytes(size: int, db_every: int = 1) -> str:
    """A module of about ``size`` bytes: units of clean, leaking and class-based DB code; with
    ``db_every=N`` only one unit in N is database code and the others are plain functions and data."""
    parts = [HEADER]
    n = 0
    written = len(HEADER)
    while written < size:
        unit = (_MODULE_UNIT if n % db_every == 0 else _PLAIN_UNIT).format(i=n)
        parts.append(unit)
        written += len(unit)
        n += 1
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- axes


@dataclass(frozen=True)
class Axis:
    name: str
    unit: str
    sizes: tuple[int, ...]
    make: Callable[[int], str]
    target: bool  # issue 5 names a 2 s target for the largest size


def axes(quick: bool = False) -> list[Axis]:
    def q(full: tuple[int, ...], small: tuple[int, ...]) -> tuple[int, ...]:
        return small if quick else full

    return [
        Axis("statements in one function (acquisitions = statements/40)", "statements",
             q((1250, 2500, 5000, 10000, 20000), (500, 1000, 2000)),
             lambda n: big_function(n, n // 40, leak_every=10), target=True),
        Axis("acquisitions in one 20,000-statement function", "acquisitions",
             q((62, 125, 250, 500), (10, 20, 40)),
             lambda n: big_function(20000 if not quick else 2000, n, leak_every=10), target=True),
        Axis("leaking acquisitions in one function", "acquisitions",
             q((25, 50, 100, 200), (10, 20, 40)), leaking_function, target=False),
        Axis("items of one with-statement", "items", q((25, 50, 100), (10, 20, 40)), one_with, target=False),
        Axis("nested blocks in one function", "blocks", q((12, 25, 50, MAX_NESTED_BLOCKS), (10, 20, 40)),
             nested_blocks, target=True),
        Axis("module size, database code throughout", "bytes", q((312_500, 625_000, 1_250_000, 2_500_000, 5_000_000),
                                       (50_000, 100_000, 200_000)),
             module_of_bytes, target=True),
        Axis("module size, one database unit in 20", "bytes",
             q((312_500, 625_000, 1_250_000, 2_500_000, 5_000_000), (50_000, 100_000, 200_000)),
             lambda n: module_of_bytes(n, db_every=20), target=True),
    ]


# ---------------------------------------------------------------------------------------------- timing


@dataclass
class Step:
    size: int
    seconds: float
    findings: int
    error: str | None
    time_ratio: float | None = None
    size_ratio: float | None = None
    super_linear: bool = False


@dataclass
class Curve:
    axis: str
    unit: str
    steps: list[Step] = field(default_factory=list)
    end_to_end: float | None = None  # seconds, the largest size, new interpreter
    target: bool = False

    @property
    def flagged(self) -> bool:
        return any(s.super_linear for s in self.steps)

    @property
    def exponent(self) -> float | None:
        """Slope of log(time) against log(size) between the first and last step (1.0: linear)."""
        import math

        first, last = self.steps[0], self.steps[-1]
        if first.seconds <= 0 or last.seconds <= 0 or first.size == last.size:
            return None
        return math.log(last.seconds / first.seconds) / math.log(last.size / first.size)


def _time_check(path: str, repeat: int) -> tuple[float, int, str | None]:
    from connlint.checker import Options
    from connlint.runner import check_file

    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = check_file(path, Options())
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), len(result.findings), result.error


def end_to_end(path: str, timeout: float = 600) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", "--no-cache", path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    return time.perf_counter() - start


def measure(axis: Axis, workdir: str, budget_seconds: float = 120.0) -> Curve:
    curve = Curve(axis.name, axis.unit, target=axis.target)
    path = os.path.join(workdir, "scaling_case.py")
    previous: Step | None = None
    for size in axis.sizes:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(axis.make(size))
        seconds, findings, error = _time_check(path, repeat=1)
        if seconds < 2.0:  # the machine may be busy: the best of three is the steadiest figure
            seconds = min(seconds, _time_check(path, repeat=2)[0])
        step = Step(size, seconds, findings, error)
        if previous is not None and previous.seconds > 0:
            step.time_ratio = seconds / previous.seconds
            step.size_ratio = size / previous.size
            # below 50 ms, noise dominates: only flag steps that take real time
            step.super_linear = seconds > 0.05 and step.time_ratio > SUPER_LINEAR * step.size_ratio
        curve.steps.append(step)
        previous = step
        if seconds > budget_seconds:
            break  # the next step would take far too long: the curve already shows it
    if axis.target:
        curve.end_to_end = end_to_end(path)
    return curve


def report(curves: list[Curve], out: object = None) -> str:
    lines = []
    for curve in curves:
        lines.append(f"\n{curve.axis}")
        lines.append(f"  {curve.unit:>12}  {'seconds':>9}  {'x time':>7}  {'x size':>7}  findings")
        for s in curve.steps:
            ratio = f"{s.time_ratio:7.2f}" if s.time_ratio is not None else "       "
            size_ratio = f"{s.size_ratio:7.2f}" if s.size_ratio is not None else "       "
            flag = "  SUPER-LINEAR" if s.super_linear else ""
            what = s.error or str(s.findings)
            lines.append(f"  {s.size:>12,}  {s.seconds:9.3f}  {ratio}  {size_ratio}  {what}{flag}")
        exp = curve.exponent
        if exp is not None:
            lines.append(f"  growth exponent (log-log, first to last): {exp:.2f}  (1.0 = linear)")
        if curve.end_to_end is not None:
            verdict = "PASS" if curve.end_to_end <= TARGET_SECONDS else "FAIL"
            lines.append(f"  largest size end to end (connlint check FILE): {curve.end_to_end:.2f} s "
                         f"[target <= {TARGET_SECONDS:g} s: {verdict}]")
    text = "\n".join(lines) + "\n"
    return text


def run(quick: bool = False, only: str | None = None) -> list[Curve]:
    curves = []
    with tempfile.TemporaryDirectory(prefix="connlint-scaling-") as workdir:
        for axis in axes(quick):
            if only and only not in axis.name:
                continue
            curve = measure(axis, workdir)
            curves.append(curve)
            print(report([curve]), end="", flush=True)
    return curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--only", metavar="TEXT", help="run the axes whose name contains TEXT")
    parser.add_argument("--json", metavar="FILE", help="write the curves as JSON")
    args = parser.parse_args(argv)
    curves = run(args.quick, args.only)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([to_json(c) for c in curves], fh, indent=2)
    flagged = [c.axis for c in curves if c.flagged]
    if flagged:
        print("\nsuper-linear growth: " + "; ".join(flagged))
    return 0


def to_json(curve: Curve) -> dict[str, object]:
    data = asdict(curve)
    data["exponent"] = curve.exponent
    data["flagged"] = curve.flagged
    return data


def median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
