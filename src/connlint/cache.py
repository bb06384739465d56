"""The on-disk cache: module summaries and per-file results, reused while nothing they depend on changed.

Laid out like Ruff's: a ``.connlint_cache`` folder at the project root (the folder of the
``pyproject.toml``, else the working directory) that ignores itself for git and carries a
``CACHEDIR.TAG``; under it ``<version>/<context>/<ab>/<entry>.json``. The context is a hash of what
changes every result at once: connlint's own code, the catalog, the working directory (messages name
other files relative to it) and the Python version (its grammar). An entry is keyed by the file's
absolute path and the options that matter, and holds the file's content hash (with its mtime and size
as the fast path) and the questions its computation asked the project index with their answers
(``Trace``): it is reused only while every answer is still the same.

Every write is atomic (a temporary file renamed over the entry), so processes that share the cache
(``-j`` workers, flake8 workers, two runs at once) never see half an entry; the last writer wins. An
entry that cannot be read or decoded is ignored; a folder that cannot be written disables writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from connlint import __version__

if TYPE_CHECKING:
    from connlint.catalog import Catalog, ResourceApi
    from connlint.checker import Finding, Options
    from connlint.events import HelperSummary
    from connlint.project import ModuleSummary
    from connlint.resolve import Factory

FOLDER_NAME = ".connlint_cache"
FORMAT = 1  # bump when the layout of an entry changes
PRUNE_AFTER_DAYS = 30  # a context (see Cache.prune) no run has used for this long is removed
USED_MARK = ".last-used"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by connlint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

Json = Any  # what json.loads returns


def cache_folder(root: Path, setting: str | None = None, given: str | None = None) -> Path:
    """The cache folder: ``--cache-dir``, else ``CONNLINT_CACHE_DIR`` (both relative to the working
    directory), else the ``cache-dir`` setting (relative to the project root), else
    ``<root>/.connlint_cache``."""
    chosen = given or os.environ.get("CONNLINT_CACHE_DIR")
    if chosen:
        return Path(os.path.expanduser(chosen)).absolute()
    if setting:
        return (root / os.path.expanduser(setting)).absolute()
    return (root / FOLDER_NAME).absolute()


def cache_disabled_by_environment() -> bool:
    return os.environ.get("CONNLINT_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def file_stamp(path: str) -> list[int] | None:
    """[mtime in ns, size]: while both are unchanged the content is taken to be unchanged."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


@dataclass
class Cache:
    """One cache folder. Picklable, so that ``-j`` worker processes get it from their parent."""

    folder: Path
    writable: bool = True
    _contexts: dict[int, tuple[object, Path]] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, object]:
        return {"folder": self.folder, "writable": self.writable}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.folder = state["folder"]  # type: ignore[assignment]
        self.writable = bool(state["writable"])
        self._contexts = {}

    # ------------------------------------------------------------------ where entries live

    def context_dir(self, catalog: Catalog) -> Path:
        cached = self._contexts.get(id(catalog))
        if cached is None or cached[0] is not catalog:
            digest = _digest(code_fingerprint(), _catalog_fingerprint(catalog), os.getcwd(), sys.version)
            cached = self._contexts[id(catalog)] = (catalog, self.folder / __version__ / digest[:20])
        return cached[1]

    def _entry_path(self, catalog: Catalog, key: str) -> Path:
        digest = _digest(key)
        return self.context_dir(catalog) / digest[:2] / f"{digest[2:34]}.json"

    # ------------------------------------------------------------------ reading and writing

    def load(self, catalog: Catalog, key: str) -> dict[str, Json] | None:
        """The entry stored under ``key``, or None (missing, unreadable, truncated, another format)."""
        try:
            with open(self._entry_path(catalog, key), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
            return None
        return data

    def store(self, catalog: Catalog, key: str, data: dict[str, Json]) -> None:
        """Write an entry atomically; a folder that cannot be written turns writing off for this run."""
        if not self.writable:
            return
        path = self._entry_path(catalog, key)
        tmp = None
        try:
            if not path.parent.is_dir():
                self._create_folder()
                path.parent.mkdir(parents=True, exist_ok=True)
            # json.dumps, not json.dump: dump feeds the file chunk by chunk from the pure-Python
            # encoder, dumps encodes in C at once (and a value it cannot encode leaves no file)
            text = json.dumps({**data, "format": FORMAT, "key": key}, separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
            tmp = None
        except (OSError, ValueError, TypeError):
            self.writable = False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # ------------------------------------------------------------------ housekeeping

    def prune(self, catalog: Catalog, max_age_days: float = PRUNE_AFTER_DAYS) -> None:
        """Mark this run's context as used, and remove the contexts no run has used for
        ``max_age_days`` (every upgrade of connlint, change of the catalog, working directory or
        Python starts a new context; without this the old ones would stay forever). A context in use
        by another run was marked by it and is kept. Nothing here is an error."""
        if not self.writable or not _is_connlint_cache(self.folder):
            return  # never remove anything from a folder connlint did not make its cache
        current = self.context_dir(catalog)
        with contextlib.suppress(OSError):
            current.mkdir(parents=True, exist_ok=True)
            (current / USED_MARK).touch()
        cutoff = time.time() - max_age_days * 86400
        for version in _subfolders(self.folder):
            for context in _subfolders(version):
                if context != current and _CONTEXT_NAME.fullmatch(context.name) and _last_used(context) < cutoff:
                    shutil.rmtree(context, ignore_errors=True)
            with contextlib.suppress(OSError):
                version.rmdir()  # only if empty

    def _create_folder(self) -> None:
        """The top folder, with its .gitignore and CACHEDIR.TAG (written once, by whoever comes first)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", "# Automatically created by connlint.\n*\n"), ("CACHEDIR.TAG", CACHEDIR_TAG)):
            target = self.folder / name
            if not target.exists():
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, target)


_CONTEXT_NAME = re.compile(r"[0-9a-f]{20}")  # context_dir's names


def _is_connlint_cache(folder: Path) -> bool:
    """Does the folder carry the CACHEDIR.TAG connlint writes into its cache folders?"""
    try:
        return (folder / "CACHEDIR.TAG").read_text(encoding="utf-8") == CACHEDIR_TAG
    except (OSError, ValueError):
        return False


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _last_used(context: Path) -> float:
    """When a run last used a context (its mark; else the folder's own mtime)."""
    for candidate in (context / USED_MARK, context):
        with contextlib.suppress(OSError):
            return candidate.stat().st_mtime
    return float("inf")


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


_CODE: list[str] = []


def code_fingerprint() -> str:
    """connlint's version and the size and mtime of its own files: a changed analysis (an upgrade,
    or an edit in a development checkout) never reads entries another one wrote."""
    if not _CODE:
        here = os.path.dirname(os.path.abspath(__file__))
        parts = [__version__]
        for folder in (here, os.path.join(here, "catalog")):
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            for name in names:
                if name.endswith((".py", ".toml")):
                    stamp = file_stamp(os.path.join(folder, name))
                    parts.append(f"{folder}/{name}:{stamp}")
        _CODE.append(_digest(*parts))
    return _CODE[0]


def _catalog_fingerprint(catalog: Catalog) -> str:
    from connlint.catalog import default_catalog

    if catalog is default_catalog():
        return "default"  # its data file is part of the code fingerprint
    parts = []
    for name in sorted(f.name for f in fields(catalog)):
        value = getattr(catalog, name)
        parts.append(f"{name}={_canonical(value)!r}")
    return _digest(*parts)


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return sorted((repr(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted(repr(_canonical(v)) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value)


def options_key(options: Options, for_summary: bool) -> str:
    """The options an entry depends on. A module summary does not depend on which rules are
    reported, and the project's known exports only decide which modules it may read (its trace)."""
    parts = []
    for f in fields(options):
        if for_summary and f.name in ("select", "ignore", "project_exports"):
            continue
        value = getattr(options, f.name)
        if isinstance(value, frozenset):
            value = sorted(value)
        parts.append(f"{f.name}={value!r}")
    return ";".join(parts)


# ---------------------------------------------------------------------------------------------- traces


@dataclass
class Trace:
    """The questions one computation (a module's summary, a file's check) asked the project index, in
    order, with the answers it got: ``["s", module, fingerprint]`` (a module summary; "h:<name>"
    when asked for the helper <name>, which loads modules that cannot have a factory too),
    ``["f", module, path]`` (where a module is), ``["t", root, attr, answer]`` (a Flask teardown
    handler somewhere under root). A lookup deeper than the index's limit is cut short, so the depth
    the computation started at and the deepest lookup it made are kept too."""

    start: int
    questions: list[list[Json]] = field(default_factory=list)
    deepest: int = -1
    cut: bool = False
    # the files whose content the result depends on, through the summaries it used (transitively)
    files: set[str] = field(default_factory=set)
    volatile: bool = False  # it depends on more than those files (a Flask teardown handler anywhere)
    _asked: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    def ask(self, question: list[Json]) -> None:
        """Record a question once: asked again in the same computation, it gets the same answer (the
        project index keeps its answers for the process; what is being loaded stays so meanwhile)."""
        kind = str(question[0])
        asked = tuple(str(part) for part in question[:-2 if kind == "s" or kind.startswith("h:") else -1])
        if asked not in self._asked:
            self._asked.add(asked)
            self.questions.append(question)

    def to_json(self, stamps: dict[str, list[int] | None]) -> dict[str, Json]:
        """``stamps``: the [mtime, size] of each file as it was when it was read."""
        files = {path: stamps.get(path) or file_stamp(path) for path in sorted(self.files)}
        return {"start": self.start, "questions": self.questions, "deepest": self.deepest, "cut": self.cut,
                "files": files, "volatile": self.volatile}


def depth_allows(data: dict[str, Json], depth: int, limit: int) -> bool:
    """Would the traced computation, started at ``depth`` now, meet the depth limit where it did?"""
    if data["cut"]:
        return bool(data["start"] == depth)
    deepest = int(data["deepest"])
    return deepest < 0 or deepest - int(data["start"]) + depth <= limit


# ---------------------------------------------------------------------------------------------- encoding


def _plain(obj: object) -> dict[str, Json]:
    out: dict[str, Json] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def encode_api(api: ResourceApi) -> dict[str, Json]:
    return _plain(api)


def decode_api(data: dict[str, Json]) -> ResourceApi:
    from connlint.catalog import ResourceApi

    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return ResourceApi(**values)


def encode_factory(factory: Factory) -> dict[str, Json]:
    return {"name": factory.name, "line": factory.line, "api": encode_api(factory.api), "via": factory.via,
            "path": factory.path}


def decode_factory(data: dict[str, Json]) -> Factory:
    from connlint.resolve import Factory

    return Factory(data["name"], data["line"], decode_api(data["api"]), data["via"], data["path"])


def encode_helper(helper: HelperSummary) -> dict[str, Json]:
    return {"params": list(helper.params), "effects": helper.effects}


def decode_helper(data: dict[str, Json]) -> HelperSummary:
    from connlint.events import HelperSummary

    return HelperSummary(tuple(data["params"]), dict(data["effects"]))


def encode_summary(summary: ModuleSummary) -> dict[str, Json]:
    return {
        "factories": {k: encode_factory(v) for k, v in summary.factories.items()},
        "helpers": {k: encode_helper(v) for k, v in summary.helpers.items()},
        "imports": summary.imports,
        "local_functions": sorted(summary.local_functions),
    }


def decode_summary(data: dict[str, Json]) -> ModuleSummary:
    from connlint.project import ModuleSummary

    return ModuleSummary(
        {k: decode_factory(v) for k, v in data["factories"].items()},
        {k: decode_helper(v) for k, v in data["helpers"].items()},
        dict(data["imports"]),
        frozenset(data["local_functions"]),
    )


def summary_fingerprint(encoded: Optional[dict[str, Json]]) -> str:
    """What a consumer of a summary can see, as one string (``-`` for no summary)."""
    if encoded is None:
        return "-"
    return _digest(json.dumps(encoded, sort_keys=True, separators=(",", ":")))[:24]


def encode_finding(finding: Finding) -> list[Json]:
    leak = finding.leak
    leak_data = None if leak is None else [encode_api(leak.api), leak.var, leak.via_with, leak.function_line]
    return [finding.line, finding.col, finding.code, finding.message, finding.end_line, finding.end_col, leak_data]


def decode_finding(data: list[Json]) -> Finding:
    from connlint.checker import Finding, Leak

    line, col, code, message, end_line, end_col, leak_data = data
    leak = None
    if leak_data is not None:
        leak = Leak(decode_api(leak_data[0]), leak_data[1], leak_data[2], leak_data[3])
    return Finding(line, col, code, message, end_line, end_col, leak)
