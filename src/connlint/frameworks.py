"""Framework lifecycles: resources that a framework hook, not the storing function, must release.

Flask: ``g.db = sqlite3.connect(...)`` is fine when a ``teardown_appcontext``/``teardown_request``
handler of the project closes ``g.db`` (``db = g.pop("db", None); db.close()``, or
``g.db.close()``), and a leak when none does (CNL009). The handler may live in another module of the
project (the Flask tutorial registers it from an ``init_app`` function), so the project's files are
searched for one.

SQLAlchemy ``Session = scoped_session(sessionmaker(...))`` at module level: a registry that gives each
thread its own session, kept until ``Session.remove()``. Request handlers that use it need a
``remove()`` somewhere in the project (a teardown handler, CNL010); a function run as a thread's
target (``threading.Thread(target=...)``, an executor's ``submit``/``map``, ``asyncio.to_thread``)
needs its own ``remove()`` in a ``finally`` (CNL011). Only what can be told for certain is reported:
a registry that is passed anywhere (``register(Session)``, ``cache.listen(Session)``) may be removed
by whatever received it, and a project that uses ``zope.sqlalchemy`` lets the transaction manager
close its sessions.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from connlint.catalog import Registry
from connlint.resolve import FuncDef, ImportMap, Origin, Resolver, ScopeIndex, dotted

TEARDOWN = re.compile(r"\bteardown_(?:appcontext|request|app_request)\b")


@dataclass(frozen=True)
class GStore:
    attr: str
    origin: Origin
    call: ast.Call


def g_stores(tree: ast.Module, resolver: Resolver) -> Iterator[GStore]:
    """``g.<attr> = <acquiring call>`` anywhere in functions of the module."""
    if "flask.g" not in resolver.imports.names.values() and "flask" not in resolver.imports.names.values():
        return
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        scope = None
        for node in resolver.index.of(func):
            if not isinstance(node, ast.Assign):
                continue
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if not isinstance(value, ast.Call):
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute) and resolver.qualify(target.value) == "flask.g":
                    if scope is None:
                        scope = resolver.function_scope(func, None)
                    origin = resolver.acquisition(value, scope)
                    if origin is not None and origin.api.tracked_in_functions:
                        yield GStore(target.attr, origin, value)


def _closes_g_attr(text: str, attr: str) -> bool:
    """Does this source have a teardown handler that closes g.<attr>?"""
    if not TEARDOWN.search(text):
        return False
    return bool(
        re.search(rf"""g\.pop\(\s*['"]{re.escape(attr)}['"]""", text)
        or re.search(rf"""getattr\(\s*g\s*,\s*['"]{re.escape(attr)}['"]""", text)
        or re.search(rf"\bg\.{re.escape(attr)}\.close\(", text)
    ) and ".close(" in text


@lru_cache(maxsize=64)
def _project_texts(root: str) -> tuple[str, ...]:
    """The sources under a project root that register a Flask teardown handler."""
    texts = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
        for name in files:
            if name.endswith(".py"):
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue
                if TEARDOWN.search(text):
                    texts.append(text)
        if len(texts) > 200:
            break
    return tuple(texts)


def torn_down(attr: str, module_text: str, root: str | None) -> bool:
    if _closes_g_attr(module_text, attr):
        return True
    if root is None:
        return False
    answer = torn_down_elsewhere(attr, root)
    from connlint.project import note

    note(["t", root, attr, answer])  # a cached result depends on the other files of the project
    return answer


def torn_down_elsewhere(attr: str, root: str) -> bool:
    """Does a module under the project root have a teardown handler that closes g.<attr>?"""
    return any(_closes_g_attr(text, attr) for text in _project_texts(root))


# ---------------------------------------------------------------------------------------------- scoped_session

WEB_FRAMEWORKS = frozenset({"flask", "quart", "fastapi", "starlette", "bottle", "sanic"})
ROUTE_DECORATORS = frozenset({"route", "get", "post", "put", "patch", "delete", "head", "options", "api_route",
                              "websocket"})
VIEW_DECORATORS = frozenset({"pyramid.view.view_config"})
VIEW_CLASSES = frozenset({"tornado.web.RequestHandler", "flask.views.MethodView", "flask.views.View",
                          "starlette.endpoints.HTTPEndpoint"})
VIEW_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "dispatch_request"})
THREAD_CLASSES = frozenset({"threading.Thread"})
THREAD_EXECUTORS = frozenset({"concurrent.futures.ThreadPoolExecutor", "concurrent.futures.thread.ThreadPoolExecutor"})
TO_THREAD = frozenset({"asyncio.to_thread"})
# registry attributes that do not use a session (configuring the registry itself)
_NOT_A_USE = frozenset({"configure", "query_property", "registry", "session_factory"})
# a transaction manager that closes the sessions of a scoped_session at the end of each transaction
_ZOPE = re.compile(r"\bzope\.sqlalchemy\b|\bZopeTransaction(?:Extension|Events)\b|\bzope_sqlalchemy\b")
_MAX_PROJECT_FILES = 5000


@dataclass(frozen=True)
class ScopedRegistry:
    """``name = scoped_session(...)`` at module level."""

    name: str
    call: ast.Call
    registry: Registry

    def is_release(self, node: ast.AST, names: frozenset[str]) -> bool:
        """``Session.remove`` / ``Session.close`` (called or passed on) for one of its local names."""
        return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in names and node.attr in self.registry.release)


@dataclass(frozen=True)
class ScopedFinding:
    code: str
    node: ast.expr
    message: str
    registry: ScopedRegistry


def _module_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements that run at import time: the module body, and the bodies of its ifs and trys."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try)):
            nested: list[ast.stmt] = [*stmt.body, *stmt.orelse]
            if isinstance(stmt, ast.Try):
                nested += [*(s for h in stmt.handlers for s in h.body), *stmt.finalbody]
            stack.extend(reversed(nested))


def scoped_registries(tree: ast.Module, resolver: Resolver) -> list[ScopedRegistry]:
    """The module-level registries of the module (a name bound once, to the registry call)."""
    registries = resolver.catalog.registries
    if not registries:
        return []
    found: dict[str, ScopedRegistry] = {}
    rebound: set[str] = set()
    for stmt in _module_statements(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            q = resolver.qualify(value.func) if isinstance(value, ast.Call) else None
            registry = registries.get(q) if q is not None else None
            if target.id in found or target.id in rebound or registry is None or len(targets) != 1:
                rebound.add(target.id)
                found.pop(target.id, None)
                continue
            assert isinstance(value, ast.Call)
            found[target.id] = ScopedRegistry(target.id, value, registry)
    return list(found.values())


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _escapes(tree: ast.AST, names: frozenset[str], parents: dict[int, ast.AST],
             definition: ast.AST | None = None) -> bool:
    """Is one of these names used other than as ``name(...)`` or ``name.attr``? (passed to a call,
    stored, returned, rebound: whatever receives it may remove it). ``definition``: the call whose
    assignment defines the registry."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            if not isinstance(node.ctx, ast.Load):
                statement = parents.get(id(node))
                if definition is not None and isinstance(statement, (ast.Assign, ast.AnnAssign)) and (
                    statement.value is definition
                ):
                    continue
                return True
            if _called_or_dereferenced(node, parents):
                continue
            return True
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and names.intersection(node.names):
            return True
    return False


def _uses(func: FuncDef, names: frozenset[str], registry: ScopedRegistry,
          parents: dict[int, ast.AST]) -> ast.expr | None:
    """The first use of the registry in a function: ``Session()``, ``Session.query(...)``,
    ``Session.add(x)``..., or None. A parameter or local of the same name hides the registry."""
    args = func.args
    bound = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
    bound |= {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    visible = names - bound
    if not visible:
        return None
    first: ast.expr | None = None
    for node in ast.walk(func):
        use: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in visible:
            use = node
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in visible
              and node.attr not in registry.registry.release and node.attr not in _NOT_A_USE):
            parent = parents.get(id(node))
            use = parent if isinstance(parent, ast.Call) and parent.func is node else node
        if use is not None and (first is None or (use.lineno, use.col_offset) < (first.lineno, first.col_offset)):
            first = use
    return first


def request_handlers(tree: ast.Module, qualify: Callable[[ast.expr], str | None],
                     frameworks: set[str]) -> Iterator[FuncDef]:
    """Functions a web framework calls once per request: routed functions (``@app.route``,
    ``@router.get``, ``@view_config``, ``app.add_url_rule(..., view_func=f)``) and the HTTP methods of
    view classes. ``frameworks``: the top-level modules the file imports."""
    if not frameworks & (WEB_FRAMEWORKS | {"pyramid", "tornado"}):
        return
    routed = bool(frameworks & WEB_FRAMEWORKS)
    defs: dict[str, FuncDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.setdefault(node.name, node)
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                q = qualify(target)
                if q in VIEW_DECORATORS or (
                    routed and isinstance(dec, ast.Call) and isinstance(target, ast.Attribute)
                    and target.attr in ROUTE_DECORATORS
                ) or (q is not None and q.split(".", 1)[0] in WEB_FRAMEWORKS
                      and q.rpartition(".")[2] in ROUTE_DECORATORS):
                    yield node
                    break
        elif isinstance(node, ast.ClassDef) and any(qualify(b) in VIEW_CLASSES for b in node.bases):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in VIEW_METHODS:
                    yield item
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_url_rule":
            view = next((kw.value for kw in node.keywords if kw.arg == "view_func"), None)
            if view is None and len(node.args) >= 3:
                view = node.args[2]
            if isinstance(view, ast.Name) and view.id in defs:
                yield defs[view.id]


def thread_targets(tree: ast.Module, qualify: Callable[[ast.expr], str | None]) -> Iterator[tuple[FuncDef, ast.AST]]:
    """(function, where it is started) for the functions of the module that clearly run as a thread:
    ``threading.Thread(target=f)``, ``executor.submit(f)``/``executor.map(f, ...)`` on a
    ``ThreadPoolExecutor``, ``asyncio.to_thread(f)``, ``loop.run_in_executor(ex, f)``, and ``run`` of a
    ``threading.Thread`` subclass. ``f`` is a function of the module, a function defined in the same
    function as the call, or ``self.method``; ``functools.partial(f, ...)`` is ``f``."""
    module_defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    module_executors = {n.id for stmt in tree.body for n in _executor_names(stmt, qualify)}
    scopes: list[tuple[ast.AST, ast.ClassDef | None]] = [(tree, None)]
    methods: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            if any(qualify(b) in THREAD_CLASSES for b in node.bases):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "run":
                        yield item, node
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    scopes.append((item, node))
                    methods.add(id(item))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and id(node) not in methods:
            scopes.append((node, None))
    for scope, owner in scopes:
        body = scope.body if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)) else []
        local_defs = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        executors = set(module_executors)
        if scope is not tree:
            executors |= {n.id for stmt in ast.walk(scope) for n in _executor_names(stmt, qualify)}
        for call in _own_calls(scope):
            target = _started(call, qualify, executors)
            func = _resolve_target(target, local_defs, module_defs, owner) if target is not None else None
            if func is not None:
                yield func, call


def _own_calls(scope: ast.AST) -> Iterator[ast.Call]:
    """Calls in a scope, not in the functions or classes nested in it."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _executor_names(stmt: ast.AST, qualify: Callable[[ast.expr], str | None]) -> Iterator[ast.Name]:
    value = stmt.value if isinstance(stmt, ast.Assign) else None
    if isinstance(stmt, ast.Assign) and isinstance(value, ast.Call) and qualify(value.func) in THREAD_EXECUTORS:
        yield from (t for t in stmt.targets if isinstance(t, ast.Name))
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        for item in stmt.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and qualify(expr.func) in THREAD_EXECUTORS and isinstance(
                item.optional_vars, ast.Name
            ):
                yield item.optional_vars


def _started(call: ast.Call, qualify: Callable[[ast.expr], str | None], executors: set[str]) -> ast.expr | None:
    """The callable a call runs in another thread, if it is one of the clear forms."""
    q = qualify(call.func)
    if q in THREAD_CLASSES:
        target = next((kw.value for kw in call.keywords if kw.arg == "target"), None)
        return target if target is not None or len(call.args) < 2 else call.args[1]
    if q in TO_THREAD:
        return call.args[0] if call.args else None
    func = call.func
    if isinstance(func, ast.Attribute):
        if func.attr == "run_in_executor" and len(call.args) >= 2:
            return call.args[1]
        receiver = func.value
        is_executor = (isinstance(receiver, ast.Name) and receiver.id in executors) or (
            isinstance(receiver, ast.Call) and qualify(receiver.func) in THREAD_EXECUTORS
        )
        if func.attr in ("submit", "map") and is_executor and call.args:
            return call.args[0]
    return None


def _resolve_target(target: ast.expr, local_defs: dict[str, FuncDef], module_defs: dict[str, FuncDef],
                    cls: ast.ClassDef | None) -> FuncDef | None:
    if isinstance(target, ast.Call) and dotted(target.func) in ("functools.partial", "partial") and target.args:
        target = target.args[0]
    if isinstance(target, ast.Name):
        return local_defs.get(target.id) or module_defs.get(target.id)
    if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
            and cls is not None):
        return next((m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and m.name == target.attr), None)
    return None


def _removes_in_finally(func: FuncDef, registry: ScopedRegistry, names: frozenset[str],
                        removers: frozenset[str]) -> bool:
    """Does the function release the registry in a ``finally`` (directly or through a module function
    that does), or use its session only in ``with Session()`` / ``with Session.begin()``?"""
    for node in ast.walk(func):
        if isinstance(node, ast.Try) and node.finalbody:
            for sub in ast.walk(ast.Module(body=node.finalbody, type_ignores=[])):
                if registry.is_release(sub, names):
                    return True
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in removers:
                    return True
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = item.context_expr
                if isinstance(expr, ast.Call) and (
                    # with Session() / with Session.begin() / with session_scope() (a function that removes)
                    (isinstance(expr.func, ast.Name) and (expr.func.id in names or expr.func.id in removers))
                    or (isinstance(expr.func, ast.Attribute) and isinstance(expr.func.value, ast.Name)
                        and expr.func.value.id in names and expr.func.attr == "begin")
                ):
                    return True
    return False


def scoped_session_findings(tree: ast.Module, resolver: Resolver, root: str | None, path: str | None,
                            thread_check: bool = True, request_check: bool = True) -> Iterator[ScopedFinding]:
    """CNL010 and CNL011 for the registries this module creates."""
    registries = scoped_registries(tree, resolver)
    if not registries:
        return
    parents = _parents(tree)
    module = resolver.module
    for reg in registries:
        project = _project_sources(root, reg.name) if root is not None else None
        names = frozenset({reg.name})
        if _escapes(tree, names, parents, reg.call) or (project is not None and project.zope):
            continue
        if request_check:
            finding = _request_finding(tree, resolver, reg, names, parents, project, module, path)
            if finding is not None:
                yield finding
        if thread_check:
            yield from _thread_findings(tree, resolver, reg, names, parents)


def _request_finding(tree: ast.Module, resolver: Resolver, reg: ScopedRegistry, names: frozenset[str],
                     parents: dict[int, ast.AST], project: ProjectSources | None, module: str | None,
                     path: str | None) -> ScopedFinding | None:
    if any(reg.is_release(node, names) for node in ast.walk(tree)):
        return None
    frameworks = {q.split(".", 1)[0] for q in resolver.imports.names.values()}
    handler: tuple[FuncDef, str] | None = None
    for func in request_handlers(tree, resolver.imports.qualify, frameworks):
        if _uses(func, names, reg, parents) is not None:
            handler = (func, f"line {func.lineno}")
            break
    if project is not None and module:
        qualified = f"{module}.{reg.name}"
        for other, text in project.files:
            if path is not None and os.path.abspath(other) == os.path.abspath(path):
                continue
            usage = _other_module_usage(other, text, qualified, module, reg)
            if usage is None:
                return None  # it cannot be told what that module does with the registry
            removes, found = usage
            if removes:
                return None
            if handler is None and found is not None:
                handler = (found, f"{_display(other)}:{found.lineno}")
        if project.truncated:
            return None
    if handler is None:
        return None
    func, where = handler
    release = reg.registry.release[0]
    return ScopedFinding(
        "CNL010", reg.call,
        f"scoped_session registry '{reg.name}' is used by request handler '{func.name}' ({where}) but nothing "
        f"in the project calls {reg.name}.{release}(); each server thread keeps its {reg.registry.kind}, and the "
        f"connection of an unfinished transaction, from one request to the next",
        reg,
    )


def _other_module_usage(path: str, text: str, qualified: str, module: str,
                        reg: ScopedRegistry) -> tuple[bool, FuncDef | None] | None:
    """(does the module release the registry, a request handler of it that uses the registry), or
    None when the module passes the registry on (it may be removed by what receives it)."""
    from connlint.project import module_name

    try:
        tree = ast.parse(text, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False, None
    name, _, is_package = module_name(path)
    package = name if is_package else name.rpartition(".")[0]
    index = ScopeIndex(tree)
    defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    imports = ImportMap(index.imports, defs, package=package)
    # any "Session.remove" in the text counts (also through names this cannot follow, like star imports)
    if re.search(rf"\b{re.escape(reg.name)}\s*\.\s*(?:{'|'.join(reg.registry.release)})\b", text):
        return True, None
    # the names the registry has here: "from app.db import Session [as S]" (or "from app.db import *"),
    # and "db.Session" through "import app.db as db" / "from app import db"
    local = {n for n, target in imports.names.items() if target == qualified}
    if any(isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names) for node in index.imports):
        local.add(reg.name)
    names = frozenset(local)
    parents = _parents(tree)
    if names and _escapes(tree, names, parents):
        return None
    via_module = {n for n, target in imports.names.items() if target == module}
    if via_module and _attribute_escapes(tree, via_module, reg.name, parents):
        return None
    if any(reg.is_release(node, names) for node in ast.walk(tree)):
        return True, None
    if not names:
        return False, None
    frameworks = {q.split(".", 1)[0] for q in imports.names.values()}
    for func in request_handlers(tree, imports.qualify, frameworks):
        if _uses(func, names, reg, parents) is not None:
            return False, func
    return False, None


def _attribute_escapes(tree: ast.AST, modules: set[str], name: str, parents: dict[int, ast.AST]) -> bool:
    """Is ``db.Session`` (``db`` one of these module names) used other than as ``db.Session(...)`` or
    ``db.Session.attr``?"""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            if _called_or_dereferenced(node, parents):
                continue
            return True
    return False


def _called_or_dereferenced(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Is the registry only used here as ``Session(...)`` or ``Session.attr`` (which keeps it)?"""
    parent = parents.get(id(node))
    return (isinstance(parent, ast.Attribute) and parent.value is node) or (
        isinstance(parent, ast.Call) and parent.func is node)


def _thread_findings(tree: ast.Module, resolver: Resolver, reg: ScopedRegistry, names: frozenset[str],
                     parents: dict[int, ast.AST]) -> Iterator[ScopedFinding]:
    removers = frozenset(
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(reg.is_release(sub, names) for sub in ast.walk(n))
    )
    reported: set[int] = set()
    for func, started in thread_targets(tree, resolver.imports.qualify):
        if id(func) in reported or func.decorator_list:
            continue  # a decorator may wrap the call in its own clean-up
        use = _uses(func, names, reg, parents)
        if use is None or _removes_in_finally(func, reg, names, removers):
            continue
        reported.add(id(func))
        release = reg.registry.release[0]
        unguarded = next((n for n in ast.walk(func) if reg.is_release(n, names) or (
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in removers)), None)
        kind = reg.registry.kind
        called = f"{reg.name}.{release}()"
        if isinstance(unguarded, ast.Call) and isinstance(unguarded.func, ast.Name):
            called = f"{unguarded.func.id}() (which calls {reg.name}.{release}())"
        how = (f"calls {called} at line {unguarded.lineno} outside a 'finally': an exception "
               f"before it leaves the thread's {kind}, its connection and transaction behind"
               if isinstance(unguarded, ast.expr) else
               f"never calls {reg.name}.{release}(): the thread's {kind} keeps its connection and transaction "
               f"after the work ends")
        yield ScopedFinding(
            "CNL011", use,
            f"thread target '{func.name}' (started at line {getattr(started, 'lineno', func.lineno)}) uses "
            f"scoped_session registry '{reg.name}' (line {reg.call.lineno}) and {how}",
            reg,
        )


@dataclass(frozen=True)
class ProjectSources:
    files: tuple[tuple[str, str], ...]  # (path, text) of the files that name the registry
    zope: bool  # the project uses zope.sqlalchemy (its transaction manager closes the sessions)
    truncated: bool  # too many files to read: nothing can be told for certain


@lru_cache(maxsize=16)
def _project_sources(root: str, name: str) -> ProjectSources:
    """The Python files under a project root whose text names a registry (``name``), for the
    registry checks (read once per process and name)."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    files: list[tuple[str, str]] = []
    count = 0
    zope = False
    for dirpath, dirs, filenames in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and d not in ("node_modules", "__pycache__", "site-packages", "venv", "env"))
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            count += 1
            if count > _MAX_PROJECT_FILES:
                return ProjectSources(tuple(files), zope, truncated=True)
            try:
                with open(os.path.join(dirpath, filename), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
            except OSError:
                continue
            zope = zope or bool(_ZOPE.search(text))
            if word.search(text):
                files.append((os.path.join(dirpath, filename), text))
    return ProjectSources(tuple(files), zope, truncated=False)


def _display(path: str) -> str:
    from connlint.project import relative_display

    return relative_display(path)


__all__ = ["GStore", "ScopedFinding", "ScopedRegistry", "dotted", "g_stores", "request_handlers",
           "scoped_registries", "scoped_session_findings", "thread_targets", "torn_down"]
