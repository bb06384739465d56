"""The provably safe shapes: find a finding's acquisition in the LibCST tree and decide which statements
a fix may put in the block that closes the resource, or say why no fix is safe.

A fix is offered only when every use of the resource, and of everything obtained from it, lies in one run
of statements of one block; nothing obtained from it is returned, yielded or stored; the name is bound
once, never deleted, not global/nonlocal and not used by a nested function; and its existing closes are
either the block's last statement, a ``finally`` that ends it, or directly before a ``return``/``raise``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional, cast

import libcst as cst
from libcst.metadata import (
    CodeRange,
    ComprehensionScope,
    MetadataWrapper,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from connlint.catalog import ResourceApi
from connlint.checker import Finding

FuncDef = cst.FunctionDef

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# Calls whose result no longer needs the resource (rows, numbers, data frames). Anything else computed
# from the resource may be a live object (a cursor, a lazy relation, an ORM instance) that the fix
# would hand out closed.
_MATERIALIZERS = frozenset({
    "fetchone", "fetchall", "fetchmany", "fetchval", "fetchrow", "fetch", "fetchdf", "fetch_df",
    "fetchnumpy", "fetch_arrow_table", "df", "pl", "arrow", "all", "first", "one", "one_or_none",
    "scalar", "scalar_one", "scalar_one_or_none", "find_one", "count_documents", "estimated_document_count",
    "distinct", "to_list", "commit", "rollback", "keys", "execute_fetchall",
})
# ORM objects stay attached to their session: for sessions only plain values count
_SESSION_MATERIALIZERS = frozenset({"count", "commit", "rollback"})
_VALUE_BUILTINS = frozenset({
    "len", "bool", "int", "float", "str", "repr", "isinstance", "hash", "sum", "any", "all", "print",
    "format", "round", "abs", "type", "id",
})
_ELEMENT_BUILTINS = frozenset({"list", "tuple", "set", "frozenset", "sorted", "dict", "min", "max", "next"})
_INERT_ATTRS = frozenset({
    "rowcount", "lastrowid", "description", "closed", "total_changes", "in_transaction", "isolation_level",
    "autocommit", "arraysize", "rownumber", "server_version", "status", "encoding", "inserted_id",
    "inserted_ids", "matched_count", "modified_count", "deleted_count", "upserted_id", "acknowledged",
})
_PANDAS_READERS = frozenset({"read_sql", "read_sql_query", "read_sql_table"})
# methods that keep their argument (containers) or register a release (exit stacks, finalizers)
_STORING = frozenset({
    "append", "appendleft", "add", "extend", "insert", "put", "put_nowait", "setdefault", "update",
    "enter_context", "enter_async_context", "push", "push_async_exit", "callback", "push_async_callback",
    "addCleanup", "addAsyncCleanup", "addfinalizer", "register", "finalize", "set", "setattr",
})
_REGISTERING = frozenset({"closing", "aclosing", "finalize", "register", "callback", "addCleanup"})
_CONSTRUCTING = frozenset({"__init__", "__new__", "setattr", "__setattr__", "__setitem__"})
_HARMLESS = _VALUE_BUILTINS | {"getattr", "hasattr", "vars", "dir"}
# session methods after which the object belongs to the session (and is detached when it closes)
_ATTACHING = frozenset({"add", "add_all", "merge", "refresh", "expire", "delete", "flush",
                        "enable_relationship_loading"})
_LENDING_DECORATORS = frozenset({"contextmanager", "asynccontextmanager", "fixture"})


# (trailing release index, closes before return/raise, close ending a final ``finally``, block end)
_Placed = tuple[Optional[int], list[cst.CSTNode], Optional[cst.SimpleStatementLine], int]


class NoSafeFix(Exception):
    """No fix is provably safe here; ``reason`` says why in one clause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Shape:
    """Which statements of ``owner.body`` the fix rewrites, and what it removes or moves."""

    finding: Finding
    api: ResourceApi
    var: str
    func: FuncDef
    owner: cst.IndentedBlock
    index: int  # the acquisition statement (an assignment, or the ``with`` for CNL003)
    call: cst.Call  # the acquiring call
    awaited: bool  # bound as ``var = await call``
    end: int  # last statement of the block (inclusive); ``index`` when the block is empty
    release: int | None = None  # a trailing release statement the fix removes or moves
    removals: frozenset[cst.CSTNode] = frozenset()  # closes just before return/raise (small statements)
    finally_release: cst.SimpleStatementLine | None = None  # a close ending the ``finally`` at ``end``
    fixture_return: bool = False  # CNL007: ``return var`` at ``end`` becomes ``yield var``
    commits_on_every_path: bool = False
    call_offset: int = -1  # columns from the statement's start to the call's (-1: not on its first line)
    async_function: bool = False
    with_item: int | None = None  # CNL003: the item of the ``with`` at ``index`` that acquires
    tree: Tree | None = field(default=None, compare=False, repr=False)  # the tree the nodes belong to

    @property
    def via_with(self) -> bool:
        return self.with_item is not None

    @property
    def stop(self) -> int:
        """One past the last statement the fix replaces."""
        return max(self.end, self.release if self.release is not None else -1) + 1


class Tree:
    """A parsed module with the metadata the checks need (positions, parents, scopes).

    The module may be one function cut out of a file (``regions``): ``line_offset`` turns its line
    numbers into the file's. With ``lazy``, each kind of metadata is resolved when it is first asked
    for (the whole-file tree that only answers questions about imports needs scopes alone)."""

    def __init__(self, text: str, line_offset: int = 0, module: cst.Module | None = None,
                 lazy: bool = False) -> None:
        self.text = text
        self.line_offset = line_offset
        # the module is ours alone, so no defensive copy
        self.wrapper = MetadataWrapper(module if module is not None else cst.parse_module(text),
                                       unsafe_skip_copy=True)
        self.module = self.wrapper.module
        self._positions: Mapping[cst.CSTNode, CodeRange] | None = None
        self._family: _Family | None = None
        self._scopes: Mapping[cst.CSTNode, Optional[Scope]] | None = None
        if not lazy:  # one batched pass computes both
            metadata = self.wrapper.resolve_many([PositionProvider, ScopeProvider])
            self._positions = cast(Mapping[cst.CSTNode, CodeRange], metadata[PositionProvider])
            self._scopes = cast(Mapping[cst.CSTNode, Optional[Scope]], metadata[ScopeProvider])
        self.lines = _LINE_BREAK.split(text)
        self._functions: dict[int, FuncDef] | None = None
        self._calls: dict[tuple[int, int], list[cst.Call]] | None = None
        self._all_scopes: list[Scope] | None = None

    def children(self, node: cst.CSTNode) -> Sequence[cst.CSTNode]:
        """``node.children``, from a map built once: the property rebuilds the node to find them, and the
        checks walk the same statements again and again."""
        found = self.family.children.get(node)
        return found if found is not None else node.children

    @property
    def family(self) -> _Family:
        if self._family is None:
            self._family = _Family()
            self.module.visit(self._family)
        return self._family

    @property
    def positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        if self._positions is None:
            self._positions = cast(Mapping[cst.CSTNode, CodeRange], self.wrapper.resolve(PositionProvider))
        return self._positions

    @property
    def parents(self) -> Mapping[cst.CSTNode, cst.CSTNode]:
        return self.family.parents

    @property
    def scopes(self) -> Mapping[cst.CSTNode, Optional[Scope]]:
        if self._scopes is None:
            self._scopes = cast(Mapping[cst.CSTNode, Optional[Scope]], self.wrapper.resolve(ScopeProvider))
        return self._scopes

    # ------------------------------------------------------------------ lookups

    def line_of(self, node: cst.CSTNode) -> int:
        """The node's line in the file."""
        return self.positions[node].start.line + self.line_offset

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def function_at(self, line: int) -> FuncDef | None:
        if self._functions is None:
            found: dict[int, FuncDef] = {}
            for node in _walk(self.module, self.children):
                if isinstance(node, cst.FunctionDef):
                    found[self.line_of(node.name)] = node
            self._functions = found
        return self._functions.get(line)

    def call_at(self, finding: Finding) -> cst.Call | None:
        """The call the finding points at (``ast`` columns count UTF-8 bytes, LibCST's characters)."""
        if self._calls is None:
            calls: dict[tuple[int, int], list[cst.Call]] = {}
            for node in _walk(self.module, self.children):
                if isinstance(node, cst.Call):
                    start = self.positions[node].start
                    calls.setdefault((start.line, start.column), []).append(node)
            self._calls = calls
        line = finding.line - self.line_offset
        end_line = (finding.end_line or finding.line) - self.line_offset
        candidates = self._calls.get((line, self._char_col(line, finding.col - 1)), [])
        end_col = self._char_col(end_line, finding.end_col - 1) if finding.end_col else None
        exact = [c for c in candidates if self.positions[c].end.line == end_line
                 and (end_col is None or self.positions[c].end.column == end_col)]
        chosen = exact or candidates
        return chosen[0] if len(chosen) == 1 else None

    def _char_col(self, line: int, byte_col: int) -> int:
        if not 0 < line <= len(self.lines):
            return -1
        return len(self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def scope_of(self, node: cst.CSTNode) -> Scope | None:
        return self.scopes.get(node)

    def all_scopes(self) -> list[Scope]:
        if self._all_scopes is None:
            self._all_scopes = list({id(s): s for s in self.scopes.values() if s is not None}.values())
        return self._all_scopes

    def accesses(self, scope: Scope, name: str) -> tuple[list[cst.CSTNode], list[cst.CSTNode]]:
        """Reads of ``name`` bound in ``scope``: (in the scope or its comprehensions, in nested functions)."""
        direct: list[cst.CSTNode] = [a.node for a in scope.accesses[name]]
        nested: list[cst.CSTNode] = []
        for other in self.all_scopes():
            if other is scope or not _inside(other, scope):
                continue
            for access in other.accesses[name]:
                if any(ref.scope is scope for ref in access.referents):
                    (direct if _only_comprehensions(other, scope) else nested).append(access.node)
        return direct, nested

    def statement_index(self, node: cst.CSTNode, owner: cst.IndentedBlock) -> int | None:
        """Index in ``owner.body`` of the statement that contains ``node`` (None: not inside ``owner``)."""
        child: cst.CSTNode | None = node
        while child is not None:
            parent = self.parent(child)
            if parent is owner:
                for i, stmt in enumerate(owner.body):
                    if stmt is child:
                        return i
                return None
            child = parent
        return None

    def contains(self, outer: cst.CSTNode, node: cst.CSTNode) -> bool:
        current: cst.CSTNode | None = node
        while current is not None:
            if current is outer:
                return True
            current = self.parent(current)
        return False


# a module-level function that calls one of these on a parameter (or passes one to the pool ones) releases it
HELPER_RELEASES = ("close", "terminate", "disconnect", "ensure_closed")
HELPER_POOL_RELEASES = ("putconn", "release")


def release_helpers(statements: Iterable[cst.BaseStatement]) -> dict[str, FuncDef]:
    """The functions among ``statements`` that release one of their parameters, by name."""
    helpers: dict[str, FuncDef] = {}
    for stmt in statements:
        if not isinstance(stmt, cst.FunctionDef):
            continue
        params = {p.name.value for p in (*stmt.params.posonly_params, *stmt.params.params,
                                         *stmt.params.kwonly_params)}
        for node in _walk_local(stmt.body):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                method = node.func.attr.value
                on_param = isinstance(node.func.value, cst.Name) and node.func.value.value in params
                arg_param = any(isinstance(a.value, cst.Name) and a.value.value in params for a in node.args)
                if (on_param and method in HELPER_RELEASES) or (arg_param and method in HELPER_POOL_RELEASES):
                    helpers[stmt.name.value] = stmt
                    break
    return helpers


class _Family(cst.CSTVisitor):
    """Each node's parent and children in one walk: what ``ParentNodeProvider`` gives, in a quarter of its
    time (it asks every node for ``children``, which rebuilds the node)."""

    def __init__(self) -> None:
        super().__init__()
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self.children: dict[cst.CSTNode, list[cst.CSTNode]] = {}
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            parent = self._stack[-1]
            self.parents[node] = parent
            self.children[parent].append(node)
        self.children[node] = []
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()


def _inside(scope: Scope, outer: Scope) -> bool:
    current: Scope | None = scope.parent
    while current is not None and current is not current.parent:
        if current is outer:
            return True
        current = current.parent
    return False


def _only_comprehensions(scope: Scope, outer: Scope) -> bool:
    """List/set/dict comprehensions run at once; generator expressions are caught by the taint rules."""
    current: Scope = scope
    while current is not outer:
        if not isinstance(current, ComprehensionScope):
            return False
        current = current.parent
    return True


Children = Callable[[cst.CSTNode], Sequence[cst.CSTNode]]


def _own_children(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    return node.children


def _walk(node: cst.CSTNode, children: Children = _own_children) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def _walk_local(node: cst.CSTNode, children: Children = _own_children) -> Iterator[cst.CSTNode]:
    """Nodes of this scope: does not enter nested functions, classes or lambdas."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if current is not node and isinstance(current, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        stack.extend(reversed(children(current)))


def dotted_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


# ---------------------------------------------------------------------------------------------- taint


class Taint:
    """Which expressions may hold the resource or a live object obtained from it."""

    def __init__(self, names: set[str], session: bool, children: Children = _own_children) -> None:
        self.names = names
        self.session = session
        self.children = children

    def expr(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Name):
            return node.value in self.names
        if isinstance(node, cst.Attribute):
            return node.attr.value not in _INERT_ATTRS and self.expr(node.value)
        if isinstance(node, cst.Call):
            return self._call(node)
        if isinstance(node, cst.Await):
            return self.expr(node.expression)
        if isinstance(node, cst.Subscript):
            return self.expr(node.value)
        if isinstance(node, (cst.ListComp, cst.SetComp)):
            return self._comprehension(node, [node.elt])
        if isinstance(node, cst.DictComp):
            return self._comprehension(node, [node.key, node.value])
        if isinstance(node, (cst.GeneratorExp, cst.Lambda)):
            return self.mentions(node)  # evaluated later, when the resource may be closed
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            return any(self.expr(e.value) for e in node.elements)
        if isinstance(node, cst.Dict):
            return any(
                self.expr(e.value) or (isinstance(e, cst.DictElement) and self.expr(e.key))
                for e in node.elements
            )
        if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
            return self.expr(node.left) or self.expr(node.right)
        if isinstance(node, cst.IfExp):
            return self.expr(node.body) or self.expr(node.orelse)
        if isinstance(node, cst.UnaryOperation):
            return not isinstance(node.operator, cst.Not) and self.expr(node.expression)
        if isinstance(node, cst.NamedExpr):
            return self.expr(node.value)
        if isinstance(node, (cst.Comparison, cst.BaseString, cst.BaseNumber, cst.Ellipsis)):
            return False
        return self.mentions(node)

    def _call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Attribute):
            materializers = _SESSION_MATERIALIZERS if self.session else _MATERIALIZERS
            if func.attr.value in materializers:
                return False
        if isinstance(func, cst.Name):
            if func.value in _VALUE_BUILTINS:
                return False
            if func.value in _ELEMENT_BUILTINS:
                return any(self.elements(arg.value) for arg in node.args)
        last = func.attr.value if isinstance(func, cst.Attribute) else dotted_name(func)
        if last in _PANDAS_READERS and not any(
            arg.keyword is not None and arg.keyword.value in ("chunksize", "iterator") for arg in node.args
        ):
            return False
        return self.expr(func) or any(self.expr(arg.value) for arg in node.args)

    def elements(self, node: cst.BaseExpression) -> bool:
        """Whether iterating ``node`` may give live objects (cursor rows do not; ORM instances do)."""
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            return any(self.expr(e.value) for e in node.elements)
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            return self._comprehension(node, [node.elt])
        return self.session and self.expr(node)

    def _comprehension(self, node: cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp,
                       results: Sequence[cst.BaseExpression]) -> bool:
        inner = Taint(set(self.names), self.session, self.children)
        level: cst.CompFor | None = node.for_in
        while level is not None:
            live = inner.elements(level.iter)
            for name in _target_names(level.target):
                (inner.names.add if live else inner.names.discard)(name)
            level = level.inner_for_in
        return any(inner.expr(r) for r in results)

    def mentions(self, node: cst.CSTNode) -> bool:
        return any(isinstance(n, cst.Name) and n.value in self.names for n in _names(node, self.children))


def _names(node: cst.CSTNode, children: Children = _own_children) -> Iterator[cst.Name]:
    """Name nodes that read a variable (not attribute names or keyword argument names)."""
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            yield current
            continue
        if isinstance(current, cst.Attribute):
            stack.append(current.value)
            continue
        if isinstance(current, cst.Arg):
            stack.append(current.value)
            continue
        stack.extend(children(current))


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


# ---------------------------------------------------------------------------------------------- the checks


@dataclass
class _Block:
    """What the walk over the would-be block found."""

    releases: list[cst.Call] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


class Analyzer:
    """Decides the shape of one finding's fix in one parsed module."""

    def __init__(self, tree: Tree, release_helpers: Sequence[str] = (),
                 module_helpers: Callable[[], Iterable[FuncDef]] | None = None) -> None:
        """``module_helpers``: the module-level functions of the file, when ``tree`` holds only part of
        it (only those that may release a parameter are needed)."""
        self.tree = tree
        # configured helpers that release their argument: matched by their last name, to be safe
        self.configured_helpers = frozenset(name.rpartition(".")[2] for name in release_helpers)
        self._module_functions = module_helpers
        self._module_release_helpers: dict[str, FuncDef] | None = None
        self.attached: set[str] = set()
        self._function: FuncDef | None = None

    def shape(self, finding: Finding) -> Shape:
        leak = finding.leak
        if leak is None or not leak.var:
            raise NoSafeFix("the resource is not bound to a name")
        if leak.function_line == 0:
            raise NoSafeFix("it is opened at module level")
        func = self.tree.function_at(leak.function_line)
        if func is None:
            raise NoSafeFix("cannot find its function in the source")
        call = self.tree.call_at(finding)
        if call is None:
            raise NoSafeFix("cannot find the acquiring call in the source")
        var = leak.var
        self._function = func
        self._check_name(func, var)
        if leak.via_with:
            return self._with_shape(finding, func, call, var)
        return self._assign_shape(finding, func, call, var)

    # ------------------------------------------------------------------ the name

    def _func_scope(self, func: FuncDef) -> Scope:
        first = func.body.body[0] if isinstance(func.body, cst.IndentedBlock) and func.body.body else None
        scope = self.tree.scope_of(first) if first is not None else None
        if scope is None:
            raise NoSafeFix("cannot resolve the function's scope")
        return scope

    def _check_name(self, func: FuncDef, var: str) -> None:
        for node in _walk_local(func.body, self.tree.children):
            if isinstance(node, (cst.Global, cst.Nonlocal)) and any(n.name.value == var for n in node.names):
                kind = "global" if isinstance(node, cst.Global) else "nonlocal"
                raise NoSafeFix(f"'{var}' is declared {kind} at line {self.tree.line_of(node)}")
        scope = self._func_scope(func)
        assignments = list(scope.assignments[var])
        if len(assignments) != 1:
            nodes = [getattr(a, "node", None) for a in assignments]
            others = ", ".join(str(self.tree.line_of(n)) for n in sorted(
                (n for n in nodes if isinstance(n, cst.CSTNode)), key=self.tree.line_of))
            raise NoSafeFix(f"'{var}' is bound more than once (lines {others})")
        direct, nested = self.tree.accesses(scope, var)
        if nested:
            raise NoSafeFix(f"'{var}' is used by a nested function at line {self.tree.line_of(nested[0])}")
        for node in direct:
            if isinstance(self.tree.parent(node), cst.Del):
                raise NoSafeFix(f"'{var}' is deleted with 'del' at line {self.tree.line_of(node)}")

    # ------------------------------------------------------------------ var = f(...)

    def _assign_shape(self, finding: Finding, func: FuncDef, call: cst.Call, var: str) -> Shape:
        assert finding.leak is not None
        api = finding.leak.api
        tree = self.tree
        value: cst.CSTNode = call
        parent = tree.parent(call)
        awaited = isinstance(parent, cst.Await)
        if awaited:
            assert parent is not None
            value, parent = parent, tree.parent(parent)
        if isinstance(parent, cst.AnnAssign):
            raise NoSafeFix("it is bound with an annotated assignment")
        if not isinstance(parent, cst.Assign) or parent.value is not value:
            raise NoSafeFix("the acquiring call is part of a larger expression")
        if len(parent.targets) != 1 or not isinstance(parent.targets[0].target, cst.Name):
            raise NoSafeFix("it is assigned to more than one target")
        line = tree.parent(parent)
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            raise NoSafeFix("the assignment shares its line with other statements")
        owner, index = _owning_block(tree, func, line, "the assignment")
        scope = self._func_scope(func)
        session = api.kind == "session"
        tainted, derived = self._taint(owner.body[index + 1:], var, session)
        tainted = {n for n in tainted if n == var or scope.assignments[n]}
        last = index
        for name in sorted(tainted):
            direct, nested = tree.accesses(scope, name)
            if nested:
                raise NoSafeFix(
                    f"'{name}' (from '{var}') is used by a nested function at line {tree.line_of(nested[0])}"
                )
            for node in direct:
                k = tree.statement_index(node, owner)
                if name in self.attached and self._before(node, line, func, owner):
                    continue  # used before it was handed to the session
                if k is None or k <= index:
                    what = f"'{var}'" if name == var else f"'{name}' (from '{var}')"
                    raise NoSafeFix(f"{what} is used outside the would-be block at line {tree.line_of(node)}")
                last = max(last, k)
        body = owner.body[index + 1:last + 1]
        lends = _lends(func, tree)
        fixture = finding.code == "CNL007"
        found = self._scan(body, var, api, Taint(tainted, session, self.tree.children), lends=lends,
                           fixture_return=fixture and last == len(owner.body) - 1 and owner is func.body)
        if found.problems:
            line_no, reason = found.problems[0]
            raise NoSafeFix(f"{reason} at line {line_no}")
        for name, node in derived:
            if name == var:
                raise NoSafeFix(f"'{var}' is copied to another name at line {tree.line_of(node)}")
        placed = self._place_releases(found.releases, owner, index, last, var)
        release, removals, finally_release, end = placed
        fixture_return = False
        if fixture:
            stmt = owner.body[end] if end > index else None
            if not (owner is func.body and end == len(owner.body) - 1 and _is_return_of(stmt, var)):
                raise NoSafeFix("the fixture does not end with 'return " + var + "'")
            if _has_other_return_or_yield(func, stmt, self.tree.children):
                raise NoSafeFix("the fixture has another return or a yield")
            fixture_return = True
        return Shape(
            finding=finding, api=api, var=var, func=func, owner=owner, index=index, call=call,
            awaited=awaited, end=end, release=release, removals=frozenset(removals),
            finally_release=finally_release, fixture_return=fixture_return,
            commits_on_every_path=self._commits_on_every_path(owner.body[index + 1:end + 1], var, removals,
                                                              finally_release),
            async_function=func.asynchronous is not None, call_offset=self._offset(line, call), tree=tree,
        )

    def _related(self, attached: set[str]) -> set[str]:
        """Objects handed to a session, and names computed from them anywhere in the function
        (``insp = inspect(obj)``): closing the session detaches all of them."""
        if not attached or self._function is None:
            return attached
        related = set(attached)
        while True:
            taint = Taint(related, session=True, children=self.tree.children)
            found = set(related)
            for target, _, value in _bindings(self._function.body, taint):
                if taint.mentions(value):
                    found.update(_target_names(target))
            if found == related:
                return related
            related = found

    def _before(self, node: cst.CSTNode, stmt: cst.CSTNode, func: FuncDef, owner: cst.CSTNode) -> bool:
        """``node`` runs before ``stmt`` on every path: it comes first and no loop encloses ``stmt``."""
        current: cst.CSTNode | None = owner
        while current is not None and current is not func:
            if isinstance(current, (cst.For, cst.While)):
                return False
            current = self.tree.parent(current)
        at, start = self.tree.positions[node].start, self.tree.positions[stmt].start
        return (at.line, at.column) < (start.line, start.column)

    def _offset(self, stmt: cst.CSTNode, call: cst.Call) -> int:
        start, at = self.tree.positions[stmt].start, self.tree.positions[call].start
        return at.column - start.column if at.line == start.line else -1

    def _taint(self, body: Sequence[cst.BaseStatement], var: str,
               session: bool) -> tuple[set[str], list[tuple[str, cst.CSTNode]]]:
        """Names that may hold the resource or something live obtained from it (to a fixed point), and
        plain copies ``x = var``. Objects only handed to a session are kept in ``self.attached``."""
        tainted = {var}
        copies: list[tuple[str, cst.CSTNode]] = []
        while True:
            taint = Taint(set(tainted), session, self.tree.children)
            found: set[str] = set(tainted)
            bound: set[str] = {var}
            copies = []
            for stmt in body:
                for target, live, node in _bindings(stmt, taint):
                    for name in _target_names(target):
                        if live:
                            found.add(name)
                            bound.add(name)
                    if isinstance(node, cst.Name) and node.value == var and isinstance(target, cst.Name):
                        copies.append((var, node))
                if session:
                    found.update(_attached(stmt, taint))
            if found == tainted:
                self.attached = self._related(tainted - bound)
                return tainted | self.attached, copies
            tainted = found

    def _scan(self, body: Sequence[cst.BaseStatement], var: str, api: ResourceApi, taint: Taint,
              lends: bool, fixture_return: bool) -> _Block:
        """Walk the would-be block: collect closes of ``var`` and anything that makes a fix unsafe."""
        found = _Block()
        tree = self.tree
        release_names = set(api.release)
        pool_names = set(api.pool_release)
        helpers = self._release_helpers(api)
        last_stmt = body[-1] if body else None
        for stmt in body:
            for node in _walk_local(stmt, tree.children):
                line = tree.line_of(node) if node in tree.positions else 0
                if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not stmt:
                    continue
                if isinstance(node, cst.Return) and node.value is not None and taint.expr(node.value):
                    if fixture_return and stmt is last_stmt and _is_return_of(stmt, var):
                        continue
                    if not self._follows_removable_release(node, var, api):
                        found.problems.append((line, f"it would return a value that needs '{var}' open"))
                elif isinstance(node, (cst.Yield,)) and node.value is not None and not lends:
                    value = node.value.item if isinstance(node.value, cst.From) else node.value
                    if taint.expr(value):
                        found.problems.append((line, f"it would yield a value that needs '{var}' open"))
                elif isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                    targets = (
                        [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                    )
                    if node.value is not None and taint.expr(node.value):
                        for target in targets:
                            if _stores(target):
                                found.problems.append((line, f"a value that needs '{var}' open is stored"))
                elif isinstance(node, cst.Call):
                    self._scan_call(node, var, api, taint, release_names, pool_names, helpers, found, line)
                elif isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) \
                        and node.value.value == var and node.attr.value in release_names:
                    parent = tree.parent(node)
                    if not (isinstance(parent, cst.Call) and parent.func is node):
                        found.problems.append((line, f"'{var}.{node.attr.value}' is passed on"))
                elif isinstance(node, cst.WithItem) and api.cm_releases and _is_name(node.item, var):
                    found.problems.append((line, f"'{var}' is also closed by a 'with' block"))
                elif isinstance(node, (cst.Global, cst.Nonlocal)) and any(
                    n.name.value in taint.names for n in node.names
                ):
                    found.problems.append((line, "a name holding it is global or nonlocal"))
        return found

    def _scan_call(self, node: cst.Call, var: str, api: ResourceApi, taint: Taint, release_names: set[str],
                   pool_names: set[str], helpers: dict[str, FuncDef], found: _Block, line: int) -> None:
        func = node.func
        args = [a.value for a in node.args]
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if _is_name(func.value, var) and method in release_names:
                found.releases.append(node)
                return
            if method in pool_names and args and _is_name(args[0], var):
                found.releases.append(node)
                return
            # storing into the resource itself (session.add(obj)) keeps nothing beyond the block
            if method in _STORING and not taint.expr(func.value) and any(taint.expr(a) for a in args):
                found.problems.append((line, f"a value that needs '{var}' open is passed to .{method}()"))
                return
        name = func.attr.value if isinstance(func, cst.Attribute) else (dotted_name(func) or "")
        callee = dotted_name(func) or name
        if name in _REGISTERING and any(_is_name(a, var) for a in args):
            found.problems.append((line, f"the close of '{var}' is registered with {name}()"))
        elif (name[:1].isupper() or name in _CONSTRUCTING) and any(taint.expr(a) for a in args):
            # a constructor (also Base.__init__(self, conn), setattr(obj, n, conn)) keeps its argument
            found.problems.append((line, f"a value that needs '{var}' open is passed to {callee}()"))
        elif (
            (isinstance(func, cst.Name) and func.value in helpers) or name in self.configured_helpers
        ) and any(_is_name(a, var) for a in args):
            found.problems.append((line, f"'{callee}()' closes '{var}' too"))
        elif api.second_release_raises and any(_is_name(a, var) for a in args) and callee not in _HARMLESS:
            found.problems.append((
                line, f"'{var}' is passed to {callee}(), which may close it, and a second close() of "
                f"{api.api.split('.', 1)[0]} raises",
            ))

    def _release_helpers(self, api: ResourceApi) -> dict[str, FuncDef]:
        """Module-level functions that release one of their parameters (``def close_db(c): c.close()``)."""
        if self._module_release_helpers is None:
            if self._module_functions is not None:
                functions: Iterable[cst.BaseStatement] = self._module_functions()
            else:
                functions = self.tree.module.body
            self._module_release_helpers = release_helpers(functions)
        return self._module_release_helpers

    def _follows_removable_release(self, node: cst.Return, var: str, api: ResourceApi) -> bool:
        previous = _previous_small(self.tree, node)
        return previous is not None and _release_call(previous, var, api) is not None

    def _place_releases(self, releases: list[cst.Call], owner: cst.IndentedBlock, index: int, last: int,
                        var: str) -> _Placed:
        """Sort the closes found in the block: trailing statement, end of a final ``finally``, or just
        before a return/raise. Returns (release index, removals, finally release, block end)."""
        tree = self.tree
        release: int | None = None
        finally_release: cst.SimpleStatementLine | None = None
        removals: list[cst.CSTNode] = []
        for call in releases:
            small = _small_statement_of(tree, call)
            line_node = tree.parent(small) if small is not None else None
            where = tree.line_of(call)
            if small is None or line_node is None:
                raise NoSafeFix(f"'{var}' is closed inside an expression at line {where}")
            if isinstance(line_node, cst.SimpleStatementLine) and len(line_node.body) == 1:
                k = tree.statement_index(line_node, owner)
                if k is not None and k == last and tree.parent(line_node) is owner:
                    release = k
                    continue
                stmt = owner.body[last] if last > index else None
                if isinstance(stmt, cst.Try) and _ends_finally(stmt, line_node):
                    if _finally_comments(stmt, line_node):
                        raise NoSafeFix(f"the comments of the 'finally' at line {where} would be lost")
                    finally_release = line_node
                    continue
            following = _next_small(tree, small)
            if isinstance(following, (cst.Return, cst.Raise)):
                removals.append(small)
                continue
            raise NoSafeFix(f"'{var}' is closed at line {where} before the end of the would-be block")
        end = last - 1 if release is not None else last
        return release, removals, finally_release, end

    def _commits_on_every_path(self, body: Sequence[cst.BaseStatement], var: str, removals: list[cst.CSTNode],
                               finally_release: cst.SimpleStatementLine | None) -> bool:
        """The block's last statement commits and no return/break/continue leaves the block before it."""
        if not body or removals:
            return False
        last = body[-1]
        if not (isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1
                and isinstance(last.body[0], cst.Expr)):
            return False
        value = last.body[0].value
        if isinstance(value, cst.Await):
            value = value.expression
        if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                and _is_name(value.func.value, var) and value.func.attr.value == "commit"):
            return False
        return not any(_leaves(stmt, self.tree.children) for stmt in body)

    # ------------------------------------------------------------------ with f(...) as var (CNL003)

    def _with_shape(self, finding: Finding, func: FuncDef, call: cst.Call, var: str) -> Shape:
        assert finding.leak is not None
        api = finding.leak.api
        tree = self.tree
        item = tree.parent(call)
        if not isinstance(item, cst.WithItem) or item.item is not call:
            raise NoSafeFix("the acquiring call is part of a larger expression")
        if item.asname is None or not _is_name(item.asname.name, var):
            raise NoSafeFix("the 'with' does not bind it to a plain name")
        stmt = tree.parent(item)
        if not isinstance(stmt, cst.With) or stmt.asynchronous is not None:
            raise NoSafeFix("it is not acquired by a plain 'with'")
        owner, index = _owning_block(tree, func, stmt, "the 'with'")
        scope = self._func_scope(func)
        body = list(stmt.body.body) if isinstance(stmt.body, cst.IndentedBlock) else []
        if not isinstance(stmt.body, cst.IndentedBlock):
            raise NoSafeFix("the 'with' body is on the same line")
        session = api.kind == "session"
        tainted, derived = self._taint(body, var, session)
        tainted = {n for n in tainted if n == var or scope.assignments[n]}
        for name in sorted(tainted):
            direct, nested = tree.accesses(scope, name)
            if nested:
                raise NoSafeFix(f"'{name}' is used by a nested function at line {tree.line_of(nested[0])}")
            for node in direct:
                if not tree.contains(stmt, node):
                    what = f"'{var}'" if name == var else f"'{name}' (from '{var}')"
                    raise NoSafeFix(f"{what} is used after the 'with' block at line {tree.line_of(node)}")
        for _, node in derived:
            raise NoSafeFix(f"'{var}' is copied to another name at line {tree.line_of(node)}")
        taint = Taint(tainted, session, self.tree.children)
        found = self._scan(body, var, api, taint, lends=_lends(func, tree), fixture_return=False)
        if found.problems:
            line_no, reason = found.problems[0]
            raise NoSafeFix(f"{reason} at line {line_no}")
        if found.releases:
            where = tree.line_of(found.releases[0])
            raise NoSafeFix(f"'{var}' is also closed inside the block at line {where}")
        item_index = next(i for i, it in enumerate(stmt.items) if it is item)
        if api.is_pool_checkout:
            _pool_expression(call)  # raises when the pool is not a plain name
            if item_index != 0:
                raise NoSafeFix("the pool checkout is not the first item of the 'with'")
        return Shape(
            finding=finding, api=api, var=var, func=func, owner=owner, index=index, call=call, awaited=False,
            end=index, with_item=item_index, async_function=func.asynchronous is not None,
            call_offset=self._offset(stmt, call), tree=tree,
        )


# ---------------------------------------------------------------------------------------------- helpers


def _is_name(node: cst.CSTNode | None, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _stores(target: cst.CSTNode) -> bool:
    if isinstance(target, (cst.Attribute, cst.Subscript)):
        return True
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_stores(e.value) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return _stores(target.value)
    return False


def _bindings(stmt: cst.CSTNode, taint: Taint) -> Iterator[tuple[cst.CSTNode, bool, cst.CSTNode]]:
    """(target, may hold a live object, value) for every binding in the statement's own scope."""
    for node in _walk_local(stmt, taint.children):
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not stmt:
            continue
        if isinstance(node, cst.Assign):
            live = taint.expr(node.value)
            for target in node.targets:
                yield target.target, live, node.value
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)) and node.value is not None:
            yield node.target, taint.expr(node.value), node.value
        elif isinstance(node, cst.For):
            yield node.target, taint.elements(node.iter), node.iter
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            yield node.asname.name, taint.expr(node.item), node.item
        elif isinstance(node, cst.NamedExpr):
            yield node.target, taint.expr(node.value), node.value


def _attached(stmt: cst.CSTNode, taint: Taint) -> Iterator[str]:
    """Names handed to a session's methods (``s.add(obj)``, ``s.merge(obj)``): the objects become part
    of the session and are detached when it closes."""
    for node in _walk_local(stmt, taint.children):
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        if node.func.attr.value not in _ATTACHING or not taint.expr(node.func.value):
            continue
        for arg in node.args:
            value = arg.value
            items = [e.value for e in value.elements] if isinstance(value, (cst.List, cst.Tuple)) else [value]
            yield from (item.value for item in items if isinstance(item, cst.Name))


def _lends(func: FuncDef, tree: Tree) -> bool:
    """A @contextmanager or pytest fixture: its ``yield`` lends the resource while the block stays open."""
    for dec in func.decorators:
        target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        name = dotted_name(target) or ""
        if name.rpartition(".")[2] in _LENDING_DECORATORS:
            return True
    return False


def _is_return_of(stmt: cst.CSTNode | None, var: str) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Return) and _is_name(stmt.body[0].value, var)
    )


def _has_other_return_or_yield(func: FuncDef, final: cst.CSTNode | None,
                               children: Children = _own_children) -> bool:
    for node in _walk_local(func.body, children):
        if isinstance(node, (cst.Yield,)):
            return True
        if isinstance(node, cst.Return) and node.value is not None and (
            not isinstance(final, cst.SimpleStatementLine) or node is not final.body[0]
        ):
            return True
    return False


def _small_statement_of(tree: Tree, call: cst.Call) -> cst.BaseSmallStatement | None:
    """The expression statement that is exactly this call (or ``await`` of it)."""
    node: cst.CSTNode = call
    parent = tree.parent(node)
    if isinstance(parent, cst.Await):
        node, parent = parent, tree.parent(parent)
    if isinstance(parent, cst.Expr) and parent.value is node:
        return parent
    return None


def _suite_items(tree: Tree, small: cst.CSTNode) -> tuple[list[cst.CSTNode], int]:
    """The statements of the suite holding ``small``, with simple lines flattened, and its position."""
    line = tree.parent(small)
    items: list[cst.CSTNode] = []
    if isinstance(line, cst.SimpleStatementSuite):
        items.extend(line.body)
        return items, next(i for i, item in enumerate(items) if item is small)
    block = tree.parent(line) if line is not None else None
    if not isinstance(block, cst.IndentedBlock):
        return [], -1
    for stmt in block.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            items.extend(stmt.body)
        else:
            items.append(stmt)
    return items, next(i for i, item in enumerate(items) if item is small)


def _next_small(tree: Tree, small: cst.CSTNode) -> cst.CSTNode | None:
    items, at = _suite_items(tree, small)
    return items[at + 1] if 0 <= at < len(items) - 1 else None


def _previous_small(tree: Tree, small: cst.CSTNode) -> cst.CSTNode | None:
    items, at = _suite_items(tree, small)
    return items[at - 1] if at > 0 else None


def _release_call(small: cst.CSTNode, var: str, api: ResourceApi) -> cst.Call | None:
    """The call if ``small`` is an expression statement that releases ``var``."""
    if not isinstance(small, cst.Expr):
        return None
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Attribute):
        return None
    method = value.func.attr.value
    if _is_name(value.func.value, var) and method in api.release:
        return value
    if method in api.pool_release and value.args and _is_name(value.args[0].value, var):
        return value
    return None


def _ends_finally(stmt: cst.Try, line: cst.SimpleStatementLine) -> bool:
    final = stmt.finalbody
    return (
        final is not None and isinstance(final.body, cst.IndentedBlock) and bool(final.body.body)
        and final.body.body[-1] is line
    )


def _finally_comments(stmt: cst.Try, line: cst.SimpleStatementLine) -> bool:
    """Comments that go away with the close (its own, and the ``finally`` header's when it empties)."""
    final = stmt.finalbody
    assert final is not None and isinstance(final.body, cst.IndentedBlock)
    own = any(e.comment for e in line.leading_lines) or line.trailing_whitespace.comment is not None
    if len(final.body.body) > 1:
        return own
    return own or any(e.comment for e in final.leading_lines) or final.body.header.comment is not None or any(
        e.comment for e in final.body.footer
    )


def _leaves(stmt: cst.CSTNode, children: Children = _own_children) -> bool:
    """Whether a return/break/continue in ``stmt`` can jump out of it."""

    def visit(node: cst.CSTNode, in_loop: bool) -> bool:
        if isinstance(node, cst.Return):
            return True
        if isinstance(node, (cst.Break, cst.Continue)) and not in_loop:
            return True
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        if isinstance(node, (cst.For, cst.While)):
            return any(visit(c, True) for c in children(node.body)) or (
                node.orelse is not None and visit(node.orelse, in_loop)
            )
        return any(visit(c, in_loop) for c in children(node))

    return visit(stmt, False)


def _pool_expression(call: cst.Call) -> cst.BaseExpression:
    """``pool`` in ``pool.getconn()``: a plain name or attribute chain, so the fix can name it again."""
    if not isinstance(call.func, cst.Attribute) or dotted_name(call.func.value) is None:
        raise NoSafeFix("the pool is not a plain name, so 'putconn' cannot name it again")
    return call.func.value


def pool_expression(call: cst.Call) -> cst.BaseExpression:
    return _pool_expression(call)


__all__ = [
    "HELPER_POOL_RELEASES", "HELPER_RELEASES", "Analyzer", "NoSafeFix", "Shape", "Taint", "Tree", "dotted_name",
    "pool_expression", "release_helpers",
]


def _owning_block(tree: Tree, func: cst.FunctionDef, stmt: cst.CSTNode, what: str) -> tuple[cst.IndentedBlock, int]:
    """The indented block of ``func`` that holds ``stmt`` directly, and the statement's index in it."""
    owner = tree.parent(stmt)
    if not isinstance(owner, cst.IndentedBlock) or not tree.contains(func.body, owner):
        raise NoSafeFix(f"{what} is not in a block of its own")
    index = tree.statement_index(stmt, owner)
    assert index is not None
    return owner, index
