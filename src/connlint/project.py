"""Ownership across the modules of a project.

A module's factories (functions that return a fresh resource), helpers (functions that release or
keep their argument) and resource-owning classes are summarised by its ``ModuleChecker`` on demand.
The project index finds the module a qualified name lives in — on the file system, from the roots of
the packages being checked — and asks that module's checker. Modules are parsed only when a lookup
reaches them, once per process; the ``ast`` is all it takes. astroid (``infer.py``) only answers
what a summary cannot: the class of a receiver such as ``get_db(url)`` in ``get_db(url).session()``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional

from connlint.cache import Trace
from connlint.catalog import Catalog
from connlint.resolve import Origin

if TYPE_CHECKING:
    from connlint.cache import Cache, Json
    from connlint.checker import Options
    from connlint.events import HelperSummary
    from connlint.resolve import Factory
    from connlint.runner import FileResult


def module_name(path: str) -> tuple[str, str, bool]:
    """(dotted module name, the folder its top package lives in, is it a package's __init__).

    ``src/myapp/db.py`` with ``src/myapp/__init__.py`` is ``myapp.db`` rooted at ``src``; a file
    outside any package is a top-level module rooted at its own folder."""
    p = Path(os.path.abspath(path))
    is_package = p.name == "__init__.py"
    parts = [] if is_package else [p.stem]
    folder = p.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        if folder.parent == folder:
            break
        folder = folder.parent
    if not parts:  # an __init__.py outside a package chain: unusual, name it by its folder
        parts = [p.parent.name]
        folder = p.parent.parent
    return ".".join(parts), str(folder), is_package


@dataclass(frozen=True)
class ModuleSummary:
    """What other modules need from one module: its factories, helpers and imports (re-exports)."""

    factories: dict[str, Factory]
    helpers: dict[str, HelperSummary]
    imports: dict[str, str]
    local_functions: frozenset[str]

    def factory_for(self, key: str) -> Factory | None:
        return self.factories.get(key)

    def helper_for(self, key: str) -> HelperSummary | None:
        return self.helpers.get(key)


class ProjectIndex:
    """Lazily loaded modules of one project, for cross-module summaries.

    With a cache, a module's summary is read from it instead of parsing the module, as long as the
    module's content and every answer its summary was computed from are unchanged (``_replays``).
    """

    MAX_DEPTH = 8  # re-export chains longer than this are not followed

    def __init__(self, catalog: Catalog, options: Options, roots: set[str] | None = None,
                 cache: Cache | None = None) -> None:
        self.catalog = catalog
        self.options = options
        self.roots: set[str] = set(roots or ())
        self.cache = cache
        self._modules: dict[str, Optional[ModuleSummary]] = {}
        self._missing: set[str] = set()
        # modules whose text names nothing a factory could stem from (``_words_if_unprovided``): factory
        # lookups skip them; a helper lookup, which any module's function can answer, loads them
        self._unprovided: set[str] = set()
        self._words: dict[str, frozenset[str] | None] = {}  # the words of those modules' text
        self._found: dict[str, tuple[str, bool] | None] = {}
        self._listings: dict[str, frozenset[str]] = {}
        self._depth = 0
        self._fingerprints: dict[int, tuple[ModuleSummary, str]] = {}
        # for the cache: each module's file, the files its summary depends on, their stamps when read
        self._paths: dict[str, str] = {}
        self._closures: dict[str, set[str]] = {}
        self._volatile: set[str] = set()
        self.stamps: dict[str, list[int] | None] = {}
        self._now: dict[str, list[int] | None] = {}
        # for later project rounds: the modules each summary's computation found skipped (records of
        # ``SKIPS``), transitively through the summaries it used
        self._skipped: dict[str, frozenset[str]] = {}
        self._definitions: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # path -> definitions()

    def add_root(self, root: str) -> None:
        if root not in self.roots:
            self.roots.add(root)
            self._found.clear()

    # ------------------------------------------------------------------ modules

    def find_file(self, module: str) -> tuple[str, bool] | None:
        """The file of a module of the project, and whether it is a package's __init__ (memoised:
        every import of every checked file asks, and each question probes every root)."""
        if module in self._found:
            found = self._found[module]
        else:
            found = self._found[module] = self._find_file(module)
        if _TRACES:
            _TRACES[-1].ask(["f", module, found[0] if found is not None else None])
            if found is not None:
                _TRACES[-1].files.add(found[0])
        return found

    def _find_file(self, module: str) -> tuple[str, bool] | None:
        rel = module.replace(".", os.sep)
        top = module.partition(".")[0]
        for root in sorted(self.roots):
            if top not in self._top_names(root):
                continue  # "import os": no file system probe in every root
            for candidate, is_pkg in ((os.path.join(root, rel + ".py"), False),
                                      (os.path.join(root, rel, "__init__.py"), True)):
                if os.path.isfile(candidate):
                    return candidate, is_pkg
        return None

    def definitions(self, module: str) -> tuple[frozenset[str], frozenset[str]]:
        """(the names its text spells after ``def``, after ``class``) of a project module, read from
        its text without parsing it: a method of its classes is one of the first. Empty for a module
        that is not in the project (no summary either)."""
        found = self.find_file(module)
        if found is None:
            return _NO_DEFINITIONS
        path = found[0]
        defined = self._definitions.get(path)
        if defined is None:
            text = _read(path)
            defined = _NO_DEFINITIONS if text is None else _definitions(text)
            self._definitions[path] = defined
        if _TRACES:
            _TRACES[-1].ask(["d", module, _digest(defined)])
            _TRACES[-1].files.add(path)
        return defined

    def _top_names(self, root: str) -> frozenset[str]:
        """Names of the modules and folders directly in a root (listed once)."""
        names = self._listings.get(root)
        if names is None:
            try:
                with os.scandir(root) as entries:
                    names = frozenset(e.name[:-3] if e.name.endswith(".py") else e.name for e in entries)
            except OSError:
                names = frozenset()
            self._listings[root] = names
        return names

    def remembered(self, module: str) -> ModuleSummary | None:
        """The summary of a module already loaded or checked in this process, if any."""
        return self._modules.get(module)

    def remember(self, module: str, summary: ModuleSummary, skipped: Iterable[str] | None = None,
                 path: str | None = None) -> None:
        """The summary of a module the caller checked itself (from ``path``): later lookups need not
        parse it, in this process or, through the run's store, in the other workers. ``skipped``: the
        files of the modules its check found skipped (default: those recorded so far by the check
        under way)."""
        self._modules[module] = summary
        self._unprovided.discard(module)
        if skipped is None:
            skipped = SKIPS[-1] if SKIPS else (UNKNOWN_SKIPS,)
        self._skipped[module] = frozenset(skipped)
        path = os.path.abspath(path) if path is not None else self._paths.get(module)
        if path is not None and self.cache is None:
            self._share(path, summary, self._skipped[module])

    def widen(self, options: Options) -> None:
        """Take the options of a later round of a project run, which knows more factory and helper
        names (``project_exports``). A module skipped so far because its text named none of them is
        read again if it names one of the new ones; so is every summary computed while skipping it.
        The other summaries stay: reading them again would give the same."""
        old, new = self.options.project_exports, options.project_exports
        self.options = options
        if old == new:
            return
        if old is None or new is None or not old <= new:
            self._forget(set(self._modules) | self._unprovided)
            return
        names, reach = self._exported
        known_words = {self._paths[m]: self._words.get(m) for m in self._unprovided if m in self._paths}
        again = set()
        for module in self._unprovided:
            words = self._words.get(module)
            path = self._paths.get(module)
            if words is None or path is None or (not names.isdisjoint(words) and reach(path, names & words)):
                again.add(module)

        def words_of(path: str) -> frozenset[str] | None:
            if path not in known_words:  # a file that asked about a whole module
                text = _read(path)
                known_words[path] = frozenset(_WORD.findall(text)) if text is not None else None
            return known_words[path]

        self._forget(again | {m for m, skips in self._skipped.items()
                              if any(skip_matters(skip, names, words_of, reach) for skip in skips)})

    @property
    def _exported(self) -> tuple[frozenset[str], _Reach]:
        """The names of the known factories and helpers (``project_exports``, see ``_exported_names``)
        and what reaches them."""
        exports = self.options.project_exports or frozenset()
        found = getattr(self, "_exported_cache", None)
        if found is None or found[0] is not exports:
            found = self._exported_cache = (exports, frozenset(_exported_names(exports)), _Reach(exports))
        return found[1], found[2]

    def _provides(self, words: Iterable[str], path: str, text: str | None = None) -> bool:
        """Can a module whose text names no driver, with these words, have a factory or helper of the
        known ones? Only if it spells one it can reach (``_Reach``; ``text``: the module's, if read)."""
        names, reach = self._exported
        hits = names.intersection(words)
        if not hits:
            return False
        return reach(path, hits, text.encode("utf-8", "surrogatepass") if text is not None else None)

    def _forget(self, modules: set[str]) -> None:
        for module in modules:
            self._modules.pop(module, None)
            self._unprovided.discard(module)
            self._words.pop(module, None)
            self._skipped.pop(module, None)

    def summary(self, module: str, helper: str | None = None, wants: str = "",
                asker: str = "") -> ModuleSummary | None:
        """The summary of a project module, parsing it (once per process) if needed. When a helper
        named ``helper`` is looked for, also of a module whose text rules out factories (a helper
        that closes or keeps its argument needs no driver name: ``def close_quietly(c): c.close()``)
        but not out that helper, or a re-export of it. ``wants``: the key the caller looks up in it
        ("": any, then ``asker`` is the file of the caller, whose words bound what it looks at); see
        ``skip_matters``."""
        found = self._summary(module, helper)
        if SKIPS:
            self._note_skips(module, found, wants, asker)
        if _TRACES:
            trace = _TRACES[-1]
            kind = "s" if helper is None else f"h:{helper}"
            trace.ask([kind, module, self.fingerprint(found), self._depth - trace.start])
            path = self._paths.get(module)
            if path is not None:
                trace.files.add(path)
                trace.files |= self._closures.get(module, set())
                trace.volatile = trace.volatile or module in self._volatile
        return found

    def _note_skips(self, module: str, found: ModuleSummary | None, wants: str, asker: str) -> None:
        """Record, for the computation under way, a module skipped (see ``skip_matters``) or one
        whose summary's computation skipped some."""
        skips = SKIPS[-1]
        if found is None and module in self._unprovided:
            path = self._paths.get(module)
            if asker and not os.path.isabs(asker):
                asker = os.path.abspath(asker)
            skips.add(f"{wants}\0{path}\0{asker}" if path is not None else UNKNOWN_SKIPS)
        elif found is not None:
            skips |= self._skipped.get(module, {UNKNOWN_SKIPS})

    def _summary(self, module: str, helper: str | None = None) -> ModuleSummary | None:
        if module in self._unprovided:
            if helper is None:
                return None
            if module in self._modules:
                return self._modules[module]
            if not self._may_help(module, helper):
                return None
            return self._load(module, force=True)
        if module in self._modules:
            return self._modules[module]
        return self._load(module, force=helper)

    def _may_help(self, module: str, helper: str) -> bool:
        """Can a module whose text rules out factories have the helper ``helper``? Only if it names
        it, and either a release or keeping method (a helper's summary needs one) or an import (a
        re-export)."""
        words = self._words.get(module)
        return words is None or (helper in words and (
            not self._helper_words.isdisjoint(words) or "import" in words))

    def _skip(self, module: str, words: Iterable[str] | None, force: str | bool | None) -> bool:
        """Mark a module whose text rules out factories; should its loading stop here?"""
        self._unprovided.add(module)
        self._words[module] = frozenset(words) if words is not None else None
        if force is True or (isinstance(force, str) and self._may_help(module, force)):
            return False
        self._modules.pop(module, None)  # not loaded: a later helper lookup may load it
        return True

    def _load(self, module: str, force: str | bool | None) -> ModuleSummary | None:
        if module in self._missing:
            return None
        found = self._found[module] if module in self._found else self._found.setdefault(
            module, self._find_file(module))
        if found is None:
            self._missing.add(module)
            return None
        path, is_pkg = found
        self._modules[module] = None  # while loading: a cycle of imports sees "not loaded"
        self._paths[module] = path
        skipped: set[str] = set()
        SKIPS.append(skipped)
        try:
            if self.cache is not None:
                summary = self._cached_summary(self.cache, module, path, is_pkg, force)
            else:
                text = _read(path)
                if text is None:
                    return None
                words = self._words_if_unprovided(text, path)
                if words is not None and self._skip(module, words, force):
                    return None
                shared = self._shared(path)
                if shared is not None:
                    self._modules[module], self._skipped[module] = shared
                    return shared[0]
                summary = self._compute(module, path, is_pkg, text)
        finally:
            SKIPS.pop()
        if summary is not None:
            self._modules[module] = summary
            self._skipped[module] = frozenset(skipped)
            if self.cache is None:
                self._share(path, summary, self._skipped[module])
        return summary

    # ------------------------------------------------------------------ summaries shared by workers

    def _store_key(self, path: str) -> str | None:
        """Where the workers of this run keep the summary of ``path`` for this round (None: no store)."""
        if not _RUN_STORE:
            return None
        exports = self.options.project_exports
        round_key = "-" if exports is None else ",".join(sorted(exports))
        import hashlib

        digest = hashlib.blake2b(f"{path}\0{round_key}".encode("utf-8", "surrogatepass"), digest_size=16)
        return os.path.join(_RUN_STORE[0], digest.hexdigest())

    def _shared(self, path: str) -> tuple[ModuleSummary, frozenset[str]] | None:
        """The summary of ``path`` another worker of this run computed in this round, if any."""
        key = self._store_key(path)
        if key is None:
            return None
        import pickle

        try:
            with open(key, "rb") as fh:
                found = pickle.load(fh)
        except Exception:  # a damaged entry (the run's own private folder): computed instead
            return None
        return found if isinstance(found, tuple) and len(found) == 2 else None

    def _share(self, path: str, summary: ModuleSummary, skipped: frozenset[str]) -> None:
        key = self._store_key(path)
        if key is None or os.path.exists(key):
            return
        import pickle
        import tempfile

        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(key))
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((summary, skipped), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, key)
        except OSError:
            pass

    def _compute(self, module: str, path: str, is_pkg: bool, text: str) -> ModuleSummary | None:
        try:
            tree = ast.parse(text, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        from connlint.checker import ModuleChecker

        checker = ModuleChecker(tree, self.catalog, self.options, text, module=module, is_package=is_pkg,
                                project=self, path=path)
        summary = checker.summary()
        checker.release()
        return summary

    def _words_if_unprovided(self, text: str, path: str) -> frozenset[str] | None:
        """The words of a module's text if it cannot have a factory or helper worth parsing it for,
        else None. In a project run, a module can only if its text names something the catalog can
        acquire, or an already known factory or helper that it can reach (``_provides``)."""
        if self.options.project_exports is None:
            return None
        from connlint.prefilter import prefilter

        if prefilter(self.catalog).names_catalog(text):
            return None
        words = frozenset(_WORD.findall(text))
        return None if self._provides(words, path, text) else words

    # ------------------------------------------------------------------ the cache

    def _cached_summary(self, cache: Cache, module: str, path: str, is_pkg: bool,
                        force: str | bool | None) -> ModuleSummary | None:
        """``_summary`` through the cache: the entry of an unchanged module whose recorded questions
        still get the same answers gives the summary; otherwise it is computed (and stored)."""
        from connlint.cache import content_hash, file_stamp, options_key

        key = f"summary|{path}|{module}|{is_pkg}|{options_key(self.options, for_summary=True)}"
        entry = cache.load(self.catalog, key)
        stamp = file_stamp(path)
        if stamp is None:
            return None
        text = None
        dirty = False
        self.stamps[path] = stamp
        if entry is None or entry.get("stamp") != stamp:
            text = _read(path)
            if text is None:
                return None
            digest = content_hash(text)
            if entry is None or entry.get("hash") != digest:
                entry = self._new_entry(text, digest)
            entry["stamp"] = stamp
            dirty = True
        try:
            if not self._entry_may_provide(entry, path) and self._skip(module, _entry_words(entry), force):
                return None
            reused, found = self._stored_summary(module, entry.get("result"))
            if reused:
                return found
            if text is None:
                text = _read(path)
                if text is None:
                    return None
                entry = self._new_entry(text, content_hash(text))
                entry["stamp"] = stamp
                dirty = True
                if not self._entry_may_provide(entry, path) and self._skip(module, _entry_words(entry), force):
                    return None
            trace = Trace(self._depth)
            _TRACES.append(trace)
            try:
                summary = self._compute(module, path, is_pkg, text)
            finally:
                _TRACES.pop()
            from connlint.cache import encode_summary, summary_fingerprint

            encoded = encode_summary(summary) if summary is not None else None
            fingerprint = summary_fingerprint(encoded)
            if summary is not None:
                self._fingerprints[id(summary)] = (summary, fingerprint)
            self.settled(module, trace)
            entry["result"] = {"summary": encoded, "fingerprint": fingerprint, "trace": trace.to_json(self.stamps),
                               "skipped": sorted(SKIPS[-1]) if SKIPS else [UNKNOWN_SKIPS]}
            dirty = True
            return summary
        finally:
            if dirty:
                cache.store(self.catalog, key, entry)

    def store_checked(self, module: str, path: str, is_pkg: bool, text: str, stamp: list[int],
                      summary: ModuleSummary, trace: Trace) -> None:
        """Store the summary of a module the caller checked, for lookups of later runs that do not
        check it (one file in pre-commit, the flake8 plugin)."""
        if self.cache is None:
            return
        from connlint.cache import content_hash, encode_summary, options_key, summary_fingerprint

        key = f"summary|{path}|{module}|{is_pkg}|{options_key(self.options, for_summary=True)}"
        entry = self._new_entry(text, content_hash(text))
        entry["stamp"] = stamp
        encoded = encode_summary(summary)
        entry["result"] = {"summary": encoded, "fingerprint": summary_fingerprint(encoded),
                           "trace": trace.to_json(self.stamps),
                           "skipped": sorted(self._skipped.get(module, (UNKNOWN_SKIPS,)))}
        self.cache.store(self.catalog, key, entry)

    def _new_entry(self, text: str, digest: str) -> dict[str, object]:
        from connlint.prefilter import prefilter

        acquires = prefilter(self.catalog).names_catalog(text)
        # the words are kept for _entry_may_provide in later project rounds, which name known factories
        return {"hash": digest, "acquires": acquires, "words": None if acquires else sorted(set(_WORD.findall(text)))}

    def _entry_may_provide(self, entry: dict[str, object], path: str) -> bool:
        if self.options.project_exports is None or entry.get("acquires"):
            return True
        words = entry.get("words")
        return not isinstance(words, list) or self._provides(words, path)

    @property
    def _helper_words(self) -> frozenset[str]:
        """Words without which a module's summary has no helper (``ModuleChecker.summary`` only
        summarises functions that name a release, a pool release or a keeping method)."""
        found = getattr(self, "_helper_words_cache", None)
        if found is None:
            from connlint.checker import ModuleChecker

            apis = set(self.catalog.resources.values())
            found = frozenset({name for api in apis for name in (*api.release, *api.pool_release)}
                              | ModuleChecker.HELPER_WORDS)
            self._helper_words_cache = found
        return found

    def _stored_summary(self, module: str, result: object) -> tuple[bool, ModuleSummary | None]:
        """(True, the stored summary) if it is still valid, else (False, None)."""
        if not isinstance(result, dict):
            return False, None
        try:
            if not self.valid(result["trace"]):
                return False, None
            self.settled(module, result["trace"])
            encoded = result["summary"]
            if encoded is None:
                return True, None
            if SKIPS:
                SKIPS[-1].update(result.get("skipped", [UNKNOWN_SKIPS]))
            from connlint.cache import decode_summary

            summary = decode_summary(encoded)
            self._fingerprints[id(summary)] = (summary, str(result["fingerprint"]))
            return True, summary
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return False, None  # an entry of some other shape: computed again

    def valid(self, data: dict[str, Json]) -> bool:
        """Is a stored result still what its computation would give? Yes if no file it depends on
        changed (whatever this process has loaded so far), or if its questions get the same answers."""
        return self.unchanged(data) or self.replays(data)

    def unchanged(self, data: dict[str, Json]) -> bool:
        if data["volatile"]:
            return False
        for path, stamp in data["files"].items():
            now = self._now.get(path, False)
            if now is False:
                from connlint.cache import file_stamp

                now = self._now[path] = file_stamp(path)
            if now != stamp:
                return False
        return True

    def settled(self, module: str, trace: Trace | dict[str, Json]) -> None:
        """The files a module's summary depends on (from the trace it was computed or stored with)."""
        if isinstance(trace, Trace):
            files, volatile = trace.files, trace.volatile
        else:
            files, volatile = set(trace["files"]), bool(trace["volatile"])
        self._closures[module] = files
        if volatile:
            self._volatile.add(module)

    def checked(self, module: str, path: str, stamp: list[int], trace: Trace | dict[str, Json]) -> None:
        """A module the caller checked (or took from the cache), whose summary it remembered."""
        self._paths[module] = path
        self.stamps[path] = stamp
        self.settled(module, trace)

    def replays(self, data: object) -> bool:
        """Does every question a computation recorded (``Trace``) get the same answer now? They are
        asked in the order and at the depth the computation asked them, so that what they load on the
        way is what the computation itself would load."""
        from connlint.cache import depth_allows

        if not isinstance(data, dict):
            return False
        questions = data["questions"]
        if not isinstance(questions, list) or not depth_allows(data, self._depth, self.MAX_DEPTH):
            return False
        if questions and not self.roots:
            return False
        start = self._depth
        _TRACES.append(Trace(start))  # what the answers ask on their way belongs to them, not to our caller
        try:
            for question in questions:
                kind = question[0]
                if kind == "s" or kind.startswith("h:"):
                    self._depth = start + int(question[3])
                    answer: object = self.fingerprint(self._summary(question[1], kind[2:] or None))
                elif kind == "f":
                    found = self._find_file(question[1])
                    answer = found[0] if found is not None else None
                elif kind == "d":
                    answer = _digest(self.definitions(question[1]))
                elif kind == "t":
                    from connlint.frameworks import torn_down_elsewhere

                    answer = torn_down_elsewhere(question[2], question[1])
                else:
                    return False
                if answer != question[2 if kind == "s" or kind.startswith("h:") else -1]:
                    return False
            return True
        finally:
            self._depth = start
            _TRACES.pop()

    def tracing(self) -> Trace:
        """Start recording the questions of a computation (a file's check); ``done`` ends it."""
        trace = Trace(self._depth)
        _TRACES.append(trace)
        return trace

    @staticmethod
    def done(trace: Trace) -> None:
        if _TRACES and _TRACES[-1] is trace:
            _TRACES.pop()

    def fingerprint(self, summary: ModuleSummary | None) -> str:
        if summary is None:
            return "-"
        known = self._fingerprints.get(id(summary))
        if known is not None and known[0] is summary:
            return known[1]
        from connlint.cache import encode_summary, summary_fingerprint

        fingerprint = summary_fingerprint(encode_summary(summary))
        self._fingerprints[id(summary)] = (summary, fingerprint)
        return fingerprint

    # ------------------------------------------------------------------ lookups

    def _split(self, qualified: str) -> list[tuple[str, str]]:
        """(module, key inside it) for each way to split a qualified name, longest module first."""
        parts = qualified.split(".")
        return [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]

    def _lookup(self, qualified: str, what: str) -> object | None:
        if _TRACES:
            trace = _TRACES[-1]
            trace.deepest = max(trace.deepest, self._depth)
            trace.cut = trace.cut or self._depth > self.MAX_DEPTH
        if self._depth > self.MAX_DEPTH or not self.roots:
            return None
        self._depth += 1
        try:
            for module, key in self._split(qualified):
                summary = self.summary(module, key.partition(".")[0] if what == "helper" else None, wants=key)
                if summary is None:
                    continue
                found: object | None = summary.factory_for(key) if what == "factory" else summary.helper_for(key)
                if found is not None:
                    return found
                # a re-export: "from .db import get_conn" in myapp/__init__.py
                head, _, rest = key.partition(".")
                target = summary.imports.get(head)
                if target is not None and target != qualified:
                    return self._lookup(f"{target}.{rest}" if rest else target, what)
                return None
            return None
        finally:
            self._depth -= 1

    # ------------------------------------------------------------------ what other modules ask

    def origin(self, qualified: str) -> Origin | None:
        """The resource a call of ``qualified`` (a project factory or resource class) acquires."""
        factory = self._lookup(qualified, "factory")
        if factory is None:
            return None
        from connlint.resolve import Factory

        assert isinstance(factory, Factory)
        where = factory.path or qualified.rpartition(".")[0]
        return Origin(factory.api, f" ({where}:{factory.line}, {factory.via})")

    def helper(self, qualified: str) -> HelperSummary | None:
        found = self._lookup(qualified, "helper")
        return found  # type: ignore[return-value]


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The computations under way that record what they ask the project index (the innermost last); empty
# unless a cache is in use.
_TRACES: list[Trace] = []
_CACHE: list[Cache] = []  # the cache of this process's runs, if any
_PROJECTS: dict[tuple[int, Options], ProjectIndex] = {}
_RUN_STORE: list[str] = []  # the folder where the workers of a run share summaries (run_store)


def use_run_store(folder: str | None) -> None:
    _RUN_STORE[:] = [folder] if folder else []

# The files of the modules that lookups found skipped (``ProjectIndex._unprovided``: their text names
# nothing a factory could come from, in this round) during the computations under way, innermost last.
# A file whose check skipped no module that a later round's names make worth reading would get the
# same findings in that round: it is not checked again. "*": not known (a result stored without them).
SKIPS: list[set[str]] = []
UNKNOWN_SKIPS = "*"


def skip_matters(skip: str, names: frozenset[str], words_of: Callable[[str], frozenset[str] | None],
                 reaches: Callable[[str, Collection[str]], bool] | None = None) -> bool:
    """Could a module skipped in an earlier round answer what was asked of it differently with these
    known factory and helper ``names``? (``skip``: the key asked, the module's file and the asking
    file, NUL-separated, from ``SKIPS``; ``words_of``: a file's words, None if not known; ``reaches``:
    can the file at a path reach one of these names, see ``_Reach``.)

    Read now (its text spells one of the names), it has an answer for ``key`` only if it spells the
    key's head, and the answer is a factory or helper only if a part of the key is among the names:
    the module defines it (its own check found and exported it) or re-exports one found elsewhere.
    A question about the whole module (no key: which of its factories does a function of ``asker``
    call?) can only be answered by a factory whose name both files spell. Either way the skipped
    module must be able to reach the name: its text names no driver, so a factory or helper of its
    own would wrap that one."""
    if skip == UNKNOWN_SKIPS:
        return True
    key, path, asker = skip.split("\0")
    words = words_of(path)
    if words is None:
        return True
    if names.isdisjoint(words):
        return False
    if not key:
        asking = words_of(asker) if asker else None
        hits = names & words if asking is None else names & words & asking
    else:
        parts = key.split(".")
        hits = names.intersection(parts) if parts[0] in words else frozenset()
    return bool(hits) and (reaches is None or reaches(path, hits))


class _Reach:
    """Can the file at ``path`` reach one of ``hits``, names of the factories and helpers found so far
    (``root|package.module.name``; a factory method's class name counts as well)? Only through an
    import of the name's package, or a relative import within the name's root: what ``_FreshNames``
    asks of a file that was not checked."""

    def __init__(self, known: Iterable[str]) -> None:
        self.by_name: dict[str, set[tuple[str, bytes]]] = {}
        self.anywhere: set[str] = set()  # names given without their root and module: reachable
        for item in known:
            export = _export_parts(item)
            if export.root is None:
                self.anywhere.add(export.name)
                continue
            where = (export.root, export.package.encode("utf-8"))
            self.by_name.setdefault(export.name, set()).add(where)
            if export.cls is not None:
                self.by_name.setdefault(export.cls, set()).add(where)

    def __call__(self, path: str, hits: Collection[str], data: bytes | None = None) -> bool:
        """``data``: the file's bytes, if the caller has them."""
        if not self.anywhere.isdisjoint(hits):
            return True
        found = {where for name in hits for where in self.by_name.get(name, ())}
        if not found:
            return True  # a name this does not know: it may
        if data is None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                return True
        return _reaches(path, data, found)


def _reaches(path: str, data: bytes, found: Collection[tuple[str, bytes]]) -> bool:
    """Does the file at ``path`` (its bytes: ``data``) import one of the packages of ``found``, (root,
    package) pairs, or use relative imports in one of their roots?"""
    if any(package in data and _imports_package(package).search(data)  # bytes.find first: fast
           for package in sorted({p for _, p in found})):
        return True
    return b"from ." in data and module_name(path)[1] in {root for root, _ in found}


def _entry_words(entry: dict[str, object]) -> list[str] | None:
    words = entry.get("words")
    return words if isinstance(words, list) else None


_NO_DEFINITIONS: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
_DEFINITION = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+(\w+)", re.M)


def _definitions(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The names ``text`` spells after ``def`` and after ``class`` at the start of a line (in code or
    in a string alike: a superset of what it defines)."""
    functions: set[str] = set()
    classes: set[str] = set()
    for keyword, name in _DEFINITION.findall(text):
        (functions if keyword == "def" else classes).add(name)
    return frozenset(functions), frozenset(classes)


def _digest(definitions: tuple[frozenset[str], frozenset[str]]) -> str:
    import hashlib

    return hashlib.blake2b("\0".join([*sorted(definitions[0]), "", *sorted(definitions[1])]).encode(
        "utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _read(path: str) -> str | None:
    from connlint.files import UnreadableFile, read_source

    try:
        return read_source(path).text
    except UnreadableFile:
        return None


def note(question: list[object]) -> None:
    """Record a question another module answered (a Flask teardown handler) in the computation under way:
    its result depends on files the trace cannot list, so only the answers can tell it is still valid."""
    if _TRACES:
        _TRACES[-1].ask(question)
        _TRACES[-1].volatile = True


def depends_on(question: list[object], files: Iterable[str]) -> None:
    """Record an answer that read ``files`` (astroid's inference) in the computation under way: a
    stored result stays valid while they are unchanged; when one changes, the question (of a kind
    that cannot be replayed) makes it computed again."""
    if _TRACES:
        _TRACES[-1].ask(question)
        _TRACES[-1].files.update(files)


def use_cache(cache: Cache | None) -> None:
    """The cache of this process's checks from now on (None: no cache)."""
    _CACHE[:] = [cache] if cache is not None else []
    for project in _PROJECTS.values():
        project.cache = cache


def active_cache() -> Cache | None:
    return _CACHE[0] if _CACHE else None


# The package roots of every file of the run. Every process knows all of them before its first lookup:
# a root a -j worker had not yet seen (no file of it checked there) made "import x" resolve, or not,
# depending on which files the worker had been given, so output could change with -j.
_DECLARED_ROOTS: set[str] = set()


def package_roots(paths: Iterable[str]) -> set[str]:
    """The root of each file (``module_name(path)[1]``), from one probe per folder: a run of
    thousands of files has a few hundred folders."""
    folders: dict[str, str] = {}

    def root_of(folder: str) -> str:
        found = folders.get(folder)
        if found is None:
            parent = os.path.dirname(folder)
            in_package = (parent != folder and os.path.basename(folder).isidentifier()
                          and os.path.isfile(os.path.join(folder, "__init__.py")))
            found = folders[folder] = root_of(parent) if in_package else folder
        return found

    roots = set()
    for path in paths:
        full = os.path.abspath(path)
        folder = os.path.dirname(full)
        if os.path.basename(full) == "__init__.py" and not os.path.basename(folder).isidentifier():
            roots.add(os.path.dirname(folder))
        else:
            roots.add(root_of(folder))
    return roots


def declare_roots(roots: Iterable[str]) -> None:
    """The roots of this run (replacing those of an earlier run in the same process)."""
    _DECLARED_ROOTS.clear()
    _DECLARED_ROOTS.update(roots)


def declared_roots() -> frozenset[str]:
    return frozenset(_DECLARED_ROOTS)


def project_for(catalog: Catalog, options: Options) -> ProjectIndex:
    """This process's project index for a catalog and options (modules parsed once per process)."""
    # one index for all rounds of a run and all per-file ignores: summaries depend on neither
    key = (id(catalog), replace(options, select=(), ignore=(), project_exports=None))
    found = _PROJECTS.get(key)
    if found is None or found.catalog is not catalog:
        found = _PROJECTS[key] = ProjectIndex(catalog, options, cache=active_cache())
    elif found.options != options:
        found.widen(options)
    if not found.roots >= _DECLARED_ROOTS:
        for root in sorted(_DECLARED_ROOTS - found.roots):
            found.add_root(root)
    return found


# the end of an export (``FileResult.exports``) that is a releasing helper, not a factory
HELPER_EXPORT = "#release"


class _Export(NamedTuple):
    root: str | None  # None: a bare name
    package: str
    name: str
    cls: str | None  # the class of a method (``Database`` of ``myapp.db.Database.session``)
    helper: bool  # a releasing helper, not a factory


def _export_parts(item: str) -> _Export:
    """The parts of an export ``root|package.module.name`` (``FileResult.exports``)."""
    root, found, qualified = item.rpartition("|")
    helper = qualified.endswith(HELPER_EXPORT)
    if helper:
        qualified = qualified[:-len(HELPER_EXPORT)]
    parts = qualified.split(".")
    cls = parts[-2] if len(parts) >= 3 and parts[-2][:1].isupper() else None
    return _Export(root if found else None, parts[0], parts[-1], cls, helper)


def _exported_names(known: Iterable[str]) -> Iterator[str]:
    """The names of ``root|package.module.name`` items, and the class names of factory methods."""
    for item in known:
        export = _export_parts(item)
        yield export.name
        if export.cls is not None:
            yield export.cls


_IMPORT_LINE = re.compile(
    r"[ \t]*(?:from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import[ \t]+\(?([\w., \t]*)|import[ \t]+([\w., \t]+))")


def _import_lines(text: str) -> Iterator[tuple[str, str, str, str]]:
    """(dots, module, names, plain) of each line that starts with an import statement. The lines
    are found from the word "import" (str.find): a regex tried at every line start took six times
    as long."""
    last = -1
    at = text.find("import")
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        if start != last:
            last = start
            found = _IMPORT_LINE.match(text, start)
            if found is not None:
                dots, source, names, plain = found.groups()
                yield dots or "", source or "", names or "", plain or ""
        at = text.find("import", at + 6)


def imported_modules(text: str, path: str) -> tuple[str, ...]:
    """The modules a file's text imports, by their absolute names, read off its import lines without
    parsing it (``from . import db`` in myapp/views.py: ``myapp``, ``myapp.db``). A name imported from
    a module may be a submodule: both are listed. Names on the continuation lines of a parenthesised
    import are not (they only order the checks, see ``dependencies_first``)."""
    found: set[str] = set()
    package: str | None = None
    for dots, source, names, plain in _import_lines(text):
        if plain:
            found.update(item.split()[0] for item in plain.split(",") if item.split())
            continue
        if dots:
            if package is None:
                module, _, is_package = module_name(path)
                package = module if is_package else module.rpartition(".")[0]
            parts = package.split(".") if package else []
            if len(dots) > 1:
                parts = parts[:len(parts) - (len(dots) - 1)] if len(dots) - 1 <= len(parts) else []
            source = ".".join([*parts, source] if source else parts)
        if not source:
            continue
        found.add(source)
        found.update(f"{source}.{item.split()[0]}" for item in names.split(",") if item.split())
    return tuple(sorted(found))


def dependencies_first(paths: list[str], imports: dict[str, tuple[str, ...]],
                       size: Callable[[str], int]) -> list[str]:
    """``paths`` in the order to check them: a module before the modules that import it, so that its
    check's summary serves its importers (in the same worker, or through the run's store) instead of
    being computed for them first; then the files no other file imports, largest first (they even out
    the workers at the end). A cycle of imports is cut where the walk meets it."""
    by_module: dict[str, str] = {}
    for path in paths:
        by_module.setdefault(module_name(path)[0], path)
    deps = {path: sorted({by_module[m] for m in imports.get(path, ()) if m in by_module} - {path}) for path in paths}
    imported = {dep for found in deps.values() for dep in found}
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(imported, key=lambda p: (-size(p), p)):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(deps[start]))]
        while stack:  # post-order: what a module imports before the module
            path, pending = stack[-1]
            for dep in pending:
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, iter(deps[dep])))
                    break
            else:
                stack.pop()
                order.append(path)
    return order + sorted((p for p in paths if p not in seen), key=lambda p: (-size(p), p))


class _FreshNames:
    """Does a file spell a factory or helper name found in the last round, in a way that can reach
    it? A name of the file's own root may come through a relative import; one of another root (a
    src/ package used by tests/, a library used by an app) only through an import of its package
    ("connection" and "databases" are in many files that never import databases). The file's bytes
    are searched: most files spell none of the packages, and of the rest most spell none of the names.
    """

    def __init__(self, fresh: Iterable[str]) -> None:
        # "root|package.module.name" -> name: [(root, package, a class name the file must spell too)]
        self.by_name: dict[bytes, list[tuple[str, bytes, bytes | None]]] = {}
        spelled: set[bytes] = set()
        for item in fresh:
            export = _export_parts(item)
            name = export.name.encode("utf-8")
            # a releasing helper method reaches a file only as Cls.method(x) or mod.Cls.method(x) (see
            # EventBuilder._call): the file spells the class; a factory method is also called on
            # receivers astroid infers (get_db().session())
            cls = export.cls.encode("utf-8") if export.helper and export.cls is not None else None
            self.by_name.setdefault(name, []).append((export.root or "", export.package.encode("utf-8"), cls))
            spelled.add(name)
            if cls is not None:
                spelled.add(cls)
        self.packages = sorted({package for found in self.by_name.values() for _, package, _ in found})
        self.spelled = _spelling(spelled)

    def __call__(self, path: str) -> bool:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        relative = b"from ." in data
        # a few packages: most files spell none (bytes.find is fast); many: one pass of the import
        # pattern costs less than a search for each (corpus: 0.1 s against 0.19 s for 21 packages)
        imports = ((len(self.packages) > 4 or any(package in data for package in self.packages))
                   and _imports_packages(tuple(self.packages)).search(data) is not None)
        if not relative and not imports:
            return False
        names = set(self.spelled.findall(data))
        found = {(root, package) for name in names for root, package, cls in self.by_name.get(name, ())
                 if cls is None or cls in names}
        return bool(found) and _reaches(path, data, found)


def _imports_package(package: bytes) -> re.Pattern[bytes]:
    """A line of a file's bytes that imports ``package`` (``from pkg...``, ``import pkg``, ``import
    a, pkg.b as c``), not a relative import or a name imported from another package."""
    return _imports_packages((package,))


@functools.lru_cache(maxsize=256)
def _imports_packages(packages: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """A line of a file's bytes that imports one of ``packages`` (see ``_imports_package``)."""
    names = b"|".join(re.escape(package) for package in packages)
    return re.compile(rb"^[ \t]*(?:from[ \t]+(?:%s)\b|import[ \t]+(?:[\w. \t]*,[ \t]*)*(?:%s)\b)" % (names, names),
                      re.M)


# a byte of a name in a file's bytes: a letter, digit, _, or a byte of a non-ASCII letter's UTF-8 form
_NAME_BYTE = rb"[A-Za-z0-9_\x80-\xff]"


def _spelling(names: Collection[bytes]) -> re.Pattern[bytes]:
    """A pattern that finds any of ``names`` (UTF-8) as a whole word in a file's bytes. The names are
    put in a trie (``connect|connection`` is ``connect(?:ion)?``): an alternation of a hundred names
    took three times as long to search the corpus with."""
    trie: dict[int, dict] = {}  # type: ignore[type-arg]
    for name in names:
        node = trie
        for byte in name:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def build(node: dict[int, dict]) -> bytes:  # type: ignore[type-arg]
        alternatives = [re.escape(bytes([byte])) + build(rest) for byte, rest in sorted(node.items()) if byte >= 0]
        if not alternatives:
            return b""
        body = alternatives[0] if len(alternatives) == 1 else b"(?:" + b"|".join(alternatives) + b")"
        return b"(?:" + body + b")?" if -1 in node else body

    if not trie:
        return re.compile(rb"(?!)")
    if all(name.isascii() for name in names):  # \b is far faster than a lookbehind at every byte
        return re.compile(rb"\b%s\b" % build(trie))
    return re.compile(rb"(?<!%s)%s(?!%s)" % (_NAME_BYTE, build(trie), _NAME_BYTE))


def relative_display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def check_project(paths: list[str], options: Options, jobs: int, config: object | None) -> list[FileResult]:
    """Check files as one project: first the files that name something the catalog can acquire,
    then, round by round, the files that name a factory or helper found in the previous round (a
    wrapper module that never names a driver still hands out its connections). The rounds share one
    pool of workers, which keep what they parsed and inferred."""
    from connlint.runner import shared_pool

    with shared_pool(jobs, config):  # type: ignore[arg-type]
        return _check_rounds(paths, options, jobs, config)


def _first_round(paths: list[str], options: Options, jobs: int, config: object | None) -> list[FileResult]:
    """Check the files that name a driver. Without a cache, the workers first tell which files those
    are and what they import, and the files are checked modules before their importers
    (``dependencies_first``). With a cache, most files are answered from it: the files go straight to
    the checks."""
    from connlint.runner import FileResult, Survey, _size, check_paths, map_paths

    if active_cache() is not None:
        return check_paths(paths, options, jobs, config, force=False)  # type: ignore[arg-type]
    surveyed = map_paths(Survey(config), paths, jobs, config)  # type: ignore[arg-type]
    needed = {path: imports for path, (needs, imports) in zip(paths, surveyed) if needs}
    checked = check_paths(dependencies_first(list(needed), needed, _size), options, jobs, config,  # type: ignore[arg-type]
                          force=True, ordered=True)
    by_path = {r.path: r for r in checked}
    return [by_path[path] if path in needed else FileResult(path, prefiltered=True) for path in paths]


def _check_rounds(paths: list[str], options: Options, jobs: int, config: object | None) -> list[FileResult]:
    from connlint.files import UnreadableFile, read_source
    from connlint.runner import check_paths, map_paths

    declare_roots(package_roots(paths))
    _PROJECTS.clear()  # what an earlier run in this process loaded may have changed since
    known: set[str] = set()  # "root|package.module.name" of every factory and helper found

    @functools.cache
    def words_of(path: str) -> frozenset[str]:
        try:
            return frozenset(_WORD.findall(read_source(path).text))
        except UnreadableFile:
            return frozenset()

    results = _first_round(paths, replace(options, project_exports=frozenset()), jobs, config)
    by_path = {r.path: i for i, r in enumerate(results)}
    new = set().union(*(r.exports for r in results))
    for _ in range(6):
        fresh = new - known
        if not fresh:
            break
        known |= fresh
        # the names a module must spell to be summarised for later lookups: the factory's, and the
        # class's of a factory method (a package's __init__ re-exporting Database, of Database.session)
        names = frozenset(_exported_names(known))
        reach = _Reach(known)
        candidates = []
        for r in results:
            if r.error is not None:
                continue
            if (not r.prefiltered and r.skipped is not None
                    and not any(skip_matters(skip, names, words_of, reach) for skip in r.skipped)):
                # checked already, and every module its check skipped (for naming no driver) is
                # still skipped with these names: checked again, it would see the same summaries
                continue
            # files skipped so far, and files checked before these names were known (a cycle of
            # imports: a.py calls b.connect_b(), which wraps a.connect_a())
            candidates.append(r.path)
        # reading thousands of files: in the workers
        reached = map_paths(_FreshNames(fresh), candidates, jobs, config)  # type: ignore[arg-type]
        pending = [path for path, yes in zip(candidates, reached) if yes]
        if not pending:
            break
        again = check_paths(pending, replace(options, project_exports=frozenset(known)), jobs, config,  # type: ignore[arg-type]
                            force=True)
        new = set()
        for r in again:
            results[by_path[r.path]] = r
            new |= r.exports
    return results
