"""Check files: read, prefilter, parse, analyse, apply ``# noqa``. Used by the CLI."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from connlint.catalog import Catalog, default_catalog
from connlint.checker import Finding, Options, check_tree, mentions_catalog
from connlint.files import UnreadableFile, read_source
from connlint.noqa import NoqaMap


@dataclass(frozen=True)
class FileResult:
    path: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # why the file could not be checked


def check_file(path: str, options: Options, catalog: Catalog | None = None) -> FileResult:
    catalog = catalog or default_catalog()
    try:
        source = read_source(path)
    except UnreadableFile as exc:
        return FileResult(path, error=str(exc))
    return check_text(path, source.text, options, catalog)


def check_text(path: str, text: str, options: Options, catalog: Catalog) -> FileResult:
    if not mentions_catalog(text, catalog):
        return FileResult(path)
    try:
        tree = ast.parse(text, path)
    except SyntaxError as exc:
        where = f"{exc.lineno}:{(exc.offset or 0)}: " if exc.lineno else ""
        return FileResult(path, error=f"{where}cannot parse: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return FileResult(path, error=f"cannot parse: {type(exc).__name__}: {exc}")
    try:
        findings = check_tree(tree, options, catalog)
    except RecursionError:
        return FileResult(path, error="cannot analyse: the code is nested too deeply")
    if findings:
        lines = text.splitlines()
        if "flake8" in text or any("noqa" in lines[f.line - 1].lower() for f in findings if f.line <= len(lines)):
            noqa = NoqaMap(text)
            findings = [f for f in findings if not noqa.suppressed(f.line, f.code)]
    return FileResult(path, tuple(findings))


def _check_one(args: tuple[str, Options]) -> FileResult:
    path, options = args
    return check_file(path, options)


def check_paths(paths: list[str], options: Options, jobs: int = 0) -> list[FileResult]:
    """Check files, in parallel across ``jobs`` processes (0: one per CPU). Results come back in the
    order of ``paths`` whatever the number of processes, so output is deterministic."""
    import os

    if jobs <= 0:
        jobs = os.cpu_count() or 1
    if jobs == 1 or len(paths) < 2 * jobs:
        return [check_file(path, options) for path in paths]
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(64, len(paths) // (jobs * 8)))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_check_one, [(p, options) for p in paths], chunksize=chunk))
