"""Check files: read, prefilter, parse, analyse, apply ``# noqa``. Used by the CLI.

Every failure on one file becomes that file's ``error`` (one line, naming the problem); nothing a file
contains makes the run stop or print a traceback.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from connlint.catalog import Catalog, default_catalog
from connlint.checker import Finding, Options, check_module
from connlint.config import Config
from connlint.files import PYTHON_SUFFIXES, UnreadableFile, read_source
from connlint.noqa import NoqaMap
from connlint.prefilter import Prefilter as Prefilter  # re-exported (its older home)
from connlint.prefilter import prefilter as prefilter

if TYPE_CHECKING:
    from connlint.cache import Cache
    from connlint.config import Config


T = TypeVar("T")


@dataclass(frozen=True)
class FileResult:
    path: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # why the file could not be checked
    prefiltered: bool = False  # skipped unparsed: its text names nothing the catalog can acquire
    exports: frozenset[str] = frozenset()  # names of its factories/helpers other modules may call
    # the modules its check skipped for naming no driver (records of project.SKIPS); None: unknown
    skipped: frozenset[str] | None = None


def check_file(path: str, options: Options, catalog: Catalog | None = None, force: bool = False) -> FileResult:
    from connlint.project import SKIPS

    skipped: set[str] = set()
    SKIPS.append(skipped)
    try:
        result = _check_file(path, options, catalog or default_catalog(), force)
    finally:
        SKIPS.pop()
    if result.skipped is None and not result.prefiltered and result.error is None:
        result = replace(result, skipped=frozenset(skipped))
    return result


def _check_file(path: str, options: Options, catalog: Catalog, force: bool) -> FileResult:
    from connlint.project import active_cache

    cache = active_cache()
    if cache is not None:
        return _check_cached(cache, path, options, catalog, force)
    try:
        source = read_source(path)
    except UnreadableFile as exc:
        return FileResult(path, error=str(exc))
    # A directory walk only yields *.py files, so any other name was given on the command line: parse
    # it whatever it mentions, so that naming a file that is not Python gets a diagnostic.
    return _check_text(path, source.text, options, catalog, named_non_python=not path.endswith(PYTHON_SUFFIXES),
                       force=force)


def _check_cached(cache: Cache, path: str, options: Options, catalog: Catalog, force: bool) -> FileResult:
    """``check_file`` through the cache: an unchanged file whose recorded questions to the project
    index still get the same answers keeps its stored result; otherwise it is checked and stored."""
    from connlint.cache import content_hash, file_stamp, options_key

    named_non_python = not path.endswith(PYTHON_SUFFIXES)
    key = f"check|{os.path.abspath(path)}|{options_key(options, for_summary=False)}|{force:d}|{named_non_python:d}"
    stamp = file_stamp(path)  # before reading: a file written while it is read is read again next time
    entry = cache.load(catalog, key) if stamp is not None else None
    text = None
    if entry is not None and entry.get("stamp") != stamp:
        try:
            text = read_source(path).text
        except UnreadableFile as exc:
            return FileResult(path, error=str(exc))
        if entry.get("hash") == content_hash(text):
            entry["stamp"] = stamp  # touched, not changed
            cache.store(catalog, key, entry)
        else:
            entry = None
    if entry is not None:
        assert stamp is not None
        replayed = _replayed(entry.get("result"), path, stamp, options, catalog)
        if replayed is not None:
            return replayed
    if text is None:
        try:
            text = read_source(path).text
        except UnreadableFile as exc:
            return FileResult(path, error=str(exc))
    from connlint.project import module_name, project_for

    project = project_for(catalog, options)
    trace = project.tracing()
    try:
        result = _check_text(path, text, options, catalog, named_non_python, force)
    finally:
        project.done(trace)
    if stamp is None or result.error is not None:
        return result  # errors are not stored: a crash or an out-of-memory may not happen again
    from connlint.cache import encode_finding, encode_summary
    from connlint.project import SKIPS

    stored: dict[str, object] = {"kind": "prefiltered"}
    if not result.prefiltered:
        module, root, is_pkg = module_name(path)
        summary = project._modules.get(module)
        if summary is not None:
            project.checked(module, os.path.abspath(path), stamp, trace)
            project.store_checked(module, os.path.abspath(path), is_pkg, text, stamp, summary, trace)
        stored = {
            "kind": "checked", "module": module, "root": root, "trace": trace.to_json(project.stamps),
            "findings": [encode_finding(f) for f in result.findings], "exports": sorted(result.exports),
            "summary": encode_summary(summary) if summary is not None else None,
            "skipped": sorted(SKIPS[-1]) if SKIPS else None,
        }
    cache.store(catalog, key, {"stamp": stamp, "hash": content_hash(text), "result": stored})
    return result


def _replayed(stored: object, path: str, stamp: list[int], options: Options, catalog: Catalog) -> FileResult | None:
    """The stored result of a file, if what it asked the project index still gets the same answers;
    the project index is left as checking the file would have left it (its root, its summary)."""
    from connlint.cache import decode_finding, decode_summary
    from connlint.project import UNKNOWN_SKIPS, module_name, project_for

    try:
        assert isinstance(stored, dict)
        if stored["kind"] == "prefiltered":
            return FileResult(path, prefiltered=True)
        module, root, _ = module_name(path)
        if stored["kind"] != "checked" or stored["module"] != module or stored["root"] != root:
            return None
        project = project_for(catalog, options)
        project.add_root(root)
        if not project.valid(stored["trace"]):
            return None
        findings = tuple(decode_finding(f) for f in stored["findings"])
        skipped = stored.get("skipped")
        skipped = frozenset(skipped) if isinstance(skipped, list) else frozenset({UNKNOWN_SKIPS})
        if stored["summary"] is not None:
            project.remember(module, decode_summary(stored["summary"]), skipped)
            project.checked(module, os.path.abspath(path), stamp, stored["trace"])
        return FileResult(path, findings, exports=frozenset(stored["exports"]), skipped=skipped)
    except (AssertionError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None  # an entry of some other shape: checked again


def check_text(path: str, text: str, options: Options, catalog: Catalog) -> FileResult:
    return _check_text(path, text, options, catalog, named_non_python=False)


def _check_text(path: str, text: str, options: Options, catalog: Catalog, named_non_python: bool,
                force: bool = False) -> FileResult:
    if not named_non_python and not force and not prefilter(catalog).may_acquire(text):
        return FileResult(path, prefiltered=True)
    # The cyclic GC would walk the whole growing tree again and again while ast.parse and the analysis
    # allocate it (measured: parse and check of a 400 kB module take 1.5x as long with it on). Nothing
    # here needs a collection before the file is done; the cycles left (graphs) go at the next one.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_and_check(path, text, options, catalog, named_non_python)
    finally:
        if enabled:
            gc.enable()


def _parse_and_check(path: str, text: str, options: Options, catalog: Catalog, named_non_python: bool) -> FileResult:
    try:
        tree = ast.parse(text, path)
    except SyntaxError as exc:
        return FileResult(path, error=_syntax_error(exc, named_non_python))
    except (RecursionError, MemoryError) as exc:
        # CPython's parser reports a too-deep nesting as RecursionError, or as a MemoryError with no
        # message when its own stack runs out (10,000 nested 'not's)
        if isinstance(exc, MemoryError) and str(exc):
            return FileResult(path, error=f"cannot parse: out of memory: {exc}")
        return FileResult(path, error="cannot parse: the code is nested too deeply for Python's parser")
    except ValueError as exc:  # NUL bytes on older Pythons; read_source already refuses them
        return FileResult(path, error=f"cannot parse: {exc}")
    try:
        findings, exports = check_module(tree, options, catalog, text, path)
    except RecursionError:
        return FileResult(path, error="cannot analyse: the code is nested too deeply")
    except MemoryError:
        return FileResult(path, error="cannot analyse: out of memory")
    except Exception as exc:  # a bug in connlint must not end the run over the other files
        return FileResult(path, error=_internal_error(exc))
    if findings:
        lines = text.splitlines()
        if "flake8" in text or any("noqa" in lines[f.line - 1].lower() for f in findings if f.line <= len(lines)):
            noqa = NoqaMap(text)
            findings = [f for f in findings if not noqa.suppressed(f.line, f.code)]
    return FileResult(path, tuple(findings), exports=exports)


_GRAMMAR = f"Python {sys.version_info[0]}.{sys.version_info[1]}"


def _syntax_error(exc: SyntaxError, named_non_python: bool) -> str:
    where = f"{exc.lineno}:{exc.offset or 0}: " if exc.lineno else ""
    if named_non_python:
        return f"not a Python file: {where}it does not parse as {_GRAMMAR}: {exc.msg}"
    # "with the 3.11 grammar": a file written for a newer Python (t-strings, PEP 695) fails here too
    return f"{where}cannot parse with the {_GRAMMAR} grammar: {exc.msg}"


def _internal_error(exc: BaseException) -> str:
    """One line that is enough to find the bug: the exception and the innermost connlint frame."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if "connlint" in code.co_filename:
            module = code.co_filename.rsplit("connlint", 1)[-1].strip("/\\").replace("\\", "/")
            where = f" at connlint/{module}:{tb.tb_lineno} in {code.co_name}"
        tb = tb.tb_next
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error (please report it): {type(exc).__name__}: {message}{where}"


# ---------------------------------------------------------------------------------------------- many files


_WORKER_CATALOG: list[Catalog] = []  # the catalog of this worker process, built once by _start_worker


def _start_worker(config: Config | None, cache: Cache | None, roots: frozenset[str] = frozenset(),
                  store: str | None = None) -> None:
    _WORKER_CATALOG[:] = [config.catalog() if config is not None else default_catalog()]
    from connlint.project import declare_roots, use_cache, use_run_store

    use_cache(cache)
    declare_roots(roots)
    use_run_store(store)


def _check_one(args: tuple[str, Options, bool]) -> FileResult:
    path, options, force = args
    return check_file(path, options, _WORKER_CATALOG[0] if _WORKER_CATALOG else None, force)


def _options_for(path: str, options: Options, config: Config | None) -> Options:
    ignored = config.ignored_for(path) if config is not None else ()
    return replace(options, ignore=(*options.ignore, *ignored)) if ignored else options


# The worker pool a project run keeps for all its rounds (shared_pool): a new pool per round started
# workers that had to parse, summarise and infer (astroid) the same modules again.
_SHARED: list[tuple[int, Config | None, Any]] = []
# a run's folder where its workers share the module summaries they computed (no cache: the cache does)
_STORE: list[str] = []


@contextlib.contextmanager
def shared_pool(jobs: int, config: Config | None) -> Iterator[None]:
    """Within this block, ``check_paths`` with these ``jobs`` and ``config`` reuses one pool of
    workers (started when first needed, stopped at the end)."""
    import tempfile

    from connlint.project import active_cache

    entry: tuple[int, Config | None, Any] = (jobs if jobs > 0 else (os.cpu_count() or 1), config, [])
    _SHARED.append(entry)
    # without a cache, the workers share the summaries they compute through a folder of the run's own
    store = (tempfile.TemporaryDirectory(prefix="connlint-run-", dir=_memory_folder())
             if entry[0] > 1 and active_cache() is None else None)
    _STORE[:] = [store.name] if store is not None else []
    try:
        yield
    finally:
        _STORE.clear()
        _SHARED.remove(entry)
        for pool in entry[2]:
            pool.shutdown()
        if store is not None:
            store.cleanup()


def _memory_folder() -> str | None:
    """A folder in memory for the run's store (Linux's /dev/shm), if there is one we may write to:
    creating hundreds of small files on a disk's file system cost the workers 0.5 s over the corpus.
    None: the system's temporary folder."""
    folder = "/dev/shm"
    return folder if os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK) else None


def _pool(jobs: int, config: Config | None) -> tuple[Any, bool]:
    """(a pool of ``jobs`` workers, whether the caller must shut it down)."""
    from concurrent.futures import ProcessPoolExecutor

    from connlint.project import active_cache, declared_roots

    for want, cfg, pools in _SHARED:
        if want == jobs and cfg is config:
            if not pools:
                pools.append(ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker,
                                                 initargs=(config, active_cache(), declared_roots(),
                                                           _STORE[0] if _STORE else None)))
            return pools[0], False
    return ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker,
                               initargs=(config, active_cache(), declared_roots())), True


def check_paths(paths: list[str], options: Options, jobs: int = 0, config: Config | None = None,
                force: bool = False, ordered: bool = False) -> list[FileResult]:
    """Check files, in parallel across ``jobs`` processes (0: one per CPU). Results come back in the
    order of ``paths`` whatever the number of processes, so output is deterministic. ``config`` adds
    its resources to the catalog and its per-file-ignores to ``options``. ``ordered``: hand the files
    out one by one in the order of ``paths`` (else largest first, a few at a time)."""
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    tasks = [(path, _options_for(path, options, config), force) for path in paths]
    if jobs == 1 or len(paths) < 2 * jobs:
        catalog = config.catalog() if config is not None else default_catalog()
        return [check_file(path, opts, catalog, force) for path, opts, force in tasks]
    # Largest files first, in small chunks: the files that take long (big modules full of database
    # code) sit next to each other in a tree (a package's tests), and 64 of them in one chunk kept one
    # worker busy for seconds after the other had finished. Results go back in the order of ``paths``.
    if ordered:
        order, chunk = list(range(len(tasks))), 1
    else:
        order = sorted(range(len(tasks)), key=lambda i: -_size(tasks[i][0]))
        chunk = max(1, min(8, len(paths) // (jobs * 32)))
    results: list[FileResult | None] = [None] * len(tasks)
    pool, own = _pool(jobs, config)
    try:
        for i, result in zip(order, pool.map(_check_one, [tasks[i] for i in order], chunksize=chunk)):
            results[i] = result
    finally:
        if own:
            pool.shutdown()
    return [r for r in results if r is not None]


def map_paths(function: Callable[[str], T], paths: list[str], jobs: int, config: Config | None) -> list[T]:
    """``function`` (picklable) of each path, in the workers of ``check_paths`` when there are
    several (the same pool within ``shared_pool``)."""
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    if jobs == 1 or len(paths) < 64 * jobs:
        return [function(path) for path in paths]
    pool, own = _pool(jobs, config)
    try:
        return list(pool.map(function, paths, chunksize=max(1, len(paths) // (jobs * 8))))
    finally:
        if own:
            pool.shutdown()


@dataclass(frozen=True)
class Survey:
    """``Survey(config)(path)``, picklable for ``map_paths``: (does the file need a check, the modules
    its text imports). A check is needed when the text may acquire, when the file was named on the
    command line though not ``*.py``, and when it cannot be read (its check says why)."""

    config: Config | None

    def __call__(self, path: str) -> tuple[bool, tuple[str, ...]]:
        from connlint.project import imported_modules

        if not path.endswith(PYTHON_SUFFIXES):
            return True, ()
        try:
            text = read_source(path).text
        except UnreadableFile:
            return True, ()
        catalog = _WORKER_CATALOG[0] if _WORKER_CATALOG else (
            self.config.catalog() if self.config is not None else default_catalog())
        if not prefilter(catalog).may_acquire(text):
            return False, ()
        return True, imported_modules(text, path)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
