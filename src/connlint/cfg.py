"""Per-function control-flow graph with normal and exception edges.

The design follows python-graphs' control_flow: a stack of frames (loop, try/except, try/finally,
with, function) tells ``return``/``break``/``continue``/``raise`` where to go. A ``finally`` body (and a
``with`` exit) is built once per continuation that passes through it (fall-through, exception, return,
break, continue), so the dataflow never mixes the state of a path that returns with one that falls
through. Nodes are statements or statement headers; each node has normal successors and at most one
exception target (where an exception raised while executing it goes).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union

from connlint import astwalk

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module]

# Node kinds
ENTRY = "entry"
RETURN_EXIT = "return-exit"
RAISE_EXIT = "raise-exit"
STMT = "stmt"  # a simple statement (Assign, Expr, Return, Raise, Delete, ...)
TEST = "test"  # if/while test: successors carry a True/False label
FOR = "for"  # for-loop header: evaluate next(iter) and bind the target
WITH_ENTER = "with-enter"  # evaluate one with-item and bind its target
WITH_EXIT = "with-exit"  # leave one with-item (__exit__)
MATCH = "match"  # evaluate the subject
CASE = "case"  # a case pattern matched: bind its names
HANDLER = "handler"  # an except clause caught the exception: bind its name
DISPATCH = "dispatch"  # an exception reached a try's handlers
JOIN = "join"  # no effect; a place where paths meet
FALL_OFF = "fall-off"  # the end of the function body is reached without return


class BudgetExceeded(Exception):
    """The graph grew past the per-function budget (pathological nesting of finally blocks)."""


@dataclass(eq=False)
class Node:
    id: int
    kind: str
    ast_node: ast.AST | None = None
    line: int = 0
    succ: list[tuple[Node, bool | None]] = field(default_factory=list)
    exc: Node | None = None
    # for WITH_EXIT: the with-item it leaves; for jump statements: which jump
    jump: str | None = None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Node {self.id} {self.kind} line {self.line}>"

    def add(self, target: Node, label: bool | None = None) -> None:
        self.succ.append((target, label))


@dataclass
class Graph:
    entry: Node
    return_exit: Node
    raise_exit: Node
    nodes: list[Node]

    def predecessors(self) -> dict[int, list[tuple[Node, bool]]]:
        """Map node id -> (predecessor, via_exception_edge)."""
        preds: dict[int, list[tuple[Node, bool]]] = {n.id: [] for n in self.nodes}
        for node in self.nodes:
            for target, _ in node.succ:
                preds[target.id].append((node, False))
            if node.exc is not None:
                preds[node.exc.id].append((node, True))
        return preds

    def find(self, text_line: int, kind: str | None = None) -> list[Node]:
        """Nodes on a source line (tests select nodes this way)."""
        return [n for n in self.nodes if n.line == text_line and (kind is None or n.kind == kind)]


# ---------------------------------------------------------------------------------------------- frames


@dataclass(eq=False)
class _Frame:
    pass


@dataclass(eq=False)
class _Function(_Frame):
    return_exit: Node
    raise_exit: Node


@dataclass(eq=False)
class _Loop(_Frame):
    break_target: Node
    continue_target: Node


@dataclass(eq=False)
class _TryExcept(_Frame):
    dispatch: Node


@dataclass(eq=False)
class _Finally(_Frame):
    body: list[ast.stmt]


@dataclass(eq=False)
class _With(_Frame):
    item: ast.withitem
    stmt: ast.With | ast.AsyncWith


_JUMPS = ("return", "break", "continue", "raise")


class _Builder:
    def __init__(self, budget: int, yield_raises: bool, quiet_calls: frozenset[str]) -> None:
        self.yield_raises = yield_raises
        self.quiet_calls = quiet_calls
        self.nodes: list[Node] = []
        self.frames: list[_Frame] = []
        self.budget = budget
        # (frame, jump kind) -> node where that jump lands; holding the frame keeps its identity unique
        self._jump_cache: dict[tuple[_Frame, str], Node] = {}

    def new(self, kind: str, ast_node: ast.AST | None = None, line: int = 0, jump: str | None = None) -> Node:
        if len(self.nodes) >= self.budget:
            raise BudgetExceeded(f"control-flow graph exceeds {self.budget} nodes")
        if ast_node is not None and not line:
            line = getattr(ast_node, "lineno", 0)
        node = Node(len(self.nodes), kind, ast_node, line, jump=jump)
        self.nodes.append(node)
        return node

    # -------------------------------------------------------------------------- jumps through frames

    def target(self, jump: str, depth: int | None = None) -> Node:
        """Where a ``jump`` that starts inside ``self.frames[:depth]`` lands."""
        if depth is None:
            depth = len(self.frames)
        for i in range(depth - 1, -1, -1):
            frame = self.frames[i]
            if isinstance(frame, _Function):
                return frame.return_exit if jump == "return" else frame.raise_exit
            if isinstance(frame, _Loop) and jump in ("break", "continue"):
                return frame.break_target if jump == "break" else frame.continue_target
            if isinstance(frame, _TryExcept) and jump == "raise":
                return frame.dispatch
            if isinstance(frame, (_Finally, _With)):
                key = (frame, jump)
                cached = self._jump_cache.get(key)
                if cached is None:
                    cached = self._through(frame, i, jump)
                    self._jump_cache[key] = cached
                return cached
        raise AssertionError("no function frame")  # pragma: no cover

    def _through(self, frame: _Finally | _With, depth: int, jump: str) -> Node:
        """Build the copy of a finally body / with exit that a ``jump`` passes through."""
        saved = self.frames
        self.frames = saved[:depth]
        try:
            if isinstance(frame, _With):
                node = self.new(WITH_EXIT, frame.item, frame.stmt.lineno, jump=jump)
                node.exc = self.target("raise")
                node.add(self.target(jump))
                return node
            entry = self.new(JOIN, line=frame.body[0].lineno)
            end = self.block(frame.body, entry)
            if end is not None:
                end.add(self.target(jump))
            return entry
        finally:
            self.frames = saved

    def exc_target(self) -> Node:
        return self.target("raise")

    # -------------------------------------------------------------------------- statements

    def block(self, stmts: Iterable[ast.stmt], current: Node | None) -> Node | None:
        """Build ``stmts`` after ``current``; return the node where control falls through (or None)."""
        for stmt in stmts:
            if current is None:
                # unreachable code after return/raise/break/continue: still build it (it may hold
                # acquisitions) from a detached start so its nodes exist, but nothing flows in.
                current = self.new(JOIN, line=stmt.lineno)
            current = self.stmt(stmt, current)
        return current

    def simple(self, stmt: ast.AST, current: Node, kind: str = STMT) -> Node:
        node = self.new(kind, stmt)
        current.add(node)
        if may_raise(stmt, self.yield_raises) and not is_release_statement(stmt, self.quiet_calls):
            node.exc = self.exc_target()
        return node

    def stmt(self, stmt: ast.stmt, current: Node) -> Node | None:
        method = getattr(self, "stmt_" + type(stmt).__name__, None)
        if method is not None:
            return method(stmt, current)  # type: ignore[no-any-return]
        return self.simple(stmt, current)

    def stmt_Return(self, stmt: ast.Return, current: Node) -> None:
        node = self.simple(stmt, current)
        node.jump = "return"
        node.add(self.target("return"))
        return None

    def stmt_Raise(self, stmt: ast.Raise, current: Node) -> None:
        node = self.new(STMT, stmt, jump="raise")
        current.add(node)
        node.exc = self.exc_target()
        return None

    def stmt_Break(self, stmt: ast.Break, current: Node) -> None:
        node = self.new(STMT, stmt, jump="break")
        current.add(node)
        node.add(self.target("break"))
        return None

    def stmt_Continue(self, stmt: ast.Continue, current: Node) -> None:
        node = self.new(STMT, stmt, jump="continue")
        current.add(node)
        node.add(self.target("continue"))
        return None

    def stmt_If(self, stmt: ast.If, current: Node) -> Node | None:
        test = self.simple(stmt, current, TEST)
        after = self.new(JOIN, line=stmt.lineno)
        truth = constant_truth(stmt.test)
        if truth is not False:
            body_start = self.new(JOIN, line=stmt.body[0].lineno)
            test.add(body_start, True)
            end = self.block(stmt.body, body_start)
            if end is not None:
                end.add(after)
        if truth is not True:
            else_start = self.new(JOIN, line=stmt.orelse[0].lineno if stmt.orelse else stmt.lineno)
            test.add(else_start, False)
            end = self.block(stmt.orelse, else_start)
            if end is not None:
                end.add(after)
        return after

    def stmt_While(self, stmt: ast.While, current: Node) -> Node | None:
        test = self.simple(stmt, current, TEST)
        after = self.new(JOIN, line=stmt.lineno)
        truth = constant_truth(stmt.test)
        self.frames.append(_Loop(after, test))
        body_start = self.new(JOIN, line=stmt.body[0].lineno)
        if truth is not False:
            test.add(body_start, True)
        end = self.block(stmt.body, body_start)
        if end is not None:
            end.add(test)
        self.frames.pop()
        if truth is not True:
            else_start = self.new(JOIN, line=stmt.lineno)
            test.add(else_start, False)
            end = self.block(stmt.orelse, else_start)
            if end is not None:
                end.add(after)
        return after

    def stmt_For(self, stmt: ast.For | ast.AsyncFor, current: Node) -> Node | None:
        header = self.new(FOR, stmt)
        current.add(header)
        header.exc = self.exc_target()
        after = self.new(JOIN, line=stmt.lineno)
        self.frames.append(_Loop(after, header))
        body_start = self.new(JOIN, line=stmt.body[0].lineno)
        header.add(body_start, True)
        end = self.block(stmt.body, body_start)
        if end is not None:
            end.add(header)
        self.frames.pop()
        else_start = self.new(JOIN, line=stmt.lineno)
        header.add(else_start, False)
        end = self.block(stmt.orelse, else_start)
        if end is not None:
            end.add(after)
        return after

    stmt_AsyncFor = stmt_For

    def stmt_With(self, stmt: ast.With | ast.AsyncWith, current: Node) -> Node | None:
        depth = len(self.frames)
        node: Node | None = current
        for item in stmt.items:
            enter = self.new(WITH_ENTER, item, stmt.lineno)
            assert node is not None
            node.add(enter)
            enter.exc = self.exc_target()
            self.frames.append(_With(item, stmt))
            node = enter
        end = self.block(stmt.body, node)
        # leave the items innermost first on fall-through
        for item in reversed(stmt.items):
            frame = self.frames.pop()
            assert isinstance(frame, _With) and frame.item is item
            if end is not None:
                exit_node = self.new(WITH_EXIT, item, stmt.lineno, jump="normal")
                end.add(exit_node)
                exit_node.exc = self.exc_target()
                end = exit_node
        assert len(self.frames) == depth
        return end

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, stmt: ast.Try, current: Node) -> Node | None:
        after = self.new(JOIN, line=stmt.lineno)
        final: _Finally | None = _Finally(stmt.finalbody) if stmt.finalbody else None
        if final is not None:
            self.frames.append(final)
        dispatch: Node | None = None
        if stmt.handlers:
            dispatch = self.new(DISPATCH, stmt, stmt.lineno)
            self.frames.append(_TryExcept(dispatch))
        body_start = self.new(JOIN, line=stmt.lineno)
        current.add(body_start)
        end = self.block(stmt.body, body_start)
        if dispatch is not None:
            self.frames.pop()
        # else runs after the body completes normally, outside the handlers' protection
        end = self.block(stmt.orelse, end) if end is not None else None
        ends: list[Node] = [end] if end is not None else []
        if dispatch is not None:
            catch_all = False
            for handler in stmt.handlers:
                h = self.new(HANDLER, handler)
                dispatch.add(h)
                h_end = self.block(handler.body, h)
                if h_end is not None:
                    ends.append(h_end)
                catch_all = catch_all or catches_everything(handler)
            if not catch_all:
                dispatch.add(self.exc_target())
        if final is not None:
            self.frames.pop()
            if ends:
                f_entry = self.new(JOIN, line=stmt.finalbody[0].lineno)
                for e in ends:
                    e.add(f_entry)
                f_end = self.block(stmt.finalbody, f_entry)
                if f_end is None:
                    return None
                f_end.add(after)
                return after
            return None
        for e in ends:
            e.add(after)
        return after if ends else None

    stmt_TryStar = stmt_Try

    def stmt_Match(self, stmt: ast.AST, current: Node) -> Node | None:
        subject = self.simple(stmt, current, MATCH)
        after = self.new(JOIN, line=stmt.lineno)  # type: ignore[attr-defined]
        irrefutable = False
        for case in stmt.cases:  # type: ignore[attr-defined]
            c = self.new(CASE, case, case.pattern.lineno)
            subject.add(c)
            end = self.block(case.body, c)
            if end is not None:
                end.add(after)
            if case.guard is None and _irrefutable(case.pattern):
                irrefutable = True
        if not irrefutable:
            subject.add(after)
        return after

    # nested scopes are single statements here; their bodies are separate graphs
    def stmt_FunctionDef(self, stmt: ast.AST, current: Node) -> Node:
        return self.simple(stmt, current)

    stmt_AsyncFunctionDef = stmt_FunctionDef
    stmt_ClassDef = stmt_FunctionDef


def _irrefutable(pattern: ast.AST) -> bool:
    name = type(pattern).__name__
    if name == "MatchAs":
        return pattern.pattern is None or _irrefutable(pattern.pattern)  # type: ignore[attr-defined]
    if name == "MatchOr":
        return any(_irrefutable(p) for p in pattern.patterns)  # type: ignore[attr-defined]
    return False


def catches_everything(handler: ast.ExceptHandler) -> bool:
    """Bare ``except:``, ``except BaseException`` and ``except Exception`` (in a tuple too)."""
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for t in types:
        name = t.attr if isinstance(t, ast.Attribute) else t.id if isinstance(t, ast.Name) else None
        if name in ("BaseException", "Exception"):
            return True
    return False


def constant_truth(test: ast.expr) -> bool | None:
    if isinstance(test, ast.Constant):
        return bool(test.value)
    return None


# ---------------------------------------------------------------------------------------------- may-raise

_RAISING = (ast.Call, ast.Await, ast.Attribute, ast.Subscript, ast.Yield, ast.YieldFrom)
_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def header_parts(node: ast.AST) -> Iterator[ast.AST]:
    """The expressions a statement or header evaluates itself (not its nested blocks)."""
    if isinstance(node, (ast.If, ast.While)):
        yield node.test
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        yield node.iter
        yield node.target
    elif isinstance(node, ast.withitem):
        yield node.context_expr
        if node.optional_vars is not None:
            yield node.optional_vars
    elif isinstance(node, ast.ExceptHandler):
        if node.type is not None:
            yield node.type
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield from node.decorator_list
        if not isinstance(node, ast.ClassDef):
            yield from node.args.defaults
            yield from (d for d in node.args.kw_defaults if d is not None)
        else:
            yield from node.bases
            yield from (k.value for k in node.keywords)
    elif type(node).__name__ == "Match":
        yield node.subject  # type: ignore[attr-defined]
    elif type(node).__name__ == "match_case":
        yield node.pattern  # type: ignore[attr-defined]
        if node.guard is not None:  # type: ignore[attr-defined]
            yield node.guard  # type: ignore[attr-defined]
    else:
        yield node


walk_expr = astwalk.walk_expr


def may_raise(node: ast.AST, yield_raises: bool = True) -> bool:
    """Can executing this statement (or header) raise? Calls, awaits, attribute and subscript access,
    ``raise``, ``assert``, ``import``, iteration and ``yield`` (the consumer may throw into or close
    the generator) can; a pytest yield fixture is always resumed normally, so there ``yield`` cannot."""
    if isinstance(node, (ast.Raise, ast.Assert, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, (ast.For, ast.AsyncFor, ast.withitem)):
        return True
    if isinstance(node, (ast.If, ast.While)):
        test = node.test
        while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test = test.operand
        while isinstance(test, ast.Attribute):
            test = test.value
        if isinstance(test, ast.Name):
            return False  # "if self.owns_conn:", "if not flag:": reading a flag does not raise
    for part in header_parts(node):
        for sub in walk_expr(part):
            if isinstance(sub, _RAISING):
                if not yield_raises and isinstance(sub, (ast.Yield, ast.YieldFrom)):
                    continue
                return True
    return False


# ---------------------------------------------------------------------------------------------- entry point

DEFAULT_BUDGET = 200_000


def is_release_statement(stmt: ast.AST, quiet_calls: frozenset[str]) -> bool:
    """``x.close()``, ``await x.close()``, ``pool.putconn(x)``: a statement that only releases
    something. Cleanup code is written as a sequence of these (close the cursor, then the
    connection); counting each as a place where the next one may be skipped would flag every
    correct ``finally`` block, so they are treated as not raising."""
    if not quiet_calls or not isinstance(stmt, ast.Expr):
        return False
    call = stmt.value.value if isinstance(stmt.value, ast.Await) else stmt.value
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in quiet_calls
        and isinstance(call.func.value, (ast.Name, ast.Attribute))
        and all(isinstance(a, (ast.Name, ast.Constant)) for a in call.args)
        and not call.keywords
    )


def build(func: FunctionNode, budget: int = DEFAULT_BUDGET, yield_raises: bool = True,
          quiet_calls: frozenset[str] = frozenset()) -> Graph:
    """Build the graph of one function (or module) body."""
    b = _Builder(budget, yield_raises, quiet_calls)
    entry = b.new(ENTRY, func, getattr(func, "lineno", 1))
    return_exit = b.new(RETURN_EXIT, line=getattr(func, "end_lineno", 0) or 0)
    raise_exit = b.new(RAISE_EXIT, line=getattr(func, "end_lineno", 0) or 0)
    b.frames.append(_Function(return_exit, raise_exit))
    if isinstance(func, ast.Lambda):
        body: list[ast.stmt] = [ast.Return(value=func.body, lineno=func.lineno, col_offset=func.col_offset)]
    else:
        body = func.body
    end = b.block(body, entry)
    if end is not None:
        fall = b.new(FALL_OFF, line=getattr(func, "end_lineno", 0) or (body[-1].lineno if body else 1))
        fall.jump = "return"
        end.add(fall)
        fall.add(b.target("return"))
    return Graph(entry, return_exit, raise_exit, b.nodes)
