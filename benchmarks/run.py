"""connlint against its baselines on the real-world corpus, in one run on one machine.

Runs ``connlint check`` (default -j and -j1), ``flake8 --select=E9,F`` (pyflakes only), a default
``flake8`` with and without the connlint plugin, pylint's ``consider-using-with``, ``connlint check
one_file.py`` end to end, ``connlint fix --diff`` and the scaling curves (benchmarks/scaling.py); prints
each target of issue 5 with the measured ratio and PASS/FAIL; writes the figures into
docs/performance.md (between its ``results`` markers) and the chart docs/performance.png.

    python benchmarks/run.py                          # fetches the corpus through ../shared/corpus
    python benchmarks/run.py --corpus ~/src/corpus    # any folder of Python code
    python benchmarks/run.py --skip-pylint            # pylint takes ~8 minutes over the corpus
    python benchmarks/run.py --pylint-sample 600      # pylint and connlint on the same 600 files

Every tool runs as a child process; wall time, CPU time (user + system, children included) and peak
resident memory of the largest process come from ``wait4``. The flake8 runs without the plugin use the
same flake8 with connlint's entry point filtered out of plugin discovery (``--extend-ignore=CNL`` would
still run the plugin and only hide its findings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FETCH = ROOT.parent / "shared" / "corpus" / "fetch-corpus.sh"
DOC = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance.png"
RESULTS = ROOT / "benchmarks" / "results.json"
MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"

# flake8 with the connlint plugin left out of plugin discovery, or not; everything else identical.
FLAKE8_LAUNCHER = """
import sys
import flake8.plugins.finder as finder
from flake8.main.cli import main
if sys.argv[1] == "without-connlint":
    found = finder._find_importlib_plugins
    finder._find_importlib_plugins = lambda: (p for p in found() if p.package != "connlint")
sys.exit(main(sys.argv[2:]))
"""


# connlint with the project pass switched off, for the cost of the project analysis: one round, and no
# module looks into another (no factories or helpers of other modules, no roots to find them under).
NO_PROJECT_LAUNCHER = """
import sys
from dataclasses import replace
import connlint.project as project
from connlint.runner import check_paths
project.ProjectIndex._lookup = lambda self, qualified, what: None
project.ProjectIndex.find_file = lambda self, module: None
project.check_project = lambda paths, options, jobs, config: check_paths(
    paths, replace(options, project_exports=frozenset()), jobs, config)
from connlint.cli import main
sys.exit(main(sys.argv[1:]))
"""


# connlint with astroid's inference switched off (infer.py never asked), for what the inference costs
INFERENCE_OFF_LAUNCHER = """
import sys
import connlint.infer as infer
infer.ModuleInference.receiver_class = lambda self, call: None
from connlint.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Run:
    name: str
    argv: list[str]
    wall: float = 0.0
    cpu: float = 0.0
    max_rss_mb: float = 0.0
    exit: int | None = None
    stderr_tail: str = ""
    tracebacks: int = 0
    files: int = 0
    note: str = ""


def child_env() -> dict[str, str]:
    """The environment of every measured tool: as an installed package runs. This machine sets
    PYTHONDONTWRITEBYTECODE=1, which makes every interpreter start compile connlint's modules (and
    flake8's, pylint's) from source: not what a user's installation does."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def measure(name: str, argv: list[str], cwd: Path | None = None, timeout: float = 3600,
            env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` once; wall, CPU and peak RSS of the process tree (wait4 of the child)."""
    env = env or child_env()
    run = Run(name, argv)
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            _, status, usage = _wait4(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            run.note = f"killed after {timeout:.0f} s"
        run.wall = time.perf_counter() - start
        run.exit = os.waitstatus_to_exitcode(status)
        proc.returncode = run.exit
        run.cpu = usage.ru_utime + usage.ru_stime
        run.max_rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    run.tracebacks = text.count("Traceback (most recent call last)")
    run.stderr_tail = "\n".join(text.splitlines()[-5:])
    return run


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, os.struct_rusage]:  # type: ignore[name-defined]
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.01)


# the one-file case without a project around it: 60 lines of ordinary database code, two leaks
STANDALONE = """\
import sqlite3
from contextlib import closing


def create(path):
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("create table if not exists kv (k text primary key, v text)")
        conn.commit()


def put(path, key, value):
    conn = sqlite3.connect(path)
    try:
        conn.execute("insert or replace into kv values (?, ?)", (key, value))
        conn.commit()
    finally:
        conn.close()


def get(path, key):
    conn = sqlite3.connect(path)
    row = conn.execute("select v from kv where k = ?", (key,)).fetchone()
    if row is None:
        return None
    conn.close()
    return row[0]


def keys(path):
    conn = sqlite3.connect(path)
    cur = conn.cursor()
    cur.execute("select k from kv order by k")
    return [k for (k,) in cur.fetchall()]


class Store:
    def __init__(self, path):
        self.path = path

    def count(self):
        with closing(sqlite3.connect(self.path)) as conn:
            return conn.execute("select count(*) from kv").fetchone()[0]

    def dump(self, out):
        conn = sqlite3.connect(self.path)
        try:
            for k, v in conn.execute("select k, v from kv"):
                out.write(f"{k}\\t{v}\\n")
        finally:
            conn.close()


if __name__ == "__main__":
    import sys

    create(sys.argv[1])
    put(sys.argv[1], "a", "1")
    print(get(sys.argv[1], "a"), keys(sys.argv[1]), Store(sys.argv[1]).count())
"""


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------- the corpus


def corpus_path(given: str | None) -> Path:
    if given:
        return Path(given).expanduser().resolve()
    if not FETCH.is_file():
        sys.exit(f"no --corpus given and {FETCH} is missing")
    subprocess.run(["bash", str(FETCH)], check=True)
    base = os.environ.get("CONNLINT_CORPUS") or os.path.expanduser("~/.cache/connlint-corpus")
    return Path(base) / "src"


def python_files(corpus: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from connlint.files import discover

    return list(discover([str(corpus)]))


def sample(files: list[str], n: int) -> list[str]:
    """Every k-th file of the sorted list: deterministic, spread over every package."""
    if n >= len(files):
        return files
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def line_count(files: list[str]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            total += fh.read().count(b"\n")
    return total


# ---------------------------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for tool, module in (("flake8", "flake8"), ("pyflakes", "pyflakes"), ("pylint", "pylint"), ("libcst", "libcst")):
        try:
            from importlib.metadata import version

            versions[tool] = version(module)
        except Exception:
            versions[tool] = "not installed"
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "connlint": rev.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else ""),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        **versions,
    }


# ---------------------------------------------------------------------------------------------- targets


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    passed: bool | None  # None: not measured


@dataclass
class Report:
    machine: dict[str, str]
    corpus: str
    files: int
    lines: int
    runs: dict[str, Run] = field(default_factory=dict)
    single_file: list[float] = field(default_factory=list)
    single_file_name: str = ""
    standalone: list[float] = field(default_factory=list)  # a module outside any project
    interpreter: list[float] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    scaling: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def connlint_cmd() -> list[str]:
    script = Path(sys.executable).with_name("connlint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "connlint"]


def run_all(args: argparse.Namespace) -> Report:
    corpus = corpus_path(args.corpus)
    files = python_files(corpus)
    report = Report(machine(), str(corpus), len(files), line_count(files))
    say(f"corpus: {corpus}: {report.files} files, {report.lines:,} lines")
    say("machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items()))
    cl = connlint_cmd()
    flake8 = [sys.executable, "-c", FLAKE8_LAUNCHER]
    cwd = corpus
    runs = report.runs

    def go(key: str, argv: list[str], **kw: object) -> Run:
        say(f"... {key}: {' '.join(argv[:1] + [a for a in argv[1:] if not a.startswith(chr(10))][:8])}")
        r = measure(key, argv, cwd=cwd, **kw)  # type: ignore[arg-type]
        say(f"    {r.wall:8.2f} s wall  {r.cpu:8.2f} s cpu  {r.max_rss_mb:6.0f} MB  exit {r.exit}"
            + (f"  TRACEBACKS: {r.tracebacks}" if r.tracebacks else "") + (f"  {r.note}" if r.note else ""))
        runs[key] = r
        return r

    for _ in range(args.repeat):
        for key, jobs in (("connlint", []), ("connlint -j1", ["-j1"])):
            # --no-cache: these runs measure the analysis itself, the cache has rows of its own
            r = go(key, [*cl, "check", "--format", "concise", "--no-cache", *jobs, "."])
            _keep_best(runs, key, r)
    # right after check, so that the ratio compares two runs made under the same load; both at their
    # default -j (one process per CPU), the way users run them
    if args.skip_fix:
        report.notes.append("connlint fix --diff: skipped (--skip-fix)")
    elif _has_fix(cl):
        go("connlint fix --diff", [*cl, "fix", "--diff", "."], timeout=args.fix_timeout)
    else:
        report.notes.append("connlint fix --diff: not measured, this connlint has no 'fix' command")
    if not args.skip_project:
        project_runs(go, cl, files, args.single_repeat, report, corpus_repeat=args.repeat)
    go("flake8 E9,F", [*flake8, "without-connlint", "--select=E9,F", "."])
    if not args.skip_flake8_default:
        go("flake8 default", [*flake8, "without-connlint", "."])
        go("flake8 default + connlint", [*flake8, "with-connlint", "."])
    if not args.skip_pylint:
        pylint = [sys.executable, "-m", "pylint", "--disable=all", "--enable=consider-using-with",
                  f"--jobs={os.cpu_count() or 1}", "--score=n", "--persistent=n"]
        if args.pylint_sample:
            subset = [os.path.relpath(p, corpus) for p in sample(files, args.pylint_sample)]
            listing = Path(tempfile.mkdtemp()) / "files.txt"
            listing.write_text("\n".join(subset))
            report.notes.append(f"pylint measured on a deterministic sample of {len(subset)} files "
                                f"({line_count([str(corpus / p) for p in subset]):,} lines); "
                                "connlint on the same files")
            go("pylint", [*pylint, *subset], timeout=args.pylint_timeout)
            go("connlint (pylint sample)", [*cl, "check", "--format", "concise", *subset])
        else:
            go("pylint", [*pylint, *[os.path.relpath(p, corpus) for p in files]], timeout=args.pylint_timeout)
    single = args.single_file or _pick_single_file(files)
    say(f"... single file: {single}")
    measure("warm-up", [*cl, "check", single])  # writes the bytecode caches an installation has
    report.single_file_name = os.path.relpath(single, corpus)
    standalone = Path(tempfile.mkdtemp()) / "standalone.py"
    standalone.write_text(STANDALONE)
    measure("warm-up", [*cl, "check", str(standalone)])
    for _ in range(args.single_repeat):
        report.single_file.append(measure("one file", [*cl, "check", single]).wall)
        report.standalone.append(measure("standalone", [*cl, "check", str(standalone)]).wall)
        report.interpreter.append(measure("python -c pass", [sys.executable, "-c", "pass"]).wall)
    say(f"    median {statistics.median(report.single_file):.3f} s; a module outside any project "
        f"{statistics.median(report.standalone):.3f} s; "
        f"interpreter alone {statistics.median(report.interpreter):.3f} s")
    if not args.skip_scaling:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import scaling

        say("... scaling")
        report.scaling = [scaling.to_json(c) for c in scaling.run(quick=args.quick_scaling)]
    report.machine["load at the end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report.targets = targets(report)
    return report


def project_runs(go, cl: list[str], files: list[str], repeat: int, report: Report,  # type: ignore[no-untyped-def]
                 corpus_repeat: int = 1) -> None:
    """The cost of the project pass (summaries of other modules, rounds for wrapper modules) and what the
    cache saves: the corpus checked with the project pass switched off, then with a cold cache (an empty
    folder) and a warm one (the same folder again, nothing changed); one file inside a project (pre-commit)
    with a cold and a warm cache. Each run is a child process: wall, CPU and peak memory from wait4.
    ``corpus_repeat``: like the check runs they are compared with (--repeat), the runs with the project
    pass or the inference off keep the fastest of that many."""
    folder = Path(tempfile.mkdtemp(prefix="connlint-bench-cache-"))
    for _ in range(corpus_repeat):
        for key, launcher in (("connlint, project pass off", NO_PROJECT_LAUNCHER),
                              ("connlint, inference off", INFERENCE_OFF_LAUNCHER)):
            _keep_best(report.runs, key, go(key, [sys.executable, "-c", launcher, "check", "--format", "concise",
                                              "--no-cache", "."]))
    go("connlint, cold cache", [*cl, "check", "--format", "concise", "--cache-dir", str(folder / "corpus"), "."])
    go("connlint, warm cache", [*cl, "check", "--format", "concise", "--cache-dir", str(folder / "corpus"), "."])
    single = _pick_project_file(files)
    cold, warm = [], []
    for i in range(max(3, repeat // 3)):
        own = str(folder / f"one-{i}")
        cold.append(measure("one file, cold cache", [*cl, "check", "--cache-dir", own, single]))
        warm.append(measure("one file, warm cache", [*cl, "check", "--cache-dir", own, single]))
    for key, samples in (("one file, cold cache", cold), ("one file, warm cache", warm)):
        median = sorted(samples, key=lambda r: r.wall)[len(samples) // 2]
        median.note = f"median of {len(samples)}: {os.path.relpath(single, report.corpus)}"
        report.runs[key] = median
        say(f"    {key}: {median.wall:.3f} s wall  {median.cpu:.3f} s cpu  {median.max_rss_mb:.0f} MB")


def _pick_project_file(files: list[str]) -> str:
    """The file issue 5 measured inside a project (pony's test fixtures, which reach pony.orm.core),
    else the single-file pick."""
    for path in files:
        if path.replace(os.sep, "/").endswith("pony/orm/tests/fixtures.py"):
            return path
    return _pick_single_file(files)


def _keep_best(runs: dict[str, Run], key: str, new: Run) -> None:
    """With --repeat, keep the fastest of the repeated connlint runs (the least disturbed)."""
    best_key = f"_best {key}"
    best = runs.get(best_key)
    if best is None or new.wall < best.wall:
        runs[best_key] = new
    runs[key] = runs[best_key]


def _pick_single_file(files: list[str]) -> str:
    """A typical module that does database work: the median-sized corpus file naming sqlite3 or psycopg."""
    candidates = []
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        if (b"import sqlite3" in data or b"import psycopg" in data) and 2_000 < len(data) < 40_000:
            candidates.append((len(data), path))
    candidates.sort()
    return candidates[len(candidates) // 2][1] if candidates else files[len(files) // 2]


def _has_fix(cl: list[str]) -> bool:
    proc = subprocess.run([*cl, "fix", "--help"], capture_output=True, text=True)
    return proc.returncode == 0


def targets(report: Report) -> list[Target]:
    runs = {k: v for k, v in report.runs.items() if not k.startswith("_best")}
    out: list[Target] = []

    def ratio_target(name: str, num: str, den: str, limit: float, how: str, invert: bool = False,
                     cpu_label: str = "CPU time ratio") -> None:
        if num not in runs or den not in runs or runs[den].wall == 0:
            out.append(Target(name, "not measured", how, None))
            return
        a, b = runs[num].wall, runs[den].wall
        value = b / a if invert else a / b
        passed = value >= limit if invert else value <= limit
        cpu_a, cpu_b = runs[num].cpu, runs[den].cpu
        cpu = (cpu_b / cpu_a if invert else cpu_a / cpu_b) if cpu_a and cpu_b else float("nan")
        out.append(Target(name, f"{value:.3f}x ({a:.1f} s vs {b:.1f} s; {cpu_label} {cpu:.3f}x)", how, passed))

    ratio_target("check vs flake8 --select=E9,F", "connlint", "flake8 E9,F", 0.15, "<= 0.15x")
    if "connlint (pylint sample)" in runs:
        ratio_target("check vs pylint consider-using-with (same sample)", "connlint (pylint sample)", "pylint",
                     50, ">= 50x faster", invert=True)
    else:
        ratio_target("check vs pylint consider-using-with", "connlint", "pylint", 50, ">= 50x faster", invert=True)
    if "flake8 default" in runs and "flake8 default + connlint" in runs:
        a, b = runs["flake8 default + connlint"].wall, runs["flake8 default"].wall
        extra = a / b - 1
        cpu_extra = runs["flake8 default + connlint"].cpu / runs["flake8 default"].cpu - 1
        out.append(Target("flake8 plugin overhead", f"+{extra:.1%} ({a:.1f} s vs {b:.1f} s; CPU +{cpu_extra:.1%})",
                          "<= +10%", extra <= 0.10))
    else:
        out.append(Target("flake8 plugin overhead", "not measured", "<= +10%", None))
    if report.single_file:
        med = statistics.median(report.single_file)
        out.append(Target(f"connlint check one_file.py (end to end): {report.single_file_name or 'a corpus file'}",
                          f"{med:.3f} s median of {len(report.single_file)} "
                          f"(bare interpreter {statistics.median(report.interpreter):.3f} s)",
                          "<= 0.15 s", med <= 0.15))
    if report.standalone:
        med = statistics.median(report.standalone)
        out.append(Target("connlint check one_file.py (end to end): a module outside any project",
                          f"{med:.3f} s median of {len(report.standalone)}", "<= 0.15 s", med <= 0.15))
    ratio_target(f"-j{os.cpu_count()} speed-up over -j1", "connlint", "connlint -j1", 1.7, ">= 1.7x", invert=True,
                 cpu_label="CPU time -j1 / -jN (1.0: no parallel overhead)")
    ratio_target("check with a warm cache vs a cold one (corpus, nothing changed)", "connlint, warm cache",
                 "connlint, cold cache", 0.5, "<= 0.5x")
    if "connlint" in runs and "connlint, project pass off" in runs:
        on, off = runs["connlint"], runs["connlint, project pass off"]
        out.append(Target("project pass: check vs check with it off (no cache)",
                          f"{on.wall / off.wall:.2f}x wall, {on.cpu / off.cpu:.2f}x CPU ({on.wall:.1f} s vs "
                          f"{off.wall:.1f} s; peak {on.max_rss_mb:.0f} MB vs {off.max_rss_mb:.0f} MB)",
                          "<= 1.5x, < 300 MB (#6)", on.wall / off.wall <= 1.5 and on.max_rss_mb < 300))
    if "connlint" in runs and "connlint, inference off" in runs:
        on, off = runs["connlint"], runs["connlint, inference off"]
        out.append(Target("astroid inference: check vs check with it off (no cache)",
                          f"{on.wall / off.wall:.2f}x wall, {on.cpu / off.cpu:.2f}x CPU ({on.wall:.1f} s vs "
                          f"{off.wall:.1f} s; peak {on.max_rss_mb:.0f} MB vs {off.max_rss_mb:.0f} MB)",
                          "(its cost; no limit)", None))
    for key in ("one file, cold cache", "one file, warm cache"):
        if key in runs:
            r = runs[key]
            out.append(Target(f"connlint check one_file.py in a project, {key.split(', ')[1]}",
                              f"{r.wall:.3f} s ({r.note}; {r.max_rss_mb:.0f} MB)", "<= 0.15 s",
                              r.wall <= 0.15 if key.endswith("warm cache") else None))
    rss = max((r.max_rss_mb for k, r in runs.items() if k.startswith("connlint") and "fix" not in k), default=0)
    out.append(Target("peak memory per process (check)", f"{rss:.0f} MB", "< 200 MB", rss < 200 if rss else None))
    for curve in report.scaling:
        if curve.get("target") and curve.get("end_to_end") is not None:
            steps = curve["steps"]
            last = steps[-1]  # type: ignore[index]
            secs = float(curve["end_to_end"])  # type: ignore[arg-type]
            out.append(Target(f"scaling: {curve['axis']} at {last['size']:,} {curve['unit']}",  # type: ignore[index]
                              f"{secs:.2f} s end to end (growth exponent {curve['exponent']:.2f})",
                              "< 2 s", secs < 2.0))
    if "connlint fix --diff" in runs:
        # both at their default -j (one process per CPU), as users run them
        ratio_target("fix --diff vs check (-j default)", "connlint fix --diff", "connlint", 2.0, "<= 2x")
        fix_rss = runs["connlint fix --diff"].max_rss_mb  # the largest process of the run (wait4)
        out.append(Target("peak memory per process (fix --diff)", f"{fix_rss:.0f} MB", "< 200 MB", fix_rss < 200))
    else:
        out.append(Target("fix --diff vs check", "not measured", "<= 2x", None))
    tb = sum(r.tracebacks for k, r in runs.items() if k.startswith("connlint"))
    out.append(Target("tracebacks over the corpus (check and fix)", str(tb), "0", tb == 0))
    return out


# ---------------------------------------------------------------------------------------------- output


def render(report: Report) -> str:
    m = report.machine
    runs = {k: v for k, v in report.runs.items() if not k.startswith("_best")}
    lines = [
        MARK_START,
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Python {m['python']} ({m['os']}); "
        f"connlint {m['connlint']}, flake8 {m['flake8']} (pyflakes {m['pyflakes']}), pylint {m['pylint']}; "
        f"load average (1, 5, 15 min) at the start {m['load']}, at the end {m.get('load at the end', '?')}.",
        "",
        f"Corpus: {report.files:,} files, {report.lines:,} lines (`{_home(report.corpus)}`).",
        "",
        "| target | measured | limit | |",
        "|---|---|---|---|",
    ]
    for t in report.targets:
        verdict = "—" if t.passed is None else ("PASS" if t.passed else "**FAIL**")
        lines.append(f"| {t.name} | {t.measured} | {t.limit} | {verdict} |")
    lines += ["", "| run | wall s | CPU s | peak RSS MB | exit |", "|---|---:|---:|---:|---:|"]
    for key, r in runs.items():
        lines.append(f"| `{key}` | {r.wall:.2f} | {r.cpu:.2f} | {r.max_rss_mb:.0f} | {r.exit}"
                     + (f" ({r.note})" if r.note else "") + " |")
    if report.single_file:
        lines.append(f"| `connlint check {report.single_file_name or 'one_file.py'}` (median of "
                     f"{len(report.single_file)}) | {statistics.median(report.single_file):.3f} | | | |")
    if report.standalone:
        lines.append(f"| `connlint check standalone.py`, outside any project (median of {len(report.standalone)}) "
                     f"| {statistics.median(report.standalone):.3f} | | | |")
        lines.append(f"| `python -c pass` (median) | {statistics.median(report.interpreter):.3f} | | | |")
    if report.scaling:
        lines += ["", "Scaling (in-process `check_file`, best of three below 2 s; growth exponent 1.0 = linear):", ""]
        lines += ["| axis | sizes | seconds | exponent | largest, end to end |", "|---|---|---|---:|---:|"]
        for c in report.scaling:
            steps = c["steps"]  # type: ignore[assignment]
            sizes = ", ".join(f"{s['size']:,}" for s in steps)  # type: ignore[index,union-attr]
            secs = ", ".join(f"{s['seconds']:.2f}" + ("!" if s["super_linear"] else "") for s in steps)  # type: ignore[index,union-attr]
            e2e = f"{c['end_to_end']:.2f} s" if c.get("end_to_end") is not None else "—"
            exp = f"{c['exponent']:.2f}" if c.get("exponent") is not None else "—"
            lines.append(f"| {c['axis']} | {sizes} | {secs} | {exp} | {e2e} |")
        lines.append("")
        lines.append("`!`: the step's time grew more than 1.5 times faster than its size (super-linear).")
    for note in report.notes:
        lines += ["", f"Note: {note}"]
    lines += ["", f"![connlint and its baselines]({CHART.name})", MARK_END]
    return "\n".join(lines)


def _home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home) else path


def write_doc(report: Report) -> None:
    block = render(report)
    empty = f"# Performance\n\n{MARK_START}\n{MARK_END}\n"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else empty
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def chart(report: Report) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = {k: v for k, v in report.runs.items() if not k.startswith("_best")}
    order = [k for k in ("connlint", "connlint -j1", "flake8 E9,F", "flake8 default", "flake8 default + connlint",
                         "connlint fix --diff", "pylint", "connlint (pylint sample)") if k in runs]
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), gridspec_kw={"width_ratios": [1.2, 1]})
    ax = axes[0]
    walls = [runs[k].wall for k in order]
    colours = ["#2a7" if k.startswith("connlint") else "#888" for k in order]
    bars = ax.barh(order[::-1], walls[::-1], color=colours[::-1])
    ax.set_xscale("log")
    ax.set_xlabel("wall time, seconds (log scale)")
    sample_note = " (pylint rows: sample)" if "connlint (pylint sample)" in runs else ""
    ax.set_title(f"{report.files:,} files, {report.lines / 1e6:.1f}M lines{sample_note}")
    for bar, value in zip(bars, walls[::-1]):
        ax.text(value * 1.05, bar.get_y() + bar.get_height() / 2, f"{value:.1f} s", va="center", fontsize=8)
    ax.set_xlim(right=max(walls) * 4 if walls else 1)
    ax = axes[1]
    for c in report.scaling:
        steps = c["steps"]  # type: ignore[assignment]
        if len(steps) < 2:  # type: ignore[arg-type]
            continue
        first = steps[0]["size"]  # type: ignore[index]
        xs = [s["size"] / first for s in steps]  # type: ignore[index,union-attr]
        ys = [max(s["seconds"], 1e-4) for s in steps]  # type: ignore[index,union-attr]
        ax.plot(xs, ys, marker="o", label=f"{c['axis']} (1 = {first:,} {c['unit']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(2.0, color="red", linestyle=":", linewidth=1)
    ax.text(1, 2.2, "2 s target", color="red", fontsize=7)
    ax.plot([1, 16], [0.05, 0.8], color="black", linestyle="--", linewidth=0.8, label="linear growth (slope 1)")
    ax.set_xlabel("size relative to the smallest step")
    ax.set_ylabel("seconds (in-process check)")
    ax.set_title("scaling (log-log: linear growth is a slope-1 line)")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    m = report.machine
    fig.suptitle(f"connlint benchmark — {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}", fontsize=9)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(CHART, dpi=110)
    return str(CHART)


def load(path: Path) -> Report:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["runs"] = {k: Run(**v) for k, v in data["runs"].items()}
    data["targets"] = [Target(**t) for t in data["targets"]]
    return Report(**data)


def print_targets(report: Report) -> None:
    say("\n" + "=" * 100)
    for t in report.targets:
        verdict = "n/a " if t.passed is None else ("PASS" if t.passed else "FAIL")
        say(f"{verdict}  {t.name:<58} {t.measured}  [{t.limit}]")
    for note in report.notes:
        say(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", metavar="PATH", help="folder to check (default: fetch the shared corpus)")
    parser.add_argument("--skip-pylint", action="store_true")
    parser.add_argument("--pylint-sample", type=int, default=0, metavar="N",
                        help="run pylint (and connlint again) on a deterministic sample of N files")
    parser.add_argument("--pylint-timeout", type=float, default=3600)
    parser.add_argument("--skip-fix", action="store_true")
    parser.add_argument("--fix-timeout", type=float, default=1800)
    parser.add_argument("--skip-flake8-default", action="store_true", help="skip the plugin-overhead runs")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-project", action="store_true",
                        help="skip the project-pass and cache runs (project pass off, cold and warm cache)")
    parser.add_argument("--quick-scaling", action="store_true")
    parser.add_argument("--single-file", metavar="FILE", help="file for the end-to-end one-file timing")
    parser.add_argument("--single-repeat", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="run the connlint corpus checks N times, keep the best")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite docs/performance.md and the chart from benchmarks/results.json")
    args = parser.parse_args(argv)
    if args.render_only:
        report = load(RESULTS)
        report.targets = targets(report)
        print_targets(report)
        write_doc(report)
        chart(report)
        return 0
    report = run_all(args)
    print_targets(report)
    RESULTS.write_text(json.dumps(asdict(report), indent=2, default=str), encoding="utf-8")
    if not args.no_write:
        write_doc(report)
        written = chart(report)
        say(f"wrote {DOC.relative_to(ROOT)}" + (f" and {Path(written).relative_to(ROOT)}" if written else
                                               " (no chart: matplotlib is not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
