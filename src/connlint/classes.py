"""Classes that own resources.

A class owns what one of its methods acquires and stores on ``self`` (``self.conn = connect()`` in
``__init__``, ``connect()``, ``__enter__``, a lazy property). It must release it in some method
(``close``, ``__exit__``, ``disconnect``...), otherwise the resource lives until garbage collection
(CNL008). A class that does release it is a resource type of its own: ``repo = Repo(path)`` must be
closed like a connection, with ``with Repo(path)`` when its ``__exit__`` releases.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connlint.catalog import ResourceApi
from connlint.resolve import Origin, Scope, dotted

if TYPE_CHECKING:
    from connlint.resolve import Resolver


@dataclass
class Owned:
    attr: str
    origin: Origin
    call: ast.Call
    method: str


@dataclass
class ClassOwnership:
    name: str
    owned: dict[str, Owned] = field(default_factory=dict)
    released_by: dict[str, set[str]] = field(default_factory=dict)  # attr -> releasing methods
    async_methods: set[str] = field(default_factory=set)
    has_bases: bool = False

    @property
    def unreleased(self) -> list[Owned]:
        """Owned resources no method releases; a cursor of an owned connection goes with it."""
        out = []
        for attr, o in self.owned.items():
            if self.released_by.get(attr):
                continue
            func = o.call.func
            parent = func.value if isinstance(func, ast.Attribute) else None
            if isinstance(parent, ast.Attribute) and parent.attr in self.owned:
                continue
            out.append(o)
        return out

    def resource_api(self, qualified: str) -> ResourceApi | None:
        """The class as a resource type, when a method users call releases what it owns."""
        methods = set().union(*self.released_by.values()) if self.released_by else set()
        callable_release = tuple(sorted(m for m in methods if not m.startswith("__")))
        cm = "__exit__" in methods or "__aexit__" in methods
        if not callable_release and not cm:
            return None
        kinds = sorted({o.origin.api.kind for o in self.owned.values()})
        is_async = "__aexit__" in methods or any(m in self.async_methods for m in callable_release)
        return ResourceApi(
            api=qualified,
            kind=f"{self.name} object (owns a {kinds[0]})",
            returns=qualified,
            release=callable_release,
            context_manager="closes" if cm else "none",
            fix=("async-with" if is_async else "with") if cm else ("try-finally" if is_async else "closing"),
            release_awaited=any(m in self.async_methods for m in callable_release),
            is_async=is_async,
        )


def class_ownership(cls: ast.ClassDef, resolver: Resolver, release_names: frozenset[str],
                    pool_release_names: frozenset[str], lines: list[str] | None = None) -> ClassOwnership:
    info = ClassOwnership(cls.name, has_bases=any(dotted(b) not in ("object", None) for b in cls.bases))
    calls: dict[str, set[str]] = {}  # method -> methods of self it calls (__exit__ -> close)
    interesting = resolver.trigger_names | release_names | pool_release_names
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = [*method.args.posonlyargs, *method.args.args]
        if not args:
            continue
        if isinstance(method, ast.AsyncFunctionDef):
            info.async_methods.add(method.name)
        self_name = args[0].arg
        if lines is not None:
            # a method that names nothing that acquires, releases or calls another method is skipped
            import re

            text = "\n".join(lines[method.lineno - 1:method.end_lineno or method.lineno])
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
            if not (words & interesting):
                continue
        scope_cache: list[Scope] = []
        aliases: dict[str, str] = {}  # local name -> attribute it holds (conn = self.conn)

        def scope(cache: list[Scope] = scope_cache, method: ast.AST = method) -> Scope:
            if not cache:
                cache.append(resolver.function_scope(method, cls.name))  # type: ignore[arg-type]
            return cache[0]

        def attr_of(expr: ast.expr, self_name: str = self_name, aliases: dict[str, str] = aliases) -> str | None:
            if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == self_name:
                return expr.attr
            if isinstance(expr, ast.Name):
                return aliases.get(expr.id)
            return None

        nodes = sorted(resolver.index.of(method), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        for node in nodes:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value.value if isinstance(node.value, ast.Await) else node.value
                for target in targets:
                    attr = attr_of(target) if isinstance(target, ast.Attribute) else None
                    if attr is not None and isinstance(value, ast.Call):
                        origin = resolver.acquisition(value, scope())
                        if origin is not None and origin.api.tracked_in_functions:
                            info.owned.setdefault(attr, Owned(attr, origin, value, method.name))
                    if isinstance(target, ast.Name):
                        held = attr_of(node.value)
                        if held is not None:
                            aliases[target.id] = held
            elif isinstance(node, ast.Call):
                func = node.func
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == self_name
                ):
                    calls.setdefault(method.name, set()).add(func.attr)
                if isinstance(func, ast.Attribute):
                    attr = attr_of(func.value)
                    if attr is not None and func.attr in release_names:
                        info.released_by.setdefault(attr, set()).add(method.name)
                    if func.attr in pool_release_names:
                        for arg in node.args:
                            attr = attr_of(arg)
                            if attr is not None:
                                info.released_by.setdefault(attr, set()).add(method.name)
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    # self.addCleanup(self.conn.close), atexit.register(self.conn.close), closing(self.conn)
                    if isinstance(arg, ast.Attribute) and arg.attr in release_names:
                        attr = attr_of(arg.value)
                        if attr is not None:
                            info.released_by.setdefault(attr, set()).add(method.name)
                    elif dotted(func) in ("closing", "contextlib.closing") or (
                        isinstance(func, ast.Attribute) and func.attr in ("enter_context", "callback", "push")
                    ):
                        attr = attr_of(arg)
                        if attr is not None:
                            info.released_by.setdefault(attr, set()).add(method.name)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    attr = attr_of(item.context_expr)
                    if attr is not None and attr in info.owned and info.owned[attr].origin.api.cm_releases:
                        info.released_by.setdefault(attr, set()).add(method.name)
    # a method that calls a releasing method releases too (__exit__ calling self.close())
    changed = True
    while changed:
        changed = False
        for methods in info.released_by.values():
            for caller, callees in calls.items():
                if caller not in methods and callees & methods:
                    methods.add(caller)
                    changed = True
    # "__del__" counts as releasing for CNL008 (the author thought about it) but not as a method users call
    return info
