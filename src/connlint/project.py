"""Ownership across the modules of a project.

A module's factories (functions that return a fresh resource), helpers (functions that release or
keep their argument) and resource-owning classes are summarised by its ``ModuleChecker`` on demand.
The project index finds the module a qualified name lives in — on the file system, from the roots of
the packages being checked — and asks that module's checker. Modules are parsed only when a lookup
reaches them, once per process; the ``ast`` is all it takes (astroid is not needed for these
summaries).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from connlint.catalog import Catalog
from connlint.resolve import Origin

if TYPE_CHECKING:
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
    """Lazily loaded modules of one project, for cross-module summaries."""

    MAX_DEPTH = 8  # re-export chains longer than this are not followed

    def __init__(self, catalog: Catalog, options: Options, roots: set[str] | None = None) -> None:
        self.catalog = catalog
        self.options = options
        self.roots: set[str] = set(roots or ())
        self._modules: dict[str, Optional[ModuleSummary]] = {}
        self._missing: set[str] = set()
        self._found: dict[str, tuple[str, bool] | None] = {}
        self._listings: dict[str, frozenset[str]] = {}
        self._depth = 0

    def add_root(self, root: str) -> None:
        if root not in self.roots:
            self.roots.add(root)
            self._found.clear()

    # ------------------------------------------------------------------ modules

    def find_file(self, module: str) -> tuple[str, bool] | None:
        """The file of a module of the project, and whether it is a package's __init__ (memoised:
        every import of every checked file asks, and each question probes every root)."""
        if module in self._found:
            return self._found[module]
        found = self._found[module] = self._find_file(module)
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

    def remember(self, module: str, summary: ModuleSummary) -> None:
        """The summary of a module the caller checked itself: later lookups need not parse it."""
        self._modules[module] = summary

    def summary(self, module: str) -> ModuleSummary | None:
        """The summary of a project module, parsing it (once per process) if needed."""
        if module in self._modules:
            return self._modules[module]
        if module in self._missing:
            return None
        found = self.find_file(module)
        if found is None:
            self._missing.add(module)
            return None
        path, is_pkg = found
        self._modules[module] = None  # while loading: a cycle of imports sees "not loaded"
        from connlint.checker import ModuleChecker
        from connlint.files import UnreadableFile, read_source

        try:
            text = read_source(path).text
        except UnreadableFile:
            return None
        if not self._may_provide(text):
            return None
        try:
            tree = ast.parse(text, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        checker = ModuleChecker(tree, self.catalog, self.options, text, module=module, is_package=is_pkg,
                                project=self, path=path)
        summary = checker.summary()
        checker.release()
        self._modules[module] = summary
        return summary

    def _may_provide(self, text: str) -> bool:
        """Can this module have a factory or helper worth parsing it for? In a project run, only if
        its text names something the catalog can acquire or an already known factory/helper."""
        allowed = self.options.project_exports
        if allowed is None:
            return True
        from connlint.runner import prefilter

        if prefilter(self.catalog).may_acquire(text):
            return True
        import re

        return not allowed.isdisjoint(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))

    def _split(self, qualified: str) -> list[tuple[str, str]]:
        """(module, key inside it) for each way to split a qualified name, longest module first."""
        parts = qualified.split(".")
        return [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]

    def _lookup(self, qualified: str, what: str) -> object | None:
        if self._depth > self.MAX_DEPTH or not self.roots:
            return None
        self._depth += 1
        try:
            for module, key in self._split(qualified):
                summary = self.summary(module)
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



_PROJECTS: dict[tuple[int, Options], ProjectIndex] = {}


def project_for(catalog: Catalog, options: Options) -> ProjectIndex:
    """This process's project index for a catalog and options (modules parsed once per process)."""
    key = (id(catalog), options)
    found = _PROJECTS.get(key)
    if found is None or found.catalog is not catalog:
        found = _PROJECTS[key] = ProjectIndex(catalog, options)
    return found


def relative_display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def check_project(paths: list[str], options: Options, jobs: int, config: object | None) -> list[FileResult]:
    """Check files as one project: first the files that name something the catalog can acquire,
    then, round by round, the files that name a factory or helper found in the previous round (a
    wrapper module that never names a driver still hands out its connections)."""
    import re
    from dataclasses import replace

    from connlint.files import UnreadableFile, read_source
    from connlint.runner import check_paths

    word = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    known: set[str] = set()  # "root|package.module.name" of every factory and helper found
    results = check_paths(paths, replace(options, project_exports=frozenset()), jobs, config)  # type: ignore[arg-type]
    by_path = {r.path: i for i, r in enumerate(results)}
    new = set().union(*(r.exports for r in results))
    for _ in range(6):
        fresh = new - known
        if not fresh:
            break
        known |= fresh
        # by root: (names, the package name or relative import a caller must also spell)
        wanted: dict[str, list[tuple[str, str]]] = {}
        for item in fresh:
            root, _, qualified = item.partition("|")
            wanted.setdefault(root, []).append((qualified.rpartition(".")[2], qualified.split(".", 1)[0]))
        pending = []
        for r in results:
            if r.error is not None:
                continue
            # files skipped so far, and files checked before these names were known (a cycle of
            # imports: a.py calls b.connect_b(), which wraps a.connect_a())
            root = module_name(r.path)[1]
            if root not in wanted:
                continue
            try:
                text = read_source(r.path).text
            except UnreadableFile:
                continue
            words = set(word.findall(text))
            relative = "from ." in text
            if any(name in words and (package in words or relative) for name, package in wanted[root]):
                pending.append(r.path)
        if not pending:
            break
        names = frozenset(item.rpartition(".")[2] for item in known)
        again = check_paths(pending, replace(options, project_exports=names), jobs, config,  # type: ignore[arg-type]
                            force=True)
        new = set()
        for r in again:
            results[by_path[r.path]] = r
            new |= r.exports
    return results
