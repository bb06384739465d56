"""Turn the statements of one function into ownership events for the dataflow.

For every CFG node this module says, in evaluation order, what happens to resource-holding names:
a resource is acquired and bound, a name is rebound or deleted, a release method is called, ownership
escapes (returned, stored, handed to a constructor or a cleanup registry). It also creates one
``Site`` per acquiring call the function binds to a name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Protocol

from connlint import astwalk, cfg
from connlint.catalog import ResourceApi
from connlint.resolve import Origin, Resolver, Scope, dotted

# Event opcodes
ACQ = "acquire"  # (site, var)            bind var to a fresh open resource
BIND = "bind"  # (var, sources)           var now holds what the source names hold (none: something else)
DEL = "del"  # (var,)                     del var
METHOD = "method"  # (var, name, awaited) var.name(...) — a release if the name is a release method
POOL = "pool"  # (var, name, awaited)     pool.name(var) — a release if it is the pool's release method
RELEASE = "release"  # (var,)             a same-module helper releases var
ESCAPE = "escape"  # (var, how)           ownership leaves the function ("return" or "store")
CM_EXIT = "cm-exit"  # (var,)             leaving "with var:" — a release if its context manager releases
FIXTURE_RETURN = "fixture-return"  # (var,)  a pytest fixture returns the resource


class Event(NamedTuple):
    op: str
    var: Optional[str]
    arg: object = None
    flag: bool = False
    line: int = 0


@dataclass(eq=False)
class Site:
    """One acquiring call that the function binds to a name."""

    id: int
    call: ast.Call
    origin: Origin
    var: Optional[str]
    receiver: Optional[str] = None  # the name the method was called on (conn in conn.cursor())
    via_with: bool = False  # bound by a with whose context manager does not release it
    managed: bool = False  # bound by a with that releases it on exit: never reported
    is_param: bool = False  # a pseudo-resource standing for a parameter (summaries)
    parents: set[int] = field(default_factory=set)

    @property
    def api(self) -> ResourceApi:
        return self.origin.api

    @property
    def line(self) -> int:
        return self.call.lineno

    @property
    def col(self) -> int:
        return self.call.col_offset


# methods of containers and cleanup registries that keep their argument
STORING_METHODS = frozenset({
    "append", "appendleft", "add", "extend", "insert", "put", "put_nowait", "setdefault", "update",
    "enter_context", "enter_async_context", "push", "push_async_exit", "callback", "push_async_callback",
    "addCleanup", "addAsyncCleanup", "addfinalizer", "register", "finalize", "set", "setattr",
})
CLOSING = frozenset({"contextlib.closing", "contextlib.aclosing"})


@dataclass
class HelperSummary:
    """What a same-module function does with each parameter: 'release', 'sink' or 'borrow'."""

    params: tuple[str, ...]
    effects: dict[str, str]

    def effect_for(self, call: ast.Call, skip_self: bool) -> Iterator[tuple[ast.expr, str]]:
        params = self.params[1:] if skip_self else self.params
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return
            if i < len(params):
                yield arg, self.effects.get(params[i], "borrow")
        for kw in call.keywords:
            if kw.arg is not None:
                yield kw.value, self.effects.get(kw.arg, "borrow")


class HelperLookup(Protocol):
    """Where the builder finds what a called function does with its arguments."""

    def get(self, key: str) -> HelperSummary | None: ...


class EventBuilder:
    """Builds events for the nodes of one function's graph."""

    def __init__(
        self,
        resolver: Resolver,
        scope: Scope,
        *,
        mode: str = "function",  # function | generator | contextmanager | fixture | module
        helpers: HelperLookup | None = None,
        release_names: frozenset[str] = frozenset(),
        declared_outside: frozenset[str] = frozenset(),
        release_helpers: frozenset[str] = frozenset(),
        unknown_calls_keep: bool = False,
    ) -> None:
        self.release_helpers = release_helpers
        self.unknown_calls_keep = unknown_calls_keep
        # a plain generator that yields a name and releases it later lends it (FastAPI's
        # "yield db; db.close()" dependencies): the yield is not a hand-off
        self.lent_names: frozenset[str] = frozenset()
        self.resolver = resolver
        self.scope = scope
        self.mode = mode
        self.helpers = helpers or {}
        self.release_names = release_names
        self.outside = declared_outside  # global / nonlocal names
        self.sites: list[Site] = []
        self._sites_by_call: dict[int, Site] = {}
        self.direct_returns: list[Origin] = []  # "return <acquire>(...)": the function is a factory
        closing_locals = {local for local, q in resolver.imports.names.items() if q in CLOSING}
        closing_locals |= {local for local, q in scope.imports.items() if q in CLOSING}
        self._closing_names = frozenset(closing_locals)

    # ------------------------------------------------------------------ sites

    def _site(self, call: ast.Call, origin: Origin, var: str | None, via_with: bool = False) -> Site:
        site = self._sites_by_call.get(id(call))
        if site is None:
            receiver = None
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                receiver = call.func.value.id
            site = Site(len(self.sites), call, origin, var, receiver, via_with)
            self.sites.append(site)
            self._sites_by_call[id(call)] = site
        return site

    def param_site(self, name: str, api: ResourceApi, func: ast.AST) -> Site:
        call = ast.Call(func=ast.Name(id=name), args=[], keywords=[])
        call.lineno = getattr(func, "lineno", 1)
        call.col_offset = getattr(func, "col_offset", 0)
        site = Site(len(self.sites), call, Origin(api, name), name, is_param=True)
        self.sites.append(site)
        return site

    def _acquired(self, expr: ast.expr) -> tuple[ast.Call, Origin, bool] | None:
        """(call, origin, awaited) if ``expr`` is an acquiring call, possibly awaited."""
        awaited = False
        if isinstance(expr, ast.Await):
            expr, awaited = expr.value, True
        if not isinstance(expr, ast.Call):
            return None
        origin = self.resolver.acquisition(expr, self.scope)
        if origin is None:
            return None
        if self.mode != "module" and not origin.api.tracked_in_functions:
            return None
        return expr, origin, awaited

    # ------------------------------------------------------------------ per node

    def events(self, node: cfg.Node) -> list[Event]:
        stmt = node.ast_node
        out: list[Event] = []
        if stmt is None:
            return out
        kind = node.kind
        if kind == cfg.WITH_EXIT:
            assert isinstance(stmt, ast.withitem)
            target = _plain_name(stmt.context_expr)
            if target is not None:
                out.append(Event(CM_EXIT, target))
            managed = self._managed_site(stmt)
            if managed is not None:
                out.append(Event(RELEASE, None, managed.id))
            return out
        if kind == cfg.WITH_ENTER:
            assert isinstance(stmt, ast.withitem)
            self._with_enter(stmt, node, out)
            return out
        if kind == cfg.TEST:
            self._expr(stmt.test, out)  # type: ignore[attr-defined]
            return out
        if kind == cfg.FOR:
            assert isinstance(stmt, (ast.For, ast.AsyncFor))
            self._expr(stmt.iter, out)
            self._bind_target(stmt.target, None, out)
            return out
        if kind == cfg.HANDLER:
            assert isinstance(stmt, ast.ExceptHandler)
            if stmt.name:
                out.append(Event(BIND, stmt.name, ()))
            return out
        if kind == cfg.MATCH:
            self._expr(stmt.subject, out)  # type: ignore[attr-defined]
            return out
        if kind == cfg.CASE:
            for sub in ast.walk(stmt.pattern):  # type: ignore[attr-defined]
                name = getattr(sub, "name", None)
                if isinstance(name, str):
                    out.append(Event(BIND, name, ()))
            return out
        if kind == cfg.STMT:
            self._stmt(stmt, out)
        return out

    def _opens_deferred(self, expr: ast.expr, out: list[Event]) -> bool:
        """``conn.connect()`` on a name bound to a deferred construction acquires into that name."""
        if not self.scope.deferred or not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Attribute):
            return False
        receiver = expr.func.value
        if not isinstance(receiver, ast.Name) or receiver.id not in self.scope.deferred:
            return False
        api = self.scope.deferred[receiver.id]
        if expr.func.attr not in api.opened_by:
            return False
        for arg in (*expr.args, *(kw.value for kw in expr.keywords)):
            self._expr(arg, out)
        origin = Origin(api, f"{receiver.id}.{expr.func.attr}() ({api.api}(..., {api.deferred_by[0]}=True))")
        out.append(Event(ACQ, receiver.id, self._site(expr, origin, receiver.id).id))
        return True

    def _stmt(self, stmt: ast.AST, out: list[Event]) -> None:
        if isinstance(stmt, ast.Assign):
            self._assign(stmt.targets, stmt.value, out)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self._assign([stmt.target], stmt.value, out)
        elif isinstance(stmt, ast.AugAssign):
            self._expr(stmt.value, out)
        elif isinstance(stmt, ast.Expr):
            if not self._opens_deferred(stmt.value, out):
                self._expr(stmt.value, out, top=True)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self._return(stmt.value, out)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    out.append(Event(DEL, target.id, line=stmt.lineno))
                else:
                    self._expr(target, out)
        elif isinstance(stmt, (ast.Raise, ast.Assert)):
            for child in astwalk.children(stmt):
                if isinstance(child, ast.expr):
                    self._expr(child, out)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for part in cfg.header_parts(stmt):
                self._expr(part, out)  # type: ignore[arg-type]
            if self.mode != "module":
                # a nested function keeps the local names it refers to; a module-level function
                # only reads the global when it runs
                self._captures(stmt, out)
            out.append(Event(BIND, stmt.name, ()))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = alias.asname or alias.name.split(".", 1)[0]
                out.append(Event(BIND, name, ()))

    # ------------------------------------------------------------------ statements with bindings

    def _assign(self, targets: list[ast.expr], value: ast.expr, out: list[Event]) -> None:
        acquired = self._acquired(value)
        if acquired is not None and not _any_store(targets, self.outside):
            call, origin, _ = acquired
            self._expr_children(value, out, skip=call)
            first: str | None = None
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in self.outside:
                    if first is None:
                        first = target.id
                        out.append(Event(ACQ, first, self._site(call, origin, first).id))
                    else:
                        out.append(Event(BIND, target.id, (first,)))
                else:
                    self._store_target(target, out)
            return
        if acquired is not None:
            # stored straight into an attribute, a container or a global: long-lived, not ours
            self._expr_children(value, out, skip=acquired[0])
            for target in targets:
                self._store_target(target, out)
            return
        source = _plain_name(value)
        self._expr(value, out, assigned=True)
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in self.outside:
                    if source is not None:
                        out.append(Event(ESCAPE, source, "store"))
                    continue
                if source is None and _uses_name(value, target.id):
                    # conn = wrap(conn): whatever wraps it now holds it
                    out.append(Event(ESCAPE, target.id, "store"))
                out.append(Event(BIND, target.id, (source,) if source else ()))
            elif isinstance(target, (ast.Tuple, ast.List)):
                if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                    for t, v in zip(target.elts, value.elts):
                        self._bind_target(t, _plain_name(v), out)
                else:
                    self._bind_target(target, None, out)
            else:
                self._store_target(target, out)
                if source is not None:
                    out.append(Event(ESCAPE, source, "store"))

    def _store_target(self, target: ast.expr, out: list[Event]) -> None:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            self._expr(target.value, out)
            if isinstance(target, ast.Subscript):
                self._expr(target.slice, out)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store_target(elt, out)
        elif isinstance(target, ast.Name) and target.id not in self.outside:
            out.append(Event(BIND, target.id, ()))

    def _bind_target(self, target: ast.expr, source: str | None, out: list[Event]) -> None:
        if isinstance(target, ast.Name):
            if target.id in self.outside:
                if source:
                    out.append(Event(ESCAPE, source, "store"))
                return
            out.append(Event(BIND, target.id, (source,) if source else ()))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._bind_target(elt, None, out)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None, out)
        else:
            self._store_target(target, out)
            if source:
                out.append(Event(ESCAPE, source, "store"))

    def _return(self, value: ast.expr, out: list[Event]) -> None:
        acquired = self._acquired(value)
        if acquired is not None:
            call, origin, _ = acquired
            self._expr_children(value, out, skip=call)
            if self.mode == "fixture":
                site = self._site(call, origin, None)
                out.append(Event(ACQ, None, site.id))
                out.append(Event(FIXTURE_RETURN, None, site.id))
            else:
                self.direct_returns.append(origin)
            return
        name = _plain_name(value)
        if name is not None:
            if self.mode == "fixture":
                out.append(Event(FIXTURE_RETURN, name))
            else:
                out.append(Event(ESCAPE, name, "return"))
            return
        self._expr(value, out, assigned=True)

    def _with_enter(self, item: ast.withitem, node: cfg.Node, out: list[Event]) -> None:
        expr = item.context_expr
        var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
        acquired = self._acquired(expr)
        if acquired is not None:
            call, origin, _ = acquired
            self._expr_children(expr, out, skip=call)
            if origin.api.cm_releases:
                # tracked only so that what is derived from it (cursors) goes with it at the exit
                site = self._site(call, origin, var)
                site.managed = True
                out.append(Event(ACQ, var, site.id))
                return
            site = self._site(call, origin, var, via_with=True)
            out.append(Event(ACQ, var, site.id))
            return
        if isinstance(expr, ast.Call) and self._is_closing(expr.func) and expr.args:
            inner = expr.args[0]
            inner_acquired = self._acquired(inner)
            if inner_acquired is not None:
                call, origin, _ = inner_acquired
                self._expr_children(inner, out, skip=call)
                site = self._site(call, origin, var)
                site.managed = True
                out.append(Event(ACQ, var, site.id))
                return
            else:
                name = _plain_name(inner)
                if name is not None:
                    out.append(Event(ESCAPE, name, "store"))
                else:
                    self._expr(inner, out)
            if var is not None:
                out.append(Event(BIND, var, ()))
            return
        self._expr(expr, out)
        source = _plain_name(expr)
        if item.optional_vars is not None:
            # "with conn as c": c is conn when the context manager returns self
            self._bind_target(item.optional_vars, source, out)

    def _managed_site(self, item: ast.withitem) -> Site | None:
        expr = item.context_expr
        if isinstance(expr, ast.Call) and self._is_closing(expr.func) and expr.args:
            expr = expr.args[0]
        if isinstance(expr, ast.Await):
            expr = expr.value
        site = self._sites_by_call.get(id(expr))
        return site if site is not None and site.managed else None

    def _captures(self, scope_node: ast.AST, out: list[Event]) -> None:
        """A nested function, lambda or class that refers to a name keeps what it holds."""
        seen: set[str] = set()
        for sub in astwalk.walk(scope_node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in seen:
                seen.add(sub.id)
                out.append(Event(ESCAPE, sub.id, "store"))

    # ------------------------------------------------------------------ expressions

    def _is_closing(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self._closing_names
        return self.resolver.qualify(func, self.scope) in CLOSING

    def _expr_children(self, expr: ast.expr, out: list[Event], skip: ast.Call) -> None:
        """Events of the arguments of an acquiring call (its receiver and arguments are borrowed)."""
        if isinstance(expr, ast.Await):
            expr = expr.value
        if expr is skip:
            if isinstance(skip.func, ast.Attribute):
                self._expr(skip.func.value, out)
            for arg in skip.args:
                self._expr(arg, out)
            for kw in skip.keywords:
                self._expr(kw.value, out)

    def _expr(self, expr: ast.expr | None, out: list[Event], top: bool = False, assigned: bool = False) -> None:
        """Events of evaluating ``expr`` in order (borrowing unless something keeps a name)."""
        if expr is None:
            return
        if isinstance(expr, ast.Await):
            inner = expr.value
            if isinstance(inner, ast.Call):
                self._call(inner, out, awaited=True)
            else:
                self._expr(inner, out)
            return
        if isinstance(expr, ast.Call):
            self._call(expr, out, awaited=False)
            return
        if isinstance(expr, ast.NamedExpr):
            self._assign([expr.target], expr.value, out)
            return
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            for elt in expr.elts:
                self._keep(elt, out)
            return
        if isinstance(expr, ast.Dict):
            for k in expr.keys:
                self._expr(k, out)
            for v in expr.values:
                self._keep(v, out)
            return
        if isinstance(expr, ast.Lambda):
            self._captures(expr, out)
            return
        if isinstance(expr, (ast.Yield, ast.YieldFrom)):
            if expr.value is not None:
                name = _plain_name(expr.value)
                if name is not None and self.mode not in ("contextmanager", "fixture") and (
                    name not in self.lent_names
                ):
                    out.append(Event(ESCAPE, name, "return"))
                else:
                    self._expr(expr.value, out)
            return
        if isinstance(expr, ast.Attribute):
            self._expr(expr.value, out)
            return
        for child in astwalk.children(expr):
            if isinstance(child, ast.expr):
                self._expr(child, out)
            elif isinstance(child, ast.comprehension):
                self._expr(child.iter, out)
                for cond in child.ifs:
                    self._expr(cond, out)

    def _keep(self, expr: ast.expr, out: list[Event]) -> None:
        """``expr`` is put where it outlives the statement (a container, a constructor)."""
        if isinstance(expr, ast.Starred):
            expr = expr.value
        name = _plain_name(expr)
        if name is not None:
            out.append(Event(ESCAPE, name, "store"))
        else:
            self._expr(expr, out)

    def _call(self, call: ast.Call, out: list[Event], awaited: bool) -> None:
        func = call.func
        args: list[ast.expr] = [*call.args, *(kw.value for kw in call.keywords)]
        # a bound release method handed to anything registers the release: atexit.register(conn.close)
        for arg in args:
            if (
                isinstance(arg, ast.Attribute)
                and isinstance(arg.value, ast.Name)
                and arg.attr in self.release_names
            ):
                out.append(Event(ESCAPE, arg.value.id, "store"))
        self._expr(func.value if isinstance(func, ast.Attribute) else func, out)
        receiver = _plain_name(func.value) if isinstance(func, ast.Attribute) else None
        callee = dotted(func)
        helper: HelperSummary | None = None
        skip_self = False
        # a helper only acts on the names it is given (a lookup may load another module); a class is
        # never one (its call keeps its arguments, below)
        passes_names = any(_plain_name(arg) is not None for arg in args) and not (
            callee is not None and callee.rpartition(".")[2][:1].isupper())
        if isinstance(func, ast.Attribute):
            if self.scope.cls is not None and receiver == self.scope.self_name:
                helper = self.helpers.get(f"{self.scope.cls}.{func.attr}")
                skip_self = True
            elif passes_names and callee is not None and callee.partition(".")[0] not in self.scope.local_names:
                # a function of an imported module or class: db.close_conn(conn), Pool.put(conn)
                helper = self.helpers.get(callee)
        elif callee is not None and passes_names:
            helper = self.helpers.get(callee)
        qualified = self.resolver.qualify(func, self.scope) if self.release_helpers else None
        if qualified is not None and qualified in self.release_helpers:
            # a release helper declared in the configuration: it releases what it is given
            for arg in args:
                self._expr(arg, out)
                name = _plain_name(arg)
                if name is not None:
                    out.append(Event(RELEASE, name))
        elif helper is not None:
            for arg in args:
                self._expr(arg, out)
            self._helper(helper, call, out, skip_self=skip_self)
        elif self._keeps_arguments(call, callee):
            for arg in args:
                self._keep(arg, out)
                if isinstance(arg, (ast.Tuple, ast.List)):
                    for elt in arg.elts:
                        self._keep(elt, out)
        else:
            for arg in args:
                self._expr(arg, out)
        if isinstance(func, ast.Attribute):
            for arg in call.args:
                name = _plain_name(arg)
                if name is not None:
                    out.append(Event(POOL, name, func.attr, awaited, call.lineno))
            if receiver is not None:
                out.append(Event(METHOD, receiver, func.attr, awaited, call.lineno))

    def _keeps_arguments(self, call: ast.Call, callee: str | None) -> bool:
        """Does the callee keep what it is given? Containers and cleanup registries (by method
        name), ``closing()``, ``setattr()``, constructors (a callee named like a class, or
        ``__init__``/``__new__``: ``Wrapper(conn)``, ``Base.__init__(self, conn)``,
        ``super().__init__(conn)``). Anything else borrows."""
        func = call.func
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if isinstance(func, ast.Attribute) and last in STORING_METHODS:
            return True
        if self._is_closing(func) or callee == "setattr":
            return True
        if last in ("__init__", "__new__"):
            return True
        if self.resolver.acquisition(call, self.scope) is not None:
            return False
        return last[:1].isupper() or self.unknown_calls_keep

    def _helper(self, helper: HelperSummary, call: ast.Call, out: list[Event], skip_self: bool) -> None:
        for arg, effect in helper.effect_for(call, skip_self):
            name = _plain_name(arg)
            if name is None:
                continue
            if effect == "release":
                out.append(Event(RELEASE, name))
            elif effect == "sink":
                out.append(Event(ESCAPE, name, "store"))

    # ------------------------------------------------------------------ refinement on tests

    @staticmethod
    def none_branch(test: ast.expr) -> tuple[str, bool] | None:
        """(name, label): on the branch with this label, ``name`` holds no resource."""
        if isinstance(test, ast.Name):
            return test.id, False
        if isinstance(test, ast.NamedExpr) and isinstance(test.target, ast.Name):
            return test.target.id, False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = EventBuilder.none_branch(test.operand)
            return (inner[0], not inner[1]) if inner else None
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.left, (ast.Name, ast.NamedExpr))
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
        ):
            left = test.left.target if isinstance(test.left, ast.NamedExpr) else test.left
            if not isinstance(left, ast.Name):
                return None
            op = test.ops[0]
            if isinstance(op, (ast.Is, ast.Eq)):
                return left.id, True
            if isinstance(op, (ast.IsNot, ast.NotEq)):
                return left.id, False
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            # "if conn and not conn.closed": the False branch includes conn being None; we can only
            # refine the True branch (nothing to do) — but "conn is None or ..." True branch likewise.
            return None
        return None


def _plain_name(expr: ast.expr) -> str | None:
    return expr.id if isinstance(expr, ast.Name) else None


def _any_store(targets: list[ast.expr], outside: frozenset[str]) -> bool:
    """Is the value stored where it outlives the function (``con = self.con = connect()`` too)?"""
    return any(
        isinstance(t, (ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Starred))
        or (isinstance(t, ast.Name) and t.id in outside)
        for t in targets
    )


def _uses_name(expr: ast.expr, name: str) -> bool:
    return any(
        isinstance(sub, ast.Call)
        and any(isinstance(a, ast.Name) and a.id == name for a in [*sub.args, *(k.value for k in sub.keywords)])
        for sub in astwalk.walk(expr)
    )
