"""Name resolution: imports, the types of local values, and "does this call acquire a resource".

Everything here is about *what* an expression is; *when* it is open is the dataflow's business. A call
is a resource only when its callee resolves through imports, known-typed values or a same-module
factory to a catalog record: method names alone never make a resource.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional, Union

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
    """One pass over a module: the nodes of each scope (a nested scope's own node belongs to the
    enclosing scope, its body to itself), plus every import and class definition."""

    def __init__(self, tree: ast.Module) -> None:
        self.nodes: dict[int, list[ast.AST]] = {id(tree): []}
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.classes: list[ast.ClassDef] = []
        stack: list[tuple[ast.AST, list[ast.AST]]] = [(tree, self.nodes[id(tree)])]
        while stack:
            node, bucket = stack.pop()
            for child in ast.iter_child_nodes(node):
                bucket.append(child)
                if isinstance(child, _SCOPES):
                    own: list[ast.AST] = []
                    self.nodes[id(child)] = own
                    stack.append((child, own))
                    if isinstance(child, ast.ClassDef):
                        self.classes.append(child)
                else:
                    if isinstance(child, (ast.Import, ast.ImportFrom)):
                        self.imports.append(child)
                    stack.append((child, bucket))

    def of(self, scope: ast.AST) -> list[ast.AST]:
        found = self.nodes.get(id(scope))
        return found if found is not None else list(_walk_scope(scope))


class ImportMap:
    """Local name -> fully qualified name, from every import statement in a module."""

    def __init__(self, imports: list[ast.Import | ast.ImportFrom], shadowed: set[str]) -> None:
        self.names: dict[str, str] = {}
        for node in imports:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.names[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".", 1)[0]
                        self.names[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
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


@dataclass
class Scope:
    """What the resolver knows about one function's names."""

    types: dict[str, str] = field(default_factory=dict)
    cls: Optional[str] = None  # enclosing class name, for self.x and self.method()
    self_name: Optional[str] = None  # "self" / "cls"
    # names the function binds itself (parameters, assignments): they shadow imports and globals
    local_names: frozenset[str] = frozenset()

    def shadows(self, expr: ast.expr) -> bool:
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        return isinstance(expr, ast.Name) and expr.id in self.local_names and expr.id not in self.types


class Resolver:
    """Answers type and acquisition questions for one module."""

    def __init__(self, tree: ast.Module, catalog: Catalog) -> None:
        self.catalog = catalog
        self.tree = tree
        module_defs = {
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        self.index = ScopeIndex(tree)
        self.imports = ImportMap(self.index.imports, module_defs)
        self.factories: dict[str, Factory] = {}  # "func" or "Class.method"
        self.module_types: dict[str, str] = {}
        self.class_types: dict[str, dict[str, str]] = {}
        self._infer_module()

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
        for cls in self.index.classes:
            attrs: dict[str, str] = {}
            self.class_types[cls.name] = attrs
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
        if not isinstance(func, ast.Lambda):
            for node in self.index.of(func):
                if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                    bound.add(node.id)
                elif isinstance(node, ast.ExceptHandler) and node.name:
                    bound.add(node.name)
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    bound.difference_update(node.names)
        scope.local_names = frozenset(bound)
        for arg in all_args:
            for ann in _annotation_types(arg.annotation):
                q = self.imports.qualify(ann)
                if q:
                    t = self.catalog.canonical_type(q)
                    if t in self.catalog.types:
                        scope.types[arg.arg] = t
        if with_locals and not isinstance(func, ast.Lambda):
            for _ in range(2):
                for node in self.index.of(func):
                    for target, value in _assignments(node):
                        if isinstance(target, ast.Name):
                            t = self.expr_type(value, scope)
                            if t:
                                scope.types[target.id] = t
                    if isinstance(node, (ast.With, ast.AsyncWith)):
                        for item in node.items:
                            if isinstance(item.optional_vars, ast.Name):
                                t = self.expr_type(item.context_expr, scope)
                                if t:
                                    scope.types[item.optional_vars.id] = t
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
        if isinstance(expr, ast.Attribute):
            if scope.cls is not None and isinstance(expr.value, ast.Name) and expr.value.id == scope.self_name:
                return self.class_types.get(scope.cls, {}).get(expr.attr)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            q = None if scope.shadows(expr) else self.imports.qualify(expr)
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
            q = None if scope.shadows(expr.func) else self.imports.qualify(expr.func)
            if q in ("contextlib.closing", "contextlib.aclosing") and expr.args:
                return self.expr_type(expr.args[0], scope)
            if q is not None and q in self.catalog.constructors:
                return self.catalog.constructors[q]
        return None

    # ------------------------------------------------------------------ acquisitions

    def acquisition(self, call: ast.Call, scope: Scope) -> Origin | None:
        """The resource a call acquires, or None."""
        func = call.func
        q = None if scope.shadows(func) else self.imports.qualify(func)
        if q is not None:
            api = self.catalog.resource_for_call(q)
            if api is not None:
                return Origin(api, f"{q}()")
        if isinstance(func, ast.Attribute):
            recv_type = self.expr_type(func.value, scope)
            if recv_type is not None:
                api = self.catalog.resource_for_method(recv_type, func.attr)
                if api is not None:
                    return Origin(api, f"{source_text(func.value)}.{func.attr}()")
            if scope.cls is not None and isinstance(func.value, ast.Name) and func.value.id == scope.self_name:
                factory = self.factories.get(f"{scope.cls}.{func.attr}")
                if factory is not None:
                    return Origin(factory.api, f"{source_text(func)}() (line {factory.line}, {factory.via})")
        elif isinstance(func, ast.Name):
            factory = self.factories.get(func.id)
            if factory is not None and func.id not in scope.local_names:
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

    def may_acquire(self, func: ast.AST) -> bool:
        """Cheap test: does any call in this scope look like it could be a catalog or factory call."""
        for node in self.index.of(func):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
                if name is not None and (name in self._method_names or name in self._factory_names()):
                    return True
                if isinstance(f, ast.Call):
                    return True
        return False

    @property
    def _method_names(self) -> frozenset[str]:
        cached = getattr(self, "_method_names_cache", None)
        if cached is None:
            names = {name.rpartition(".")[2] for name in self.catalog.resources}
            names |= {method for _, method in self.catalog.methods}
            names |= {local for local, q in self.imports.names.items() if q in self.catalog.resources}
            names |= {n for n, t in self.module_types.items() if (t, "__call__") in self.catalog.methods}
            # a function that makes a session factory can call what it made
            names |= {local for local, q in self.imports.names.items() if q in self.catalog.constructors}
            cached = frozenset(names)
            self._method_names_cache = cached
        return cached

    def _factory_names(self) -> set[str]:
        return {key.rpartition(".")[2] for key in self.factories}


def _is_staticmethod(func: FuncDef | ast.Lambda) -> bool:
    if isinstance(func, ast.Lambda):
        return False
    return any(dotted(d) == "staticmethod" for d in func.decorator_list)


def _assignments(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield target, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        yield node.target, node.value
    elif isinstance(node, ast.NamedExpr):
        yield node.target, node.value


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _walk_scope(func: ast.AST) -> Iterator[ast.AST]:
    """Every node of a function body, without entering nested scopes."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


walk_scope = _walk_scope
