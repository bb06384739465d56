"""Name resolution: imports, the types of local values, and "does this call acquire a resource".

Everything here is about *what* an expression is; *when* it is open is the dataflow's business. A call
is a resource only when its callee resolves through imports, known-typed values or a same-module
factory to a catalog record: method names alone never make a resource.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from connlint import astwalk
from connlint.catalog import Catalog, ResourceApi

FuncDef = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class Origin:
    """How a resource was obtained: the catalog record and how to name the call in a message."""

    api: ResourceApi
    display: str  # e.g. "sqlite3.connect()", "conn.cursor()", "get_conn() (line 12, sqlite3.connect)"


@dataclass(frozen=True)
class Factory:
    """A same-module function that returns a fresh resource to its caller."""

    name: str
    line: int
    api: ResourceApi
    via: str  # the underlying acquire API, e.g. "sqlite3.connect"
    path: str = ""  # the file it is defined in, for messages about other modules


def dotted(expr: ast.expr) -> str | None:
    """``a.b.c`` -> "a.b.c" for a chain of names; None for anything else."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None


def source_text(expr: ast.expr, limit: int = 40) -> str:
    try:
        text = ast.unparse(expr)
    except Exception:  # pragma: no cover - unparse is total on parsed trees
        return "<expr>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ScopeIndex:
    """The nodes of each scope, computed when first asked for (most functions of a module are never
    looked at), plus the module's own imports and class definitions from a shallow walk that does
    not enter function bodies."""

    def __init__(self, tree: ast.Module) -> None:
        self._nodes: dict[int, list[ast.AST]] = {}
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.classes: list[ast.ClassDef] = []
        stack: list[ast.AST] = list(reversed(tree.body))
        while stack:
            node = stack.pop()  # in source order: a later import of a name wins, as when it runs
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.imports.append(node)
            elif isinstance(node, ast.ClassDef):
                self.classes.append(node)
                stack.extend(reversed(node.body))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            else:
                children: list[ast.AST] = []
                for field_name in ("body", "handlers", "orelse", "finalbody"):
                    for child in getattr(node, field_name, ()) or ():
                        if isinstance(child, ast.ExceptHandler):
                            children.extend(child.body)
                        elif isinstance(child, ast.stmt):
                            children.append(child)
                for case in getattr(node, "cases", ()) or ():
                    children.extend(case.body)
                stack.extend(reversed(children))

    def of(self, scope: ast.AST) -> list[ast.AST]:
        found = self._nodes.get(id(scope))
        if found is None:
            found = self._nodes[id(scope)] = list(_walk_scope(scope))
        return found


class ImportMap:
    """Local name -> fully qualified name, from every import statement in a module."""

    def __init__(self, imports: list[ast.Import | ast.ImportFrom], shadowed: set[str],
                 known_roots: frozenset[str] = frozenset(), package: str | None = None) -> None:
        self.names: dict[str, str] = {}
        for node in imports:
            bound: dict[str, str] = {}
            add_import(node, bound, package)
            for name, target in bound.items():
                old = self.names.get(name)
                # "try: import pysqlite3 as sqlite / except ImportError: import sqlite3 as sqlite":
                # of two imports of one name, keep the one the catalog knows
                if old is not None and old.split(".", 1)[0] in known_roots and (
                    target.split(".", 1)[0] not in known_roots
                ):
                    continue
                self.names[name] = target
        for name in shadowed:
            self.names.pop(name, None)

    def qualify(self, expr: ast.expr) -> str | None:
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self.names.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target


def add_import(node: ast.Import | ast.ImportFrom, names: dict[str, str], package: str | None = None) -> None:
    """Record the names an import statement binds. ``package`` (the importing module's package)
    resolves relative imports: ``from . import db`` in ``myapp.service`` binds ``myapp.db``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                names[alias.asname] = alias.name
            else:
                root = alias.name.split(".", 1)[0]
                names[root] = root
        return
    if node.level:
        if package is None:
            return
        parts = package.split(".") if package else []
        if node.level - 1 > len(parts):
            return
        base_parts = parts[: len(parts) - (node.level - 1)]
        module = ".".join([*base_parts, *([node.module] if node.module else [])])
        if not module:
            return
    else:
        module = node.module or ""
        if not module:
            return
    for alias in node.names:
        if alias.name != "*":
            names[alias.asname or alias.name] = f"{module}.{alias.name}"


def _annotation_types(annotation: ast.expr | None) -> Iterator[ast.expr]:
    """The type expressions an annotation names (through Optional[...] and X | None)."""
    if annotation is None:
        return
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        yield from _annotation_types(annotation.left)
        yield from _annotation_types(annotation.right)
    elif isinstance(annotation, ast.Subscript) and dotted(annotation.value) in (
        "Optional", "typing.Optional", "t.Optional", "Union", "typing.Union",
    ):
        inner = annotation.slice
        elts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        for elt in elts:
            yield from _annotation_types(elt)
    elif isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            parsed = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return
        yield from _annotation_types(parsed)
    else:
        yield annotation


# The type of an instance of a class of the project: "instance:Repo" for a class of this module (its
# key), "instance:myapp.db.Database" for one imported from another module (its qualified name). Calls
# of its methods are looked up as factories ("Repo.session"); the catalog knows nothing of it.
INSTANCE = "instance:"


@dataclass
class Scope:
    """What the resolver knows about one function's names."""

    types: dict[str, str] = field(default_factory=dict)
    cls: Optional[str] = None  # enclosing class name, for self.x and self.method()
    self_name: Optional[str] = None  # "self" / "cls"
    # names the function binds itself (parameters, assignments): they shadow imports and globals
    local_names: frozenset[str] = frozenset()
    # imports inside the function body: local name -> qualified name
    imports: dict[str, str] = field(default_factory=dict)
    # names bound only to deferred constructions (pymysql defer_connect=True) -> their catalog record
    deferred: dict[str, ResourceApi] = field(default_factory=dict)
    # those of them the function never opens (no conn.connect()): their methods acquire nothing
    unopened: frozenset[str] = frozenset()

    def shadows(self, expr: ast.expr) -> bool:
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        return (
            isinstance(expr, ast.Name)
            and expr.id in self.local_names
            and (expr.id not in self.types or self.types[expr.id].startswith(INSTANCE))
            and expr.id not in self.imports
        )


class Resolver:
    """Answers type and acquisition questions for one module."""

    def __init__(self, tree: ast.Module, catalog: Catalog, module: str | None = None,
                 is_package: bool = False) -> None:
        self.catalog = catalog
        self.tree = tree
        self.module = module  # dotted name of this module in its project, when known
        self.package = (module if is_package else module.rpartition(".")[0]) if module is not None else None
        module_defs = {
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        self.index = ScopeIndex(tree)
        self.imports = ImportMap(self.index.imports, module_defs, catalog.root_modules, self.package)
        # resources made by other modules of the project (factories, resource-owning classes)
        self.project_lookup: Callable[[str], Optional[Origin]] = lambda qualified: None
        # same-module factories by key ("func" or "Class.method"); the module checker answers lazily
        self.factory_lookup: Callable[[str], Optional[Factory]] = lambda key: None
        # the class of the receiver of x.m() when the summaries cannot tell (astroid, infer.py)
        self.infer_receiver: Callable[[ast.Call], Optional[str]] = lambda call: None
        self.module_types: dict[str, str] = {}
        self._class_types: dict[str, dict[str, str]] = {}
        self._classdefs = {cls.name: cls for cls in self.index.classes}
        self._returns = {n.name: n.returns for n in tree.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns is not None}
        self._infer_module()

    def qualify(self, expr: ast.expr, scope: Scope | None = None) -> str | None:
        """The fully qualified name an expression refers to through imports (function-local first)."""
        if scope is not None and scope.imports:
            name = dotted(expr)
            if name is not None:
                head, _, rest = name.partition(".")
                target = scope.imports.get(head)
                if target is not None:
                    return f"{target}.{rest}" if rest else target
        if scope is not None and scope.shadows(expr):
            return None
        return self.imports.qualify(expr)

    def class_types(self, cls_name: str) -> dict[str, str]:
        """Types of ``self.x`` in a class: class-level assignments and ``self.x = ...`` in methods."""
        found = self._class_types.get(cls_name)
        if found is not None:
            return found
        attrs: dict[str, str] = {}
        self._class_types[cls_name] = attrs
        cls = self._classdefs.get(cls_name)
        if cls is None:
            return attrs
        module_scope = Scope(self.module_types)
        for stmt in cls.body:
            for target, value in _assignments(stmt):
                if isinstance(target, ast.Name):
                    t = self.expr_type(value, module_scope)
                    if t:
                        attrs[target.id] = t
        for method in cls.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or not method.args.args:
                continue
            scope = self.function_scope(method, cls.name, with_locals=False)
            self_name = method.args.args[0].arg
            for node in self.index.of(method):
                for target, value in _assignments(node):
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == self_name
                    ):
                        t = self.expr_type(value, scope)
                        if t:
                            attrs[target.attr] = t
        return attrs

    # ------------------------------------------------------------------ type environment

    def _infer_module(self) -> None:
        module_scope = Scope(self.module_types)
        for _ in range(2):
            for stmt in self.tree.body:
                for target, value in _assignments(stmt):
                    if isinstance(target, ast.Name):
                        t = self.expr_type(value, module_scope)
                        if t:
                            self.module_types[target.id] = t

    def function_scope(self, func: FuncDef | ast.Lambda, cls: str | None, with_locals: bool = True) -> Scope:
        scope = Scope(cls=cls)
        args = func.args
        all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if cls is not None and all_args and not _is_staticmethod(func):
            scope.self_name = all_args[0].arg
        bound = {a.arg for a in all_args}
        if args.vararg:
            bound.add(args.vararg.arg)
        if args.kwarg:
            bound.add(args.kwarg.arg)
        # the statements that give a local name a type, gathered in the same walk
        typed: list[ast.AST] = []
        if not isinstance(func, ast.Lambda):
            declared: list[str] = []
            for node in self.index.of(func):
                kind = type(node)
                if kind is ast.Name:
                    if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                        bound.add(node.id)  # type: ignore[attr-defined]
                elif kind in _TYPING_NODES:
                    typed.append(node)
                elif kind is ast.Import or kind is ast.ImportFrom:
                    add_import(node, scope.imports, self.package)  # type: ignore[arg-type]
                elif kind is ast.ExceptHandler:
                    if node.name:  # type: ignore[attr-defined]
                        bound.add(node.name)  # type: ignore[attr-defined]
                elif kind is ast.Global or kind is ast.Nonlocal:
                    declared.extend(node.names)  # type: ignore[attr-defined]
            bound.difference_update(declared)
        scope.local_names = frozenset(bound)
        for arg in all_args:
            for ann in _annotation_types(arg.annotation):
                q = self.qualify(ann, scope)
                if q:
                    t = self.catalog.canonical_type(q)
                    if t in self.catalog.types:
                        scope.types[arg.arg] = t
                        continue
                instance = self.project_class(ann, scope)
                if instance is not None:
                    scope.types[arg.arg] = INSTANCE + instance
        if with_locals and typed:
            not_deferred: set[str] = set()
            for _ in range(2):
                for node in typed:
                    for target, value in _assignments(node):
                        if isinstance(target, ast.Name):
                            found = self.expr_type(value, scope)
                            if found:
                                scope.types[target.id] = found
                            deferred = self.deferred(value, scope)
                            if deferred is not None:
                                scope.deferred[target.id] = deferred
                            else:
                                not_deferred.add(target.id)
                    if isinstance(node, (ast.With, ast.AsyncWith)):
                        for item in node.items:
                            if isinstance(item.optional_vars, ast.Name):
                                not_deferred.add(item.optional_vars.id)
                                found = self.expr_type(item.context_expr, scope)
                                if found:
                                    scope.types[item.optional_vars.id] = found
            for name in not_deferred:
                scope.deferred.pop(name, None)
            if scope.deferred:
                opened = {
                    node.func.value.id for node in self.index.of(func)
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in scope.deferred
                    and node.func.attr in scope.deferred[node.func.value.id].opened_by
                }
                scope.unopened = frozenset(scope.deferred) - opened
        return scope

    def expr_type(self, expr: ast.expr, scope: Scope) -> str | None:
        """The catalog type of an expression's value, if it can be told."""
        if isinstance(expr, ast.Await):
            return self.expr_type(expr.value, scope)
        if isinstance(expr, ast.Name):
            if expr.id in scope.types:
                return scope.types[expr.id]
            if expr.id in scope.local_names:
                return None
            if expr.id in self.module_types:
                return self.module_types[expr.id]
        if (
            isinstance(expr, ast.Attribute)
            and scope.cls is not None
            and isinstance(expr.value, ast.Name)
            and expr.value.id == scope.self_name
        ):
            return self.class_types(scope.cls).get(expr.attr)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            q = self.qualify(expr, scope)
            if q is not None:
                return self.catalog.values.get(q)
            return None
        if isinstance(expr, ast.Subscript):
            base = self.expr_type(expr.value, scope)
            return self.catalog.item_types.get(base) if base else None
        if isinstance(expr, ast.Call):
            origin = self.acquisition(expr, scope)
            if origin is not None:
                return origin.api.returns
            deferred = self.deferred(expr, scope)
            if deferred is not None:
                return deferred.returns  # built, not connected: still typed (conn.cursor() acquires)
            q = self.qualify(expr.func, scope)
            if q in ("contextlib.closing", "contextlib.aclosing") and expr.args:
                return self.expr_type(expr.args[0], scope)
            if q is not None and q in self.catalog.constructors:
                return self.catalog.constructors[q]
            instance = self.project_class(expr.func, scope)
            if instance is None and isinstance(expr.func, ast.Name) and expr.func.id not in scope.local_names:
                returns = self._returns.get(expr.func.id)  # def get_db() -> Database
                instance = self.project_class(returns, scope) if returns is not None else None
            if instance is not None:
                return INSTANCE + instance
        return None

    def project_class(self, expr: ast.expr, scope: Scope) -> str | None:
        """The class of the project that ``expr`` names: the key of a class of this module, or the
        qualified name of an imported name spelled like a class (``from myapp.db import Database``).
        Only a method call on its instances asks whether it is one: a wrong guess finds no factory."""
        if isinstance(expr, ast.Name) and expr.id in self._classdefs and expr.id not in scope.local_names:
            return expr.id
        q = self.qualify(expr, scope)
        if q is None or "." not in q or q.partition(".")[0] in self.catalog.root_modules:
            return None
        return q if q.rpartition(".")[2][:1].isupper() else None

    def _instance_key(self, qualified: str) -> str:
        """A class's qualified name as an instance type: its key when it is a class of this module."""
        owner, _, name = qualified.rpartition(".")
        if owner == (self.module or "__main__") and name in self._classdefs:
            return name
        return qualified

    def method_factory(self, instance: str, method: str, depth: int = 0) -> tuple[Factory | None, Origin | None]:
        """The factory a method of a project class is: (same-module factory, None) or (None, the
        origin another module's summary gives). Methods a class of this module inherits from its
        bases (of this module or imported) are followed a few levels."""
        if "." in instance:
            return None, self.project_lookup(f"{instance}.{method}")
        factory = self.factory_lookup(f"{instance}.{method}")
        if factory is not None or depth >= 4:
            return factory, None
        cls = self._classdefs.get(instance)
        if cls is None:
            return None, None
        for base in cls.bases:
            found = self.project_class(base, Scope())
            if found is not None and found != instance:
                factory, origin = self.method_factory(found, method, depth + 1)
                if factory is not None or origin is not None:
                    return factory, origin
        return None, None

    # ------------------------------------------------------------------ acquisitions

    def acquisition(self, call: ast.Call, scope: Scope) -> Origin | None:
        """The resource a call acquires, or None."""
        func = call.func
        q = self.qualify(func, scope)
        if q is not None:
            api = self.catalog.resource_for_call(q)
            if api is not None:
                if api.deferred_by and api.defers(_constant_keywords(call)):
                    return None
                return Origin(api, f"{q}()")
            found = self.project_lookup(q)
            if found is not None:
                local = dotted(func) or q.rpartition(".")[2]
                return Origin(found.api, f"{local}(){found.display}")
        if isinstance(func, ast.Attribute):
            if scope.unopened and isinstance(func.value, ast.Name) and func.value.id in scope.unopened:
                return None  # a cursor of a connection that was built but never connected
            recv_type = self.expr_type(func.value, scope)
            if recv_type is not None and recv_type.startswith(INSTANCE):
                factory, origin = self.method_factory(recv_type[len(INSTANCE):], func.attr)
                if factory is not None:
                    return Origin(factory.api, f"{source_text(func)}() (line {factory.line}, {factory.via})")
                if origin is not None:
                    return Origin(origin.api, f"{source_text(func)}(){origin.display}")
            elif recv_type is not None:
                api = self.catalog.resource_for_method(recv_type, func.attr)
                if api is not None:
                    return Origin(api, f"{source_text(func.value)}.{func.attr}()")
            if scope.cls is not None and isinstance(func.value, ast.Name) and func.value.id == scope.self_name:
                factory = self.factory_lookup(f"{scope.cls}.{func.attr}")
                if factory is not None:
                    return Origin(factory.api, f"{source_text(func)}() (line {factory.line}, {factory.via})")
            elif recv_type is None:
                inferred = self.infer_receiver(call)
                if inferred is not None:
                    factory, origin = self.method_factory(self._instance_key(inferred), func.attr)
                    if factory is not None:
                        return Origin(factory.api, f"{source_text(func)}() (line {factory.line}, {factory.via})")
                    if origin is not None:
                        return Origin(origin.api, f"{source_text(func)}(){origin.display}")
        elif isinstance(func, ast.Name):
            factory = self.factory_lookup(func.id) if func.id not in scope.local_names else None
            if factory is not None:
                return Origin(factory.api, f"{func.id}() (line {factory.line}, {factory.via})")
            t = self.expr_type(func, scope)
            if t is not None:
                api = self.catalog.resource_for_method(t, "__call__")
                if api is not None:
                    return Origin(api, f"{func.id}()")
        elif isinstance(func, ast.Call):
            t = self.expr_type(func, scope)
            if t is not None:
                api = self.catalog.resource_for_method(t, "__call__")
                if api is not None:
                    return Origin(api, f"{source_text(func)}()")
        return None

    def deferred(self, expr: ast.expr, scope: Scope) -> ResourceApi | None:
        """The catalog record of a call that builds its object without acquiring it yet
        (``pymysql.connect(..., defer_connect=True)``); None for anything else."""
        if not isinstance(expr, ast.Call) or not any(kw.arg in self.catalog.deferring_keywords for kw in expr.keywords):
            return None
        q = self.qualify(expr.func, scope)
        api = self.catalog.resource_for_call(q) if q is not None else None
        if api is not None and api.deferred_by and api.defers(_constant_keywords(expr)):
            return api
        return None

    def may_acquire(self, func: ast.AST, local_functions: frozenset[str] = frozenset()) -> bool:
        """Cheap test: does any call in this scope look like a catalog call (or a call of a local
        function, which may be a factory)?"""
        names = self.trigger_names
        for node in self.index.of(func):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
                if name is not None and (name in names or name in local_functions):
                    return True
                if isinstance(f, ast.Call):
                    return True
        return False

    @property
    def trigger_names(self) -> frozenset[str]:
        """Names a call must use to acquire from the catalog: function and method names, their
        local aliases, and the names of module-level values that can be called or make factories."""
        cached = getattr(self, "_trigger_names", None)
        if cached is None:
            names = {name.rpartition(".")[2] for name in self.catalog.resources}
            names |= {method for _, method in self.catalog.methods}
            names |= {local for local, q in self.imports.names.items() if q in self.catalog.resources}
            names |= {n for n, t in self.module_types.items() if (t, "__call__") in self.catalog.methods}
            # a function that makes a session factory can call what it made
            names |= {local for local, q in self.imports.names.items() if q in self.catalog.constructors}
            names |= {name.rpartition(".")[2] for name in self.catalog.constructors}
            cached = frozenset(names)
            self._trigger_names = cached
        return cached


def _constant_keywords(call: ast.Call) -> dict[str, object]:
    return {kw.arg: kw.value.value for kw in call.keywords
            if kw.arg is not None and isinstance(kw.value, ast.Constant)}


def _is_staticmethod(func: FuncDef | ast.Lambda) -> bool:
    if isinstance(func, ast.Lambda):
        return False
    return any(dotted(d) == "staticmethod" for d in func.decorator_list)


# statements that can give a local name a type: assignments and "with ... as name"
_TYPING_NODES = frozenset({ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.With, ast.AsyncWith})


def _assignments(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield target, node.value
    elif isinstance(node, ast.AnnAssign):
        if node.value is not None:
            yield node.target, node.value
    elif isinstance(node, ast.NamedExpr):
        yield node.target, node.value


walk_scope = astwalk.walk_scope
_walk_scope = astwalk.walk_scope
