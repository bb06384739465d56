"""``connlint fix PATHS``: fix files in place, or show (``--diff``) or test (``--check``) what would change.

Per file it says what was fixed and which findings have no safe fix, and why. Exit status: in place, 0 when
nothing is left to report and 1 when findings remain; with ``--diff``/``--check``, 1 when a file would
change; 2 when a file could not be read, parsed or written; 130 when interrupted (Ctrl-C).

Files are fixed in parallel like ``connlint check`` checks them (``-j``, default one process per CPU); the
workers only read and compute, and this process prints and writes, file by file in the order of the paths,
so the output is the same whatever the number of processes and an interrupted run leaves no file half
written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import signal
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TextIO

from connlint.catalog import Catalog, default_catalog
from connlint.checker import Finding, Options
from connlint.files import discover
from connlint.fix import writer
from connlint.fix.engine import FixResult, fix_text

if TYPE_CHECKING:
    from connlint.config import Config

EXIT_CLEAN, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
DIFF, CHECK, WRITE = "diff", "check", "write"


@dataclass
class _Totals:
    files_changed: int = 0
    fixed: int = 0
    unfixed: int = 0
    unsafe_hidden: int = 0
    errors: int = 0
    findings_left: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What fixing one file came to, as plain data a worker sends back (no trees, no findings)."""

    path: str
    error: str | None = None  # the file could not be read, checked or parsed
    changed: bool = False
    diff: str = ""  # with --diff
    source: writer.SourceFile | None = None  # in place: the file as read, and the text to write over it
    text: str = ""
    report: tuple[str, ...] = ()
    fixed: int = 0
    unfixed: int = 0
    unsafe_hidden: int = 0


@dataclass(frozen=True)
class Task:
    """One file to fix, with its options (per-file ignores applied)."""

    path: str
    options: Options
    unsafe: bool
    mode: str  # DIFF, CHECK or WRITE


def run(args: argparse.Namespace) -> int:
    """Entry point for the CLI (``args`` as parsed by ``connlint.cli``, with its selection options)."""
    from connlint.cli import settings
    from connlint.config import ConfigError

    try:
        config, options, exclude = settings(args)
    except ConfigError as exc:
        print(f"connlint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    dry = bool(args.diff or args.check)
    mode = DIFF if args.diff else CHECK if args.check else WRITE
    report: TextIO = sys.stderr if args.diff else sys.stdout
    totals = _Totals()
    paths = discover(list(args.paths), exclude, force_exclude=args.force_exclude, root=str(config.root))
    tasks = []
    for path in paths:
        ignored = config.ignored_for(path)
        file_options = replace(options, ignore=(*options.ignore, *ignored)) if ignored else options
        tasks.append(Task(path, file_options, bool(args.unsafe_fixes), mode))
    outcomes = fix_files(tasks, getattr(args, "jobs", 0), config)
    done = 0
    try:
        for outcome in outcomes:
            _finish(outcome, mode, report, totals)
            done += 1
    except KeyboardInterrupt:
        # a write is atomic, so each file is as it was or fully fixed; the workers are stopped below
        print(f"connlint: interrupted after {done} of {len(tasks)} files", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        outcomes.close()
    _summary(totals, dry, report)
    if totals.errors:
        return EXIT_ERROR
    if dry:
        return EXIT_CHANGES if totals.files_changed else EXIT_CLEAN
    return EXIT_CHANGES if totals.unfixed else EXIT_CLEAN


def fix_files(tasks: list[Task], jobs: int, config: Config | None) -> Generator[Outcome, None, None]:
    """The outcome of each task, in the order of ``tasks`` whatever the number of processes (``jobs``;
    0: one per CPU; fewer files than two per process are done in this process, as ``check`` does)."""
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    if jobs == 1 or len(tasks) < 2 * jobs:
        catalog = config.catalog() if config is not None else default_catalog()
        for task in tasks:
            yield fix_one(task, catalog)
        return
    import multiprocessing

    # Largest files first, in small chunks, like check_paths: the long ones (big test modules with many
    # leaks) sit next to each other in a tree. Outcomes wait here until the ones before them are out.
    order = sorted(range(len(tasks)), key=lambda i: -_size(tasks[i].path))
    chunk = max(1, min(8, len(tasks) // (jobs * 32)))
    done: dict[int, Outcome] = {}
    following = 0
    with multiprocessing.Pool(jobs, initializer=_start_worker, initargs=(config,)) as pool:
        # leaving the block (also on Ctrl-C) terminates the workers; they never write a file
        for i, outcome in pool.imap_unordered(_fix_indexed, [(i, tasks[i]) for i in order], chunksize=chunk):
            done[i] = outcome
            while following in done:
                yield done.pop(following)
                following += 1


_WORKER_CATALOG: list[Catalog] = []  # the catalog of this worker process, built once by _start_worker


def _start_worker(config: Config | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _WORKER_CATALOG[:] = [config.catalog() if config is not None else default_catalog()]


def _fix_indexed(item: tuple[int, Task]) -> tuple[int, Outcome]:
    index, task = item
    return index, fix_one(task, _WORKER_CATALOG[0] if _WORKER_CATALOG else default_catalog())


def fix_one(task: Task, catalog: Catalog) -> Outcome:
    """Read, fix and describe one file; writes nothing."""
    path = task.path
    try:
        source = writer.read(path)
    except writer.WriteRefused as exc:
        return Outcome(path, error=str(exc))
    result = fix_text(source.text, task.options, unsafe=task.unsafe, path=path, catalog=catalog)
    if result.error is not None:
        return Outcome(path, error=result.error)
    dry = task.mode != WRITE
    return Outcome(
        path, changed=result.changed,
        diff=unified_diff(path, result.source, result.text) if result.changed and task.mode == DIFF else "",
        source=source if result.changed and task.mode == WRITE else None,
        text=result.text if result.changed and task.mode == WRITE else "",
        report=tuple(report_lines(path, result, dry)), fixed=len(result.fixed), unfixed=len(result.unfixed),
        unsafe_hidden=sum(1 for u in result.unfixed if u.unsafe_available),
    )


def _finish(outcome: Outcome, mode: str, report: TextIO, totals: _Totals) -> None:
    """Print (and in place, write) one file's outcome."""
    path = outcome.path
    if outcome.error is not None:
        totals.errors += 1
        print(f"{path}: error: {outcome.error}", file=report)
        return
    if outcome.changed:
        if mode == DIFF:
            sys.stdout.write(outcome.diff)
        elif mode == WRITE:
            assert outcome.source is not None
            try:
                writer.write(outcome.source, outcome.text)
            except writer.WriteRefused as exc:
                totals.errors += 1
                print(f"{path}: error: not written: {exc}", file=report)
                return
        totals.files_changed += 1
    for line in outcome.report:
        print(line, file=report)
    totals.fixed += outcome.fixed
    totals.unfixed += outcome.unfixed
    totals.unsafe_hidden += outcome.unsafe_hidden


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def report_lines(path: str, result: FixResult, dry: bool) -> Iterator[str]:
    """``path:line:col: CODE fixed: ...`` / ``... no safe fix: reason``, in line order.

    Positions of fixed findings are in the file as it was; of the others, in the file as it is after the
    run (as it was, for ``--diff``/``--check``)."""
    verb = "would fix" if dry else "fixed"
    entries: list[tuple[Finding, str]] = []
    for fixed in result.fixed:
        unsafe = " (unsafe)" if fixed.applicability == "unsafe" else ""
        entries.append((fixed.finding, f"{fixed.finding.code} {verb}{unsafe}: {fixed.description}"))
    for unfixed in result.unfixed:
        finding = (unfixed.original or unfixed.finding) if dry else unfixed.finding
        entries.append((finding, f"{finding.code} no safe fix: {unfixed.reason}"))
    for finding, text in sorted(entries, key=lambda e: (e[0].line, e[0].col, e[1])):
        yield f"{path}:{finding.line}:{finding.col}: {text}"


def _summary(totals: _Totals, dry: bool, out: TextIO) -> None:
    if not (totals.fixed or totals.unfixed):
        if not totals.errors:
            print("Nothing to fix.", file=out)
        return
    files = f"{totals.files_changed} file{'s' if totals.files_changed != 1 else ''}"
    verb = "Would fix" if dry else "Fixed"
    line = f"{verb} {totals.fixed} finding{'s' if totals.fixed != 1 else ''} in {files}"
    if totals.unfixed:
        line += f"; {totals.unfixed} without a safe fix"
    if totals.unsafe_hidden:
        line += f" ({totals.unsafe_hidden} fixable with --unsafe-fixes)"
    print(line + ".", file=out)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff that keeps the files' own line endings and marks a missing final newline."""
    old, new = _LINE.findall(before), _LINE.findall(after)
    out: list[str] = []
    for line in difflib.unified_diff(old, new, fromfile=path, tofile=path):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


__all__ = [
    "EXIT_CHANGES", "EXIT_CLEAN", "EXIT_ERROR", "EXIT_INTERRUPTED", "Outcome", "Task", "fix_files", "fix_one",
    "report_lines", "run", "unified_diff",
]
