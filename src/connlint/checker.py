"""From a module's ``ast`` to findings: resolve, build each function's graph, run the dataflow,
turn the leaks into findings with a code from ``rules``.

Both entry points (the CLI and the flake8 plugin) call ``check_tree``; nothing here prints.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional, Union

from connlint import cfg, rules
from connlint.catalog import Catalog, ResourceApi, default_catalog
from connlint.classes import ClassOwnership, class_ownership
from connlint.dataflow import Analysis, Result
from connlint.events import STORING_METHODS, EventBuilder, HelperSummary, Site
from connlint.project import ModuleSummary, ProjectIndex, depends_on
from connlint.resolve import Factory, Resolver, Scope, dotted

if TYPE_CHECKING:
    from connlint.infer import ModuleInference

FuncDef = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class Leak:
    """What the analysis knows about a finding's resource (for fixes and machine-readable output)."""

    api: ResourceApi
    var: Optional[str]
    via_with: bool  # bound by a with-statement whose context manager does not close
    function_line: int  # the def line of the function that owns the resource (0: module level)


@dataclass(frozen=True, order=True)
class Finding:
    line: int
    col: int  # 1-based
    code: str
    message: str
    end_line: int = 0
    end_col: int = 0
    leak: Optional[Leak] = field(default=None, compare=False, hash=False, repr=False)

    @property
    def name(self) -> str:
        return rules.BY_CODE[self.code].name


@dataclass(frozen=True)
class Options:
    """Analysis settings (the configuration file and the command line fill these in)."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    budget: int = cfg.DEFAULT_BUDGET
    # qualified names of functions that release the resource passed to them (myapp.db.put_conn)
    release_helpers: tuple[str, ...] = ()
    # what an unknown call does with a resource passed to it: "borrow" (the caller still owns it)
    # or "hand-off" (the callee may keep it: fewer reports)
    unknown_calls: str = "borrow"
    # "astroid": receivers the summaries cannot type are inferred with astroid (infer.py); "off"
    inference: str = "astroid"
    # project runs: other modules are parsed for their factories only if their text names something
    # the catalog can acquire or one of these already known factories and helpers that it can reach
    # ("root|package.module.name"; a bare name: reachable from anywhere) (None: any module)
    project_exports: Optional[frozenset[str]] = None

    def enabled(self, code: str) -> bool:
        return rules.is_enabled(code, self.select, self.ignore)


# ---------------------------------------------------------------------------------------------- prefilter

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# the patterns of a match statement that bind names (Python 3.10+)
_MATCH_CAPTURES = tuple(getattr(ast, name) for name in ("MatchAs", "MatchStar", "MatchMapping") if hasattr(ast, name))
# What the parameter tests of ModuleChecker._may_take_parameter look for, as text (supersets):
# a name returned or assigned ("return conn", "self.conn = conn", also across a line break or a
# parenthesis), "name.method(" ("conn.close(", "(conn).close("), and ".method(" on any receiver.
_PASSED_ON = re.compile(r"(?:\breturn\b|=)[\s(\\]*([A-Za-z_][A-Za-z0-9_]*)")
_NAME_METHOD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[\s)\\]*\.[\s\\]*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_METHOD = re.compile(r"\.[\s\\]*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def mentions_catalog(source: str, catalog: Catalog) -> bool:
    """Cheap text test: can this file acquire anything at all? It must name a catalog module."""
    roots = catalog.root_modules
    return any(word in roots for word in set(_WORD.findall(source)))


# ---------------------------------------------------------------------------------------------- functions


@dataclass
class _Func:
    node: FuncDef
    cls: Optional[str]
    key: Optional[str]  # name under which same-module callers find it ("f" or "Class.m")
    resolver: Resolver
    graph: Optional[cfg.Graph] = None
    _mode: Optional[str] = None

    @property
    def mode(self) -> str:
        """function | generator | contextmanager | fixture (computed when first needed)."""
        if self._mode is None:
            self._mode = _mode(self.node, self.resolver)
        return self._mode


def _decorator_names(func: FuncDef, resolver: Resolver) -> set[str]:
    names: set[str] = set()
    for dec in func.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        q = resolver.imports.qualify(target)
        names.add(q or dotted(target) or "")
    return names


_FIXTURES = {"pytest.fixture", "pytest_asyncio.fixture"}
_CONTEXT_MANAGERS = {"contextlib.contextmanager", "contextlib.asynccontextmanager"}


def _mode(func: FuncDef, resolver: Resolver) -> str:
    decorators = _decorator_names(func, resolver)
    if decorators & _FIXTURES:
        return "fixture"
    if decorators & _CONTEXT_MANAGERS:
        return "contextmanager"
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in resolver.index.of(func)):
        return "generator"
    return "function"


def _functions(tree: ast.Module, resolver: Resolver) -> list[_Func]:
    """Every function and method of the module, nested ones included, in source order. ``key`` is
    the name same-module callers find it by ("f" or "Class.m"), for those not nested in a function.
    Iterative (a 1,000-branch elif chain does not exhaust the stack), and it reads only the statement
    lists of each node, never its expressions."""
    found: list[_Func] = []
    # (statement, enclosing class, at module or class level), in reverse source order
    stack: list[tuple[ast.stmt, Optional[str], bool]] = [(stmt, None, True) for stmt in reversed(tree.body)]
    while stack:
        node, cls, top = stack.pop()
        kind = type(node)
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            key = (f"{cls}.{node.name}" if cls else node.name) if top else None  # type: ignore[attr-defined]
            found.append(_Func(node, cls, key, resolver))  # type: ignore[arg-type]
            stack.extend((child, None, False) for child in reversed(node.body))  # type: ignore[attr-defined]
            continue
        if kind is ast.ClassDef:
            stack.extend((child, node.name, top) for child in reversed(node.body))  # type: ignore[attr-defined]
            continue
        if kind not in _COMPOUND:
            continue
        children: list[ast.stmt] = []
        for field_name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field_name, ()) or ():
                if type(child) is ast.ExceptHandler or type(child).__name__ == "match_case":
                    children.extend(child.body)
                else:
                    children.append(child)
        stack.extend((child, cls, top) for child in reversed(children))
    return found


# statements that hold other statements (where a def can hide: "if TYPE_CHECKING: def ...")
_COMPOUND = frozenset(
    getattr(ast, name) for name in ("If", "For", "AsyncFor", "While", "With", "AsyncWith", "Try", "TryStar", "Match")
    if hasattr(ast, name)
)


def _outside_names(func: FuncDef, resolver: Resolver) -> frozenset[str]:
    names: set[str] = set()
    for node in resolver.index.of(func):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return frozenset(names)


def _params(func: FuncDef) -> list[str]:
    a = func.args
    return [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


# ---------------------------------------------------------------------------------------------- module


class _LazyHelpers:
    """The helpers mapping the event builder reads; each summary is computed when first asked for."""

    def __init__(self, checker: ModuleChecker) -> None:
        self.checker = checker

    def get(self, key: str) -> HelperSummary | None:
        checker = self.checker
        if key in checker.by_key or checker.project is None:
            return checker.helper_for(key)
        head, _, rest = key.partition(".")
        target = checker.resolver.imports.names.get(head)
        if target is None:
            return None
        return checker.project.helper(f"{target}.{rest}" if rest else target)


class ModuleChecker:
    """Analyses the functions of one module that can acquire something.

    Same-module factories and helpers are summarised on demand: asking whether ``get_conn()``
    acquires analyses ``get_conn`` first (once; a cycle of calls answers "no" inside the cycle).
    ``source``, when given, lets functions that name nothing that can acquire be skipped from their
    text alone, without walking their trees.
    """

    def __init__(self, tree: ast.Module, catalog: Catalog, options: Options, source: str | None = None, *,
                 module: str | None = None, is_package: bool = False, project: ProjectIndex | None = None,
                 path: str | None = None) -> None:
        self.tree = tree
        self.catalog = catalog
        self.options = options
        self.path = path
        self.project = project
        self.resolver = Resolver(tree, catalog, module, is_package)
        if project is not None:
            self.resolver.project_lookup = project.origin
        self.lines = source.splitlines() if source is not None else None
        self.release_names = frozenset(
            name for api in set(catalog.resources.values()) for name in api.release
        )
        self.pool_release_names = frozenset(
            name for api in set(catalog.resources.values()) for name in api.pool_release
        )
        self.param_api = ResourceApi(
            api="<parameter>", kind="parameter", returns="", release=tuple(self.release_names),
            context_manager="none", fix="none", pool_release=tuple(self.pool_release_names),
        )
        self.helpers = _LazyHelpers(self)
        self.funcs = _functions(tree, self.resolver)
        self.by_key = {f.key: f for f in self.funcs if f.key is not None}
        self.local_functions = frozenset(key.rpartition(".")[2] for key in self.by_key) | frozenset(
            self.resolver._classdefs)
        self._results: dict[int, tuple[Analysis, Result, EventBuilder] | None] = {}
        self._skipped: dict[int, tuple[_Func, str]] = {}
        self._factories: dict[str, Factory | None] = {}
        self._ownership: dict[str, ClassOwnership | None] = {}
        self._helper_summaries: dict[str, HelperSummary | None] = {}
        self._words: dict[int, frozenset[str]] = {}
        self._helper_candidates: dict[int, bool] = {}
        self._keep_words = self.pool_release_names | STORING_METHODS
        self._take_words = self.release_names | self._keep_words
        self.resolver.factory_lookup = self.factory_for
        self.source = source
        self._inference: ModuleInference | None = None
        if options.inference == "astroid" and source is not None:
            self.resolver.infer_receiver = self._infer_receiver

    # ------------------------------------------------------------------ which functions to analyse

    def _text(self, f: _Func) -> str | None:
        if self.lines is None:
            return None
        node = f.node
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        return "\n".join(self.lines[start:node.end_lineno or node.lineno])

    def _text_words(self, f: _Func) -> frozenset[str] | None:
        words = self._words.get(id(f))
        if words is None:
            text = self._text(f)
            if text is None:
                return None
            words = self._words[id(f)] = frozenset(_WORD.findall(text))
        return words

    def _is_candidate(self, f: _Func) -> bool:
        """Can this function acquire? Its text (when known) must name a catalog call or a local
        function; then its calls are looked at; a call of a local function asks if it is a factory."""
        words = self._text_words(f)
        if words is not None and not (words & self.resolver.trigger_names) and not any(
            self.factory_for(key) is not None for key in self._local_keys(f, words)
        ):
            # nothing from the catalog or this module: only another module's factory can acquire
            return self._calls_project_factory(words, self._method_call_words(f))
        if self.resolver.may_acquire(f.node):
            return True
        names = self._called_local_names(f)
        if any(self.factory_for(key) is not None for key in self._local_keys(f, names)):
            return True
        if words is not None:
            return False
        words = self._call_words(f)
        return self._calls_project_factory(words, words)

    def _method_call_words(self, f: _Func) -> frozenset[str]:
        """The names this function's text calls as methods (``.session(``): a factory method of an
        imported class is called so (``Database(url).session()``, ``self.db.session()``)."""
        text = self._text(f)
        return frozenset(_METHOD.findall(text)) if text is not None else self._call_words(f)

    def _call_words(self, f: _Func) -> frozenset[str]:
        words: set[str] = set()
        for node in self.resolver.index.of(f.node):
            if isinstance(node, (ast.Name, ast.Attribute)):
                words.add(node.id if isinstance(node, ast.Name) else node.attr)
        return frozenset(words)

    def _calls_project_factory(self, words: frozenset[str], methods: frozenset[str]) -> bool:
        """Do these words name a factory or resource class of another module of the project?
        (``get_conn`` imported from it, or ``db.get_conn`` through an imported module), or do
        ``methods``, the names called as methods, name a factory method of one?"""
        if self.project is None:
            return False
        for name, target in self.project_imports.items():
            if name not in words:
                continue
            if self.project.origin(target) is not None:
                return True
            module = self.project.summary(target, asker=self._asker)
            if module is not None and any(module.factory_for(w) is not None for w in words & module.local_functions):
                return True
            if module is not None and any(  # a module's class: dbmodule.Database(url).session()
                key.partition(".")[0] in words and key.rpartition(".")[2] in words
                for key in module.factories if "." in key
            ):
                return True
        # a factory method of a class it imports: Database(url).session(), self.db.session()
        if methods and self._imports_factory_method(methods):
            return True
        # get_db(url).session(): astroid may tell what get_db returns
        return bool(methods) and self.options.inference == "astroid" and self._imports_module_method(methods)

    def _imports_module_method(self, words: frozenset[str]) -> bool:
        """Is one of ``words`` the name of a factory method of a class of a project module this module
        imports from? A module is summarised only if its text defines a function by one of them."""
        assert self.project is not None
        by_function = self._imported_module_functions
        for module in sorted({m for word in words for m in by_function.get(word, ())}):
            summary = self.project.summary(module, asker=self._asker)
            if summary is not None and any(key.rpartition(".")[2] in words for key in summary.factories if "." in key):
                return True
        return False

    @property
    def _asker(self) -> str:
        """This module's file, absolute, as the project index records who asked (``skip_matters``)."""
        found = getattr(self, "_asker_cache", None)
        if found is None:
            found = self._asker_cache = os.path.abspath(self.path) if self.path else ""
        return found

    @property
    def _imported_module_functions(self) -> dict[str, list[str]]:
        """Function name -> the project modules this module imports from whose text defines it (a
        factory method "Cls.m" of a module is a "def m" in its text)."""
        found = getattr(self, "_module_functions_cache", None)
        if found is None:
            assert self.project is not None
            found = {}
            modules = {m for target in self.project_imports.values() for m in (target, target.rpartition(".")[0])}
            for module in sorted(m for m in modules if m):
                for name in self.project.definitions(module)[0]:
                    found.setdefault(name, []).append(module)
            self._module_functions_cache = found
        return found

    def _is_factory_method_name(self, method: str) -> bool:
        """Is ``method`` the name of a factory method of a class this module defines or reaches?"""
        if any(self.factory_for(key) is not None for key in self._method_keys.get(method, ())):
            return True
        if self.project is None:
            return False
        words = frozenset((method,))
        return self._imports_factory_method(words) or self._imports_module_method(words)

    def _infer_receiver(self, call: ast.Call) -> str | None:
        """astroid's answer for the receiver of ``x.m()`` when ``m`` is a factory method's name."""
        assert isinstance(call.func, ast.Attribute)
        if not self._is_factory_method_name(call.func.attr) or self.source is None:
            return None
        if self._not_an_instance(call.func.value):
            return None  # astroid's answer would be a module or super(): no class's instance
        if self._inference is None:
            from connlint.infer import ModuleInference

            roots = self.project.roots if self.project is not None else set()
            if not roots and self.path:
                roots = {os.path.dirname(os.path.abspath(self.path))}
            self._inference = ModuleInference(self.source, self.resolver.module, self.path, roots)
        answer = self._inference.receiver_class(call)
        # the answer depends on the project files astroid has read (a superset of those it used)
        depends_on(["i", self.path or "", call.lineno, call.col_offset, answer], self._inference.project_files())
        return answer

    def _not_an_instance(self, receiver: ast.expr) -> bool:
        """Is ``receiver`` ``super(...)``, or a name only ever bound by ``import x``? (astroid would
        build the module, and the modules it star-imports, to find no class there.)"""
        if isinstance(receiver, ast.Call):
            return isinstance(receiver.func, ast.Name) and receiver.func.id == "super"
        return isinstance(receiver, ast.Name) and receiver.id in self._module_names

    @property
    def _module_names(self) -> frozenset[str]:
        """Names this module binds by ``import x`` (``import x as y``) and in no other way."""
        found = getattr(self, "_module_names_cache", None)
        if found is None:
            imported: set[str] = set()
            other: set[str] = set()
            constants: set[int] = set()  # the Name nodes a constant is assigned to (ast.walk: parents first)
            for node in ast.walk(self.resolver.tree):
                if isinstance(node, ast.Import):
                    imported.update(a.asname or a.name for a in node.names if a.asname or "." not in a.name)
                elif isinstance(node, ast.ImportFrom):
                    other.update(a.asname or a.name for a in node.names)
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                    # "except ImportError: mariadb = None": a constant is no class's instance either
                    constants.update(id(target) for target in node.targets if isinstance(target, ast.Name))
                elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in constants:
                    other.add(node.id)
                elif isinstance(node, ast.arg):
                    other.add(node.arg)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    other.add(node.name)
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    other.update(node.names)
                elif isinstance(node, ast.ExceptHandler) and node.name:
                    other.add(node.name)
                elif isinstance(node, _MATCH_CAPTURES):
                    other.update(filter(None, (getattr(node, "name", None), getattr(node, "rest", None))))
            found = self._module_names_cache = frozenset(imported - other)
        return found

    def _imports_factory_method(self, words: frozenset[str]) -> bool:
        """Is one of ``words`` the name of a factory method of a class this module imports from a
        project module (``Database.session`` in myapp/db.py: "session")? Re-exports are followed
        ("from .db import Database" in a package's __init__); the module that defines the class is
        summarised only if its text defines a function by one of the words."""
        assert self.project is not None
        by_function, elsewhere = self._imported_class_functions
        targets = {t for word in words for t in by_function.get(word, ())}
        for target in sorted(targets.union(elsewhere)):
            for _ in range(self.project.MAX_DEPTH):
                owner, _, cls = target.rpartition(".")
                functions, classes = self.project.definitions(owner)
                if cls in classes and words.isdisjoint(functions):
                    break  # defined there, with no method by any of these names
                summary = self.project.summary(owner, wants=cls)
                if summary is None:
                    break
                if any(key.partition(".")[0] == cls and key.partition(".")[2] in words
                       for key in summary.factories if "." in key):
                    return True
                if cls not in summary.imports or summary.imports[cls] == target:
                    break
                target = summary.imports[cls]
                if not target.rpartition(".")[2][:1].isupper():
                    break
        return False

    @property
    def _imported_class_functions(self) -> tuple[dict[str, list[str]], list[str]]:
        """The project imports spelled like a class (``myapp.db.Database``): (function name -> those
        whose module's text defines the class and a function by that name, those whose module's text
        does not define the class: a re-export, or something unknown)."""
        found = getattr(self, "_class_functions_cache", None)
        if found is None:
            assert self.project is not None
            by_function: dict[str, list[str]] = {}
            elsewhere = []
            for target in sorted(set(self.project_imports.values())):
                owner, _, cls = target.rpartition(".")
                if not owner or not cls[:1].isupper():
                    continue
                functions, classes = self.project.definitions(owner)
                if cls not in classes:
                    elsewhere.append(target)
                    continue
                for name in functions:
                    by_function.setdefault(name, []).append(target)
            found = self._class_functions_cache = (by_function, elsewhere)
        return found

    @property
    def project_imports(self) -> dict[str, str]:
        """Imported names that come from modules of the project (not from the catalog)."""
        cached = getattr(self, "_project_imports", None)
        if cached is None:
            cached = {}
            if self.project is not None:
                roots = self.catalog.root_modules
                for name, target in self.resolver.imports.names.items():
                    top = target.split(".", 1)[0]
                    if top not in roots and self.project.find_file(top) is not None:
                        cached[name] = target
            self._project_imports = cached
        return cached

    # words that make a function worth summarising as a helper for other modules: releases, and the
    # container/cleanup methods that keep an argument (not set/add/update: too common to pay for)
    HELPER_WORDS = frozenset({"append", "appendleft", "extend", "insert", "put", "put_nowait",
                               "enter_context", "enter_async_context", "callback", "addCleanup",
                               "addfinalizer", "closing"})

    def summary(self) -> ModuleSummary:
        """Factories and helpers of this module, for other modules. Only functions whose text can
        acquire (factories) or can release, store or return something (helpers) are analysed."""
        factories: dict[str, Factory] = {}
        helpers: dict[str, HelperSummary] = {}
        release_words = self.release_names | self.pool_release_names | self.HELPER_WORDS
        for key, f in list(self.by_key.items()):
            factory = self.factory_for(key)
            if factory is not None:
                factories[key] = factory
            words = self._text_words(f)
            if words is None or (words & release_words):
                helper = self.helper_for(key)
                if helper is not None:
                    helpers[key] = helper
        for cls_name in self.resolver._classdefs:
            factory = self.factory_for(cls_name)
            if factory is not None:
                factories[cls_name] = factory
        return ModuleSummary(factories, helpers, dict(self.resolver.imports.names), self.local_functions)

    def release(self) -> None:
        """Break the reference cycles (resolver <-> checker) so that the module's tree is freed at
        once instead of waiting for the cycle collector; only summaries already computed remain."""
        self.resolver.factory_lookup = lambda key: None
        self.resolver.project_lookup = lambda qualified: None
        self.resolver.infer_receiver = lambda call: None
        self._inference = None
        self.helpers = None  # type: ignore[assignment]
        self._results.clear()
        self.funcs = []
        self.by_key = {}

    def _local_keys(self, f: _Func, words: frozenset[str] | set[str]) -> list[str]:
        keys = []
        text: str | None = None
        for word in words & self.local_functions:
            if word in self.by_key or word in self.resolver._classdefs:
                keys.append(word)
            if f.cls is not None and f"{f.cls}.{word}" in self.by_key:
                keys.append(f"{f.cls}.{word}")
            methods = self._method_keys.get(word)
            if methods:
                # a method of another class of the module, called on an instance: Repo(path).m(),
                # repo.m(), self.repo.m() (only if the text calls it as a method)
                text = self._text(f) if text is None else text
                if text is None or f".{word}(" in text:
                    keys.extend(k for k in methods if f.cls is None or not k.startswith(f"{f.cls}."))
        return keys

    @property
    def _method_keys(self) -> dict[str, list[str]]:
        """Method name -> the keys of the methods of this module's classes by that name."""
        found = getattr(self, "_method_keys_cache", None)
        if found is None:
            found = {}
            for key in self.by_key:
                method = key.rpartition(".")[2]
                if "." in key and not method.startswith("__"):
                    found.setdefault(method, []).append(key)
            self._method_keys_cache = found
        return found

    def _called_local_names(self, f: _Func) -> set[str]:
        names = set()
        for node in self.resolver.index.of(f.node):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
                if name in self.local_functions:
                    names.add(name)
        return names

    def analysis(self, f: _Func) -> tuple[Analysis, Result, EventBuilder] | None:
        """The (memoised) analysis of one function; None inside a cycle or when skipped."""
        if id(f) in self._results:
            return self._results[id(f)]
        self._results[id(f)] = None  # in progress: a recursive question gets "no"
        with_params = f.key is not None and self._helper_candidate(f)
        try:
            out = self._analyze(f, with_params)
        except (cfg.BudgetExceeded, RecursionError) as exc:
            self._skipped[id(f)] = (f, "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc))
            return None
        self._results[id(f)] = out
        return out

    def ownership(self, cls_name: str) -> ClassOwnership | None:
        if cls_name in self._ownership:
            return self._ownership[cls_name]
        self._ownership[cls_name] = None
        cls = self.resolver._classdefs.get(cls_name)
        if cls is None:
            return None
        if self.lines is not None:
            # it must store on self something a call that can acquire returns: "self.x = ...connect(...)"
            triggers, local = self.resolver.trigger_names, self.local_functions
            if not any(
                "=" in line and "self." in line and any(
                    word in triggers or word in local for word in _WORD.findall(line.split("=", 1)[1]))
                for line in self.lines[cls.lineno - 1:cls.end_lineno or cls.lineno]
            ):
                return None
        info = class_ownership(cls, self.resolver, self.release_names, self.pool_release_names, self.lines)
        self._ownership[cls_name] = info
        return info

    def _class_factory(self, cls_name: str) -> Factory | None:
        info = self.ownership(cls_name)
        if info is None or not info.owned:
            return None
        qualified = f"{self.resolver.module}.{cls_name}" if self.resolver.module else cls_name
        api = info.resource_api(qualified)
        if api is None:
            return None
        first = next(iter(info.owned.values()))
        from connlint.project import relative_display

        via = first.origin.display.split(" (", 1)[0].rstrip("()")
        return Factory(cls_name, info_line(self.resolver, cls_name), api, via,
                       relative_display(self.path) if self.path else "")

    def factory_for(self, key: str) -> Factory | None:
        if key in self._factories:
            return self._factories[key]
        self._factories[key] = None
        if key in self.resolver._classdefs and key not in self.by_key:
            self._factories[key] = self._class_factory(key)
            return self._factories[key]
        f = self.by_key.get(key)
        # cheapest tests first: most local functions acquire nothing and are never walked
        if f is None or f.node.name.startswith("__") or not self._is_candidate(f) or f.mode != "function":
            return None
        out = self.analysis(f)
        if out is not None:
            self._factories[key] = self._factory_of(f, out)
        return self._factories[key]

    def helper_for(self, key: str) -> HelperSummary | None:
        if key in self._helper_summaries:
            return self._helper_summaries[key]
        self._helper_summaries[key] = None
        f = self.by_key.get(key)
        if f is None or not self._helper_candidate(f):
            return None
        out = self.analysis(f)
        if out is not None:
            self._helper_summaries[key] = self._helper_of(f, out)
        return self._helper_summaries[key]

    # ------------------------------------------------------------------ summaries

    def _helper_candidate(self, f: _Func) -> bool:
        """Can this function release, keep or return one of its parameters? (Then it is analysed
        with its parameters as resources, and summarised as a helper for its callers.)"""
        found = self._helper_candidates.get(id(f))
        if found is None:
            found = self._helper_candidates[id(f)] = self._may_take_parameter(f)
        return found

    def _may_take_parameter(self, f: _Func) -> bool:
        func = f.node
        params = set(_params(func))
        if not params:
            return False
        text = self._text(f)
        if text is not None and not self._text_may_take(text, params):
            return False  # none of the tests below can hold: the function is not walked
        for node in self.resolver.index.of(func):
            if isinstance(node, ast.Call):
                callee = node.func
                if (
                    isinstance(callee, ast.Attribute)
                    and isinstance(callee.value, ast.Name)
                    and callee.value.id in params
                    and callee.attr in self.release_names
                ):
                    return True
                if (
                    isinstance(callee, ast.Attribute)
                    and callee.attr in self._keep_words
                    and any(isinstance(a, ast.Name) and a.id in params for a in node.args)
                ):
                    return True
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id in params:
                return True  # returns its argument: the caller's resource lives on in the result
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Name)
                and node.value.id in params
                and any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets)
            ):
                return True
        return False

    def _text_may_take(self, text: str, params: set[str]) -> bool:
        """Text test, a superset of the tree tests of ``_may_take_parameter``: "p.close()" (a
        release method on a name that is a parameter), "x.append(.., p, ..)" (a storing or pool
        method with a parameter among its arguments), "return p" or "... = p"."""
        if any(name in params for name in _PASSED_ON.findall(text)):
            return True
        words = set(_WORD.findall(text))
        if not words.isdisjoint(self.release_names) and any(
            m.group(1) in params and m.group(2) in self.release_names for m in _NAME_METHOD.finditer(text)
        ):
            return True
        for m in _METHOD.finditer(text) if not words.isdisjoint(self._keep_words) else ():
            if m.group(1) not in self._keep_words:
                continue
            args = text[m.end():].split(")", 1)[0]
            if "(" in args or any(a.strip() in params for a in args.split(",")):
                return True  # a parameter is passed (or the arguments are not simple enough to tell)
        return False

    def _released_names(self, func: FuncDef) -> frozenset[str]:
        """Names this function calls a release method on (``db.close()``)."""
        names = set()
        for node in self.resolver.index.of(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.attr in self.release_names
            ):
                names.add(node.func.value.id)
        return frozenset(names)

    def _analyze(self, f: _Func, with_params: bool) -> tuple[Analysis, Result, EventBuilder]:
        scope = self.resolver.function_scope(f.node, f.cls)
        builder = EventBuilder(
            self.resolver, scope, mode=f.mode, helpers=self.helpers,
            release_names=self.release_names, declared_outside=_outside_names(f.node, self.resolver),
            release_helpers=frozenset(self.options.release_helpers),
            unknown_calls_keep=self.options.unknown_calls == "hand-off",
        )
        if f.mode == "generator":
            builder.lent_names = self._released_names(f.node)
        if f.graph is None:
            f.graph = cfg.build(f.node, self.options.budget, yield_raises=f.mode != "fixture",
                                quiet_calls=self.release_names | self.pool_release_names)
        initial = []
        if with_params:
            from connlint.events import ACQ, Event

            for name in _params(f.node):
                site = builder.param_site(name, self.param_api, f.node)
                initial.append(Event(ACQ, name, site.id))
        analysis = Analysis(f.graph, builder, initial)
        return analysis, analysis.run(), builder

    def check(self) -> list[Finding]:
        findings: list[Finding] = []
        for f in self.funcs:
            if not self._is_candidate(f):
                continue  # a function that acquires nothing has nothing to report
            out = self.analysis(f)
            if out is not None:
                findings.extend(self._findings(f, *out))
        if self.options.enabled("CNL008"):
            findings.extend(self._class_findings())
        if self.options.enabled("CNL009") and self.lines is not None and any(
            q.split(".", 1)[0] == "flask" for q in self.resolver.imports.names.values()
        ):
            findings.extend(self._flask_findings())
        if (self.options.enabled("CNL010") or self.options.enabled("CNL011")) and self.catalog.registries:
            findings.extend(self._scoped_session_findings())
        if self.options.enabled("CNL900"):
            for f, reason in self._skipped.values():
                node = f.node
                findings.append(Finding(
                    node.lineno, node.col_offset + 1, "CNL900",
                    f"function '{node.name}' was not analysed: {reason}",
                    node.lineno, node.col_offset + 1 + len("def ") + len(node.name),
                ))
        if self.options.enabled("CNL901"):
            findings.extend(self._module_level())
        return sorted(set(findings))

    def _flask_findings(self) -> Iterator[Finding]:
        from connlint.frameworks import g_stores, torn_down

        text = "\n".join(self.lines or ())
        root = None
        if self.path is not None:
            from connlint.project import module_name

            root = module_name(self.path)[1]
        for store in g_stores(self.tree, self.resolver):
            if torn_down(store.attr, text, root):
                continue
            call = store.call
            yield Finding(
                call.lineno, call.col_offset + 1, "CNL009",
                f"{store.origin.api.kind} from {store.origin.display} is stored on flask.g.{store.attr} but no "
                f"teardown_appcontext/teardown_request handler closes it",
                call.end_lineno or call.lineno, (call.end_col_offset or call.col_offset) + 1,
                Leak(store.origin.api, None, False, 0),
            )

    def _scoped_session_findings(self) -> Iterator[Finding]:
        from connlint.frameworks import scoped_session_findings
        from connlint.project import module_name

        root = module_name(self.path)[1] if self.path is not None else None
        for found in scoped_session_findings(self.tree, self.resolver, root, self.path,
                                             thread_check=self.options.enabled("CNL011"),
                                             request_check=self.options.enabled("CNL010")):
            node = found.node
            yield Finding(
                node.lineno, node.col_offset + 1, found.code, found.message,
                node.end_lineno or node.lineno, (node.end_col_offset or node.col_offset) + 1,
            )

    def _class_findings(self) -> Iterator[Finding]:
        for cls_name in self.resolver._classdefs:
            info = self.ownership(cls_name)
            if info is None or info.has_bases:
                continue  # a base class of another module may release it
            for owned in info.unreleased:
                call = owned.call
                name = f"{owned.origin.api.kind} from {owned.origin.display}"
                yield Finding(
                    call.lineno, call.col_offset + 1, "CNL008",
                    f"class '{cls_name}' keeps {name} in self.{owned.attr} (set in {owned.method}()) but no "
                    f"method closes it; it stays open until garbage collection",
                    call.end_lineno or call.lineno, (call.end_col_offset or call.col_offset) + 1,
                    Leak(owned.origin.api, None, False, 0),
                )

    def _factory_of(self, f: _Func, out: tuple[Analysis, Result, EventBuilder]) -> Factory | None:
        _, result, builder = out
        assert f.key is not None
        origin = builder.direct_returns[0] if builder.direct_returns else None
        if origin is None:
            for site in result.sites:
                if not site.is_param and result.obs.escaped.get(site.id) == {"return"}:
                    origin = site.origin
                    break
        if origin is None:
            return None
        via = origin.display.split(" (", 1)[0].rstrip("()")
        if " (" in origin.display:
            via = origin.display.rsplit(", ", 1)[1].rstrip(")")
        from connlint.project import relative_display

        return Factory(f.key, f.node.lineno, origin.api, via, relative_display(self.path) if self.path else "")

    def _helper_of(self, f: _Func, out: tuple[Analysis, Result, EventBuilder]) -> HelperSummary | None:
        _, result, _ = out
        effects: dict[str, str] = {}
        for site in result.sites:
            if not site.is_param:
                continue
            assert site.var is not None
            if site.id in result.obs.escaped:
                effects[site.var] = "sink"
            elif site.id in result.obs.released and site.id not in result.normal_leaks:
                effects[site.var] = "release"
        return HelperSummary(tuple(_params(f.node)), effects) if effects else None

    # ------------------------------------------------------------------ findings

    def _findings(self, f: _Func, analysis: Analysis, result: Result, builder: EventBuilder) -> Iterator[Finding]:
        leaking: dict[int, tuple[str, str]] = {}
        for site in result.sites:
            if site.is_param or site.managed:
                continue
            verdict = self._verdict(f, analysis, result, site)
            if verdict is not None:
                leaking[site.id] = verdict
        for sid, (code, message) in leaking.items():
            site = result.sites[sid]
            if any(p in leaking and not result.sites[p].is_param for p in site.parents):
                continue  # the connection it came from is reported; closing that releases this too
            if not self.options.enabled(code):
                continue
            call = site.call
            yield Finding(
                call.lineno, call.col_offset + 1, code, message,
                getattr(call, "end_lineno", call.lineno) or call.lineno,
                (getattr(call, "end_col_offset", call.col_offset) or call.col_offset) + 1,
                Leak(site.api, site.var, site.via_with, f.node.lineno),
            )

    def _verdict(self, f: _Func, analysis: Analysis, result: Result, site: Site) -> tuple[str, str] | None:
        obs = result.obs
        what = _describe(site)
        sid = site.id
        if sid in obs.fixture_returned:
            return "CNL007", (
                f"pytest fixture '{f.node.name}' returns {what}; pytest never closes it "
                f"(yield it and close after the yield)"
            )
        if sid in obs.overwritten:
            line, how = obs.overwritten[sid]
            if how == "deleted":
                return "CNL004", f"{what} is deleted with 'del' at line {line} before it is closed"
            if line == site.line:
                return "CNL004", f"{what} is acquired again at line {line} (next loop iteration) before it is closed"
            return "CNL004", f"{what} is overwritten at line {line} before it is closed"
        normal = sid in result.normal_leaks
        if not normal and sid not in result.exc_leaks:
            return None
        if sid in obs.unawaited_close:
            return "CNL006", (
                f"{what} is released without 'await' at line {obs.unawaited_close[sid]}: "
                f"the call returns a coroutine that never runs"
            )
        if normal:
            exit_text = _exit_text(analysis.witness(result, sid, exceptional=False)[0])
            if site.via_with:
                name = f" '{site.var}'" if site.var else ""
                return "CNL003", f"{_with_text(site)}; the {site.api.kind}{name} is still open {exit_text}"
            if site.api.is_pool_checkout:
                return "CNL005", f"{what} is not returned to the pool {exit_text}"
            if sid in obs.released:
                return "CNL002", f"{what} is not closed {exit_text}"
            return "CNL001", f"{what} is never closed"
        node, at_yield = analysis.witness(result, sid, exceptional=True)
        verb = "returned to the pool" if site.api.is_pool_checkout else "closed"
        if at_yield and f.mode == "contextmanager":
            line = node.line if node is not None else f.node.lineno
            return "CNL102", (
                f"{what} is not {verb} when the 'with' body raises into the yield at line {line}; "
                f"{'return' if site.api.is_pool_checkout else 'close'} it in a 'finally'"
            )
        where = f"if line {node.line} raises" if node is not None else "when an exception is raised"
        return "CNL101", f"{what} is not {verb} {where}"

    # ------------------------------------------------------------------ module level (opt-in)

    def _module_level(self) -> Iterator[Finding]:
        scope = Scope(dict(self.resolver.module_types))
        builder = EventBuilder(self.resolver, scope, mode="module", helpers=self.helpers,
                               release_names=self.release_names,
                               release_helpers=frozenset(self.options.release_helpers))
        try:
            graph = cfg.build(self.tree, self.options.budget)
        except (cfg.BudgetExceeded, RecursionError):
            return
        result = Analysis(graph, builder).run()
        for site in result.sites:
            if site.api.kind not in ("connection", "cursor", "session", "pooled connection"):
                continue
            if site.id in result.normal_leaks or site.id in result.exc_leaks:
                call = site.call
                yield Finding(
                    call.lineno, call.col_offset + 1, "CNL901",
                    f"{_describe(site)} is opened at module level and stays open until the interpreter exits",
                    call.end_lineno or call.lineno, (call.end_col_offset or call.col_offset) + 1,
                    Leak(site.api, site.var, site.via_with, 0),
                )


def info_line(resolver: Resolver, cls_name: str) -> int:
    cls = resolver._classdefs.get(cls_name)
    return cls.lineno if cls is not None else 0


def _describe(site: Site) -> str:
    name = f" '{site.var}'" if site.var else ""
    return f"{site.api.kind}{name} from {site.origin.display}"


def _with_text(site: Site) -> str:
    api = site.api
    call = site.origin.display
    if api.context_manager == "transaction-only":
        action = "only commits or rolls back"
        if api.is_pool_checkout:
            action += " and does not return it to the pool"
        return f"'with {call}' {action}"
    return f"'with {call}' does not close it"


def _exit_text(node: cfg.Node | None) -> str:
    if node is None:
        return "on some path"
    if node.kind == cfg.FALL_OFF:
        return f"when the function ends at line {node.line}"
    if node.jump == "break":
        return f"when the loop breaks at line {node.line}"
    if node.jump == "continue":
        return f"when the loop continues at line {node.line}"
    return f"when the function returns at line {node.line}"


def check_tree(tree: ast.Module, options: Options | None = None, catalog: Catalog | None = None,
               source: str | None = None, path: str | None = None) -> list[Finding]:
    """All findings for one parsed module (``source``, its text, only speeds things up; ``path``
    lets factories and helpers of the other modules of its project be followed)."""
    return check_module(tree, options or Options(), catalog or default_catalog(), source, path)[0]


def check_module(tree: ast.Module, options: Options, catalog: Catalog, source: str | None = None,
                 path: str | None = None) -> tuple[list[Finding], frozenset[str]]:
    """(findings, names of this module's factories and helpers that other modules may call)."""
    if path is None:
        checker = ModuleChecker(tree, catalog, options, source)
        module, root = "", ""
    else:
        from connlint.project import HELPER_EXPORT, module_name, project_for

        module, root, is_package = module_name(path)
        project = project_for(catalog, options)
        project.add_root(root)
        checker = ModuleChecker(tree, catalog, options, source, module=module, is_package=is_package,
                                project=project, path=path)
    findings = checker.check()
    exports: frozenset[str] = frozenset()
    if path is not None and module:
        # a module another file imported was summarised when it was loaded: that summary is what its
        # importers saw, and computing it again would analyse every helper of the module twice
        summary = project.remembered(module) or checker.summary()
        project.remember(module, summary, path=path)
        # what makes other files worth a new round: factories and releasing helpers (a helper that
        # only keeps its argument can only remove findings, and names like add/append are everywhere)
        releasing = [k for k, h in summary.helpers.items()
                     if "release" in h.effects.values() and k not in summary.factories]
        exports = frozenset(  # a releasing helper marked as one (_FreshNames)
            f"{root}|{module}.{key}" for key in summary.factories if not key.rpartition(".")[2].startswith("__")
        ) | frozenset(f"{root}|{module}.{key}{HELPER_EXPORT}" for key in releasing
                      if not key.rpartition(".")[2].startswith("__"))
    checker.release()
    return findings, exports


def check_source(source: str, options: Options | None = None, catalog: Catalog | None = None,
                 filename: str = "<unknown>") -> list[Finding]:
    catalog = catalog or default_catalog()
    if not mentions_catalog(source, catalog):
        return []
    tree = ast.parse(source, filename)
    return check_tree(tree, options, catalog, source)


__all__ = ["Finding", "Options", "check_source", "check_tree", "mentions_catalog", "replace"]
