"""``connlint fix PATHS``: fix files in place, or show (``--diff``) or test (``--check``) what would change.

Per file it says what was fixed and which findings have no safe fix, and why. Exit status: in place, 0 when
nothing is left to report and 1 when findings remain; with ``--diff``/``--check``, 1 when a file would
change; 2 when a file could not be read, parsed or written.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TextIO

from connlint.catalog import Catalog
from connlint.checker import Finding, Options
from connlint.files import discover
from connlint.fix import writer
from connlint.fix.engine import FixResult, fix_text

EXIT_CLEAN, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass
class _Totals:
    files_changed: int = 0
    fixed: int = 0
    unfixed: int = 0
    unsafe_hidden: int = 0
    errors: int = 0
    findings_left: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    """Entry point for the CLI (``args`` as parsed by ``connlint.cli``, with its selection options)."""
    from connlint.cli import settings
    from connlint.config import ConfigError

    try:
        config, options, exclude = settings(args)
    except ConfigError as exc:
        print(f"connlint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    catalog = config.catalog()
    dry = bool(args.diff or args.check)
    report: TextIO = sys.stderr if args.diff else sys.stdout
    totals = _Totals()
    paths = discover(list(args.paths), exclude, force_exclude=args.force_exclude, root=str(config.root))
    for path in paths:
        ignored = config.ignored_for(path)
        file_options = replace(options, ignore=(*options.ignore, *ignored)) if ignored else options
        _fix_one(path, file_options, catalog, args, dry, report, totals)
    _summary(totals, dry, report)
    if totals.errors:
        return EXIT_ERROR
    if dry:
        return EXIT_CHANGES if totals.files_changed else EXIT_CLEAN
    return EXIT_CHANGES if totals.unfixed else EXIT_CLEAN


def _fix_one(path: str, options: Options, catalog: Catalog, args: argparse.Namespace, dry: bool,
             report: TextIO, totals: _Totals) -> None:
    try:
        source = writer.read(path)
    except writer.WriteRefused as exc:
        totals.errors += 1
        print(f"{path}: error: {exc}", file=report)
        return
    result = fix_text(source.text, options, unsafe=args.unsafe_fixes, path=path, catalog=catalog)
    if result.error is not None:
        totals.errors += 1
        print(f"{path}: error: {result.error}", file=report)
        return
    if result.changed:
        if args.diff:
            sys.stdout.write(unified_diff(path, result.source, result.text))
        elif not args.check:
            try:
                writer.write(source, result.text)
            except writer.WriteRefused as exc:
                totals.errors += 1
                print(f"{path}: error: not written: {exc}", file=report)
                return
        totals.files_changed += 1
    for line in report_lines(path, result, dry):
        print(line, file=report)
    totals.fixed += len(result.fixed)
    totals.unfixed += len(result.unfixed)
    totals.unsafe_hidden += sum(1 for u in result.unfixed if u.unsafe_available)


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


__all__ = ["EXIT_CHANGES", "EXIT_CLEAN", "EXIT_ERROR", "report_lines", "run", "unified_diff"]
