"""The fix forms: which one a shape gets (and whether it is safe), and one function per form that builds
the statements replacing ``owner.body[start:stop]``.

Every builder reuses the original nodes (the acquiring call, the block's statements, the existing close),
so comments and formatting inside them are kept; LibCST re-indents the statements it moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import libcst as cst

from connlint.fix import SAFE, UNSAFE
from connlint.fix.safety import NoSafeFix, Shape, dotted_name, pool_expression

Statements = list[cst.BaseStatement]


@dataclass(frozen=True)
class Plan:
    """A shape with its chosen form."""

    shape: Shape
    form: str  # a key of BUILDERS
    applicability: str  # SAFE or UNSAFE

    @property
    def needs_closing(self) -> bool:
        return self.form in ("closing", "closing-transaction")


class NeedsUnsafe(NoSafeFix):
    """Only a fix that may change behaviour exists; it is applied with ``--unsafe-fixes``."""

    def __init__(self, plan: Plan, reason: str) -> None:
        super().__init__(reason)
        self.plan = plan


def choose(shape: Shape, unsafe: bool) -> Plan:
    """The form for this shape. Raises ``NoSafeFix`` (or ``NeedsUnsafe`` without ``--unsafe-fixes``)."""
    api = shape.api
    if shape.via_with:
        if api.is_pool_checkout:
            if not api.pool_release:
                raise NoSafeFix(f"{api.api}() has no pool method that returns the connection")
            return _gate(Plan(shape, "pool-with", SAFE), unsafe)
        if api.context_manager != "transaction-only":
            raise NoSafeFix(f"'with {api.api}()' already closes it")
        return _gate(Plan(shape, "closing-transaction", SAFE), unsafe)
    fix, cm = api.fix, api.context_manager
    idiomatic: str
    fallback: str | None = None
    if fix == "with":
        if cm not in ("closes", "commits-then-closes", "returns-to-pool"):
            raise NoSafeFix(f"the catalog's 'with' fix does not fit a context manager that {cm}")
        idiomatic = "with"
        if cm == "commits-then-closes" and not shape.commits_on_every_path:
            fallback = "closing"
    elif fix == "closing":
        idiomatic = "closing"
    elif fix in ("async-with", "async-with-await"):
        if not shape.async_function:
            raise NoSafeFix("'async with' needs an async function")
        if fix == "async-with-await" and not shape.awaited:
            raise NoSafeFix(f"{api.api}() is a coroutine but its result is not awaited")
        idiomatic = fix
        if cm == "commits-then-closes" and not shape.commits_on_every_path:
            fallback = "try-finally"
    elif fix in ("try-finally", "pool-try-finally"):
        if api.release_awaited and not shape.async_function:
            raise NoSafeFix("'await' of the close needs an async function")
        idiomatic = fix
    else:
        raise NoSafeFix(f"the catalog has no fix form for {api.api}()")
    if shape.awaited and idiomatic in ("with", "closing"):
        raise NoSafeFix("an awaited acquisition cannot become a plain 'with'")
    base = UNSAFE if shape.fixture_return else SAFE
    if fallback is not None:
        # plain ``with`` also commits on success, which the code did not do on every path
        if unsafe:
            return Plan(shape, idiomatic, UNSAFE)
        return _gate(Plan(shape, fallback, base), unsafe)
    return _gate(Plan(shape, idiomatic, base), unsafe)


def _gate(plan: Plan, unsafe: bool) -> Plan:
    if plan.applicability == UNSAFE and not unsafe:
        raise NeedsUnsafe(plan, f"an unsafe fix is available with --unsafe-fixes ({describe(plan, None)})")
    return plan


# ---------------------------------------------------------------------------------------------- building


@dataclass
class Rewrite:
    """The new statements for ``owner.body[start:stop]``, and comments that go after them."""

    start: int
    stop: int
    statements: Statements
    carried: list[cst.EmptyLine]


Builder = Callable[[Plan, Sequence[cst.BaseStatement], cst.BaseExpression], Rewrite]


def build(plan: Plan, updated: Sequence[cst.BaseStatement], closing: cst.BaseExpression | None) -> Rewrite:
    """Rewrite ``updated`` (the owner's statements after inner edits) for this plan."""
    builder = BUILDERS[plan.form]
    return builder(plan, updated, closing if closing is not None else cst.Name("closing"))


def with_form(plan: Plan, updated: Sequence[cst.BaseStatement], closing: cst.BaseExpression) -> Rewrite:
    """``var = f(...)`` + block + ``var.close()`` -> ``with f(...) as var:`` + block."""
    return _with(plan, updated, realign(plan.shape, "with "), asynchronous=False)


def closing_form(plan: Plan, updated: Sequence[cst.BaseStatement], closing: cst.BaseExpression) -> Rewrite:
    """-> ``with closing(f(...)) as var:`` (the driver's ``with`` does not close)."""
    call = realign(plan.shape, f"with {_code(closing)}(")
    return _with(plan, updated, cst.Call(func=closing, args=[cst.Arg(value=call)]), asynchronous=False)


def async_with_form(plan: Plan, updated: Sequence[cst.BaseStatement], closing: cst.BaseExpression) -> Rewrite:
    """``var = await f(...)`` -> ``async with f(...) as var:`` (an awaitable that is an async CM)."""
    return _with(plan, updated, realign(plan.shape, "async with "), asynchronous=True)


def async_with_await_form(plan: Plan, updated: Sequence[cst.BaseStatement],
                          closing: cst.BaseExpression) -> Rewrite:
    """``var = await f(...)`` -> ``async with await f(...) as var:`` (a coroutine whose result is an
    async CM)."""
    call = realign(plan.shape, "async with await ")
    return _with(plan, updated, cst.Await(expression=call), asynchronous=True)


def try_finally_form(plan: Plan, updated: Sequence[cst.BaseStatement],
                     closing: cst.BaseExpression) -> Rewrite:
    """Keep the acquisition; put the block in ``try:`` and the close in ``finally:``."""
    release = _moved_release(plan, updated) or _statement(_release_call(plan))
    return _try(plan, updated, release)


def pool_try_finally_form(plan: Plan, updated: Sequence[cst.BaseStatement],
                          closing: cst.BaseExpression) -> Rewrite:
    """Keep ``var = pool.getconn()``; put the block in ``try:`` and ``pool.putconn(var)`` in ``finally:``."""
    release = _moved_release(plan, updated) or _statement(_pool_release_call(plan))
    return _try(plan, updated, release)


def closing_transaction_form(plan: Plan, updated: Sequence[cst.BaseStatement],
                             closing: cst.BaseExpression) -> Rewrite:
    """``with f(...) as var:`` (transaction only) -> ``with closing(f(...)) as var, var:``: the commit on
    success is kept (``closing`` alone would drop it) and the connection is closed."""
    shape = plan.shape
    stmt = updated[shape.index]
    assert isinstance(stmt, cst.With) and shape.with_item is not None
    items = list(stmt.items)
    item = items[shape.with_item]
    call = realign(shape, " " * shape.call_offset + f"{_code(closing)}(")
    first = item.with_changes(
        item=cst.Call(func=closing, args=[cst.Arg(value=call)]),
        comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
    )
    second = cst.WithItem(item=cst.Name(shape.var), comma=item.comma)
    items[shape.with_item:shape.with_item + 1] = [first, second]
    return Rewrite(shape.index, shape.index + 1, [stmt.with_changes(items=items)], [])


def pool_with_form(plan: Plan, updated: Sequence[cst.BaseStatement], closing: cst.BaseExpression) -> Rewrite:
    """``with pool.getconn() as var:`` -> ``var = pool.getconn()`` + ``try: with var: ... finally:
    pool.putconn(var)`` (the connection's own ``with`` ends the transaction, the pool gets it back)."""
    shape = plan.shape
    stmt = updated[shape.index]
    assert isinstance(stmt, cst.With) and shape.with_item is not None
    items = list(stmt.items)
    item = items[shape.with_item]
    acquire = cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(target=cst.Name(shape.var))], value=item.item)],
        leading_lines=stmt.leading_lines,
    )
    items[shape.with_item] = cst.WithItem(item=cst.Name(shape.var), comma=item.comma)
    inner = stmt.with_changes(items=items, leading_lines=())
    guarded = cst.Try(
        body=cst.IndentedBlock(body=[inner]),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=[_statement(_pool_release_call(plan))])),
    )
    return Rewrite(shape.index, shape.index + 1, [acquire, guarded], [])


BUILDERS: dict[str, Builder] = {
    "with": with_form,
    "closing": closing_form,
    "async-with": async_with_form,
    "async-with-await": async_with_await_form,
    "try-finally": try_finally_form,
    "pool-try-finally": pool_try_finally_form,
    "closing-transaction": closing_transaction_form,
    "pool-with": pool_with_form,
}


# ---------------------------------------------------------------------------------------------- pieces


def _with(plan: Plan, updated: Sequence[cst.BaseStatement], item: cst.BaseExpression,
          asynchronous: bool) -> Rewrite:
    shape = plan.shape
    acquire = updated[shape.index]
    assert isinstance(acquire, cst.SimpleStatementLine)
    block = _block(plan, updated)
    if block and not any(e.comment for e in leading(block[0])):
        block[0] = block[0].with_changes(leading_lines=())
    stmt = cst.With(
        items=[cst.WithItem(item=item, asname=cst.AsName(name=cst.Name(shape.var)))],
        body=cst.IndentedBlock(body=block or [cst.SimpleStatementLine(body=[cst.Pass()])],
                               header=acquire.trailing_whitespace),
        asynchronous=cst.Asynchronous() if asynchronous else None,
        leading_lines=acquire.leading_lines,
    )
    carried: list[cst.EmptyLine] = []
    if shape.release is not None:
        carried = _comments_of(updated[shape.release])
    return Rewrite(shape.index, shape.stop, [stmt], carried)


def _try(plan: Plan, updated: Sequence[cst.BaseStatement], release: cst.SimpleStatementLine) -> Rewrite:
    shape = plan.shape
    block = _block(plan, updated)
    if not block:
        return Rewrite(shape.index + 1, shape.stop, [release.with_changes(leading_lines=())], [])
    above: Sequence[cst.EmptyLine] = ()
    if not any(e.comment for e in leading(block[0])):
        above = leading(block[0])
        block[0] = block[0].with_changes(leading_lines=())
    guarded = cst.Try(
        body=cst.IndentedBlock(body=block),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=[release])),
        leading_lines=above,
    )
    return Rewrite(shape.index + 1, shape.stop, [guarded], [])


def _block(plan: Plan, updated: Sequence[cst.BaseStatement]) -> Statements:
    """The statements that go inside: closes before a return dropped, a final ``finally`` close
    removed, a fixture's ``return var`` turned into ``yield var``."""
    shape = plan.shape
    original = shape.owner.body
    block: Statements = []
    pending: list[cst.EmptyLine] = []
    for k in range(shape.index + 1, shape.end + 1):
        stmt = updated[k]
        orig = original[k]
        if isinstance(orig, cst.SimpleStatementLine) and any(s in shape.removals for s in orig.body):
            assert isinstance(stmt, cst.SimpleStatementLine)
            kept = [u for o, u in zip(orig.body, stmt.body) if o not in shape.removals]
            if not kept:
                pending = merge_lines(pending, _comments_of(stmt))
                continue
            stmt = stmt.with_changes(body=_fix_semicolons(kept))
        if pending:
            stmt = stmt.with_changes(leading_lines=merge_lines(pending, leading(stmt)))
            pending = []
        if k == shape.end and shape.finally_release is not None and isinstance(stmt, cst.Try):
            block.extend(_drop_final_close(stmt))
            continue
        if k == shape.end and shape.fixture_return:
            assert isinstance(stmt, cst.SimpleStatementLine)
            stmt = stmt.with_changes(body=[cst.Expr(value=cst.Yield(value=cst.Name(shape.var)))])
        block.append(stmt)
    return block


def _drop_final_close(stmt: cst.Try) -> Statements:
    assert stmt.finalbody is not None and isinstance(stmt.finalbody.body, cst.IndentedBlock)
    rest = list(stmt.finalbody.body.body[:-1])
    if rest:
        return [stmt.with_changes(finalbody=stmt.finalbody.with_changes(
            body=stmt.finalbody.body.with_changes(body=rest)))]
    if stmt.handlers:
        return [stmt.with_changes(finalbody=None)]
    assert isinstance(stmt.body, cst.IndentedBlock)
    body = list(stmt.body.body)
    if body:
        lines = merge_lines(list(stmt.leading_lines), leading(body[0]))
        body[0] = body[0].with_changes(leading_lines=lines)
    return body


def _fix_semicolons(kept: Sequence[cst.BaseSmallStatement]) -> list[cst.BaseSmallStatement]:
    if not kept:
        return []
    last = kept[-1]
    return [*kept[:-1], last.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]


def _moved_release(plan: Plan, updated: Sequence[cst.BaseStatement]) -> cst.SimpleStatementLine | None:
    """The existing trailing close, moved into ``finally`` (awaited when the API's close is a coroutine)."""
    shape = plan.shape
    if shape.release is None:
        return None
    stmt = updated[shape.release]
    assert isinstance(stmt, cst.SimpleStatementLine)
    expr = stmt.body[0]
    assert isinstance(expr, cst.Expr)
    if shape.api.release_awaited and not isinstance(expr.value, cst.Await):
        stmt = stmt.with_changes(body=[expr.with_changes(value=cst.Await(expression=expr.value))])
    return stmt


def _release_call(plan: Plan) -> cst.BaseExpression:
    shape = plan.shape
    method = shape.api.release[0] if shape.api.release else "close"
    call: cst.BaseExpression = cst.Call(func=cst.Attribute(value=cst.Name(shape.var), attr=cst.Name(method)))
    return cst.Await(expression=call) if shape.api.release_awaited else call


def _pool_release_call(plan: Plan) -> cst.BaseExpression:
    shape = plan.shape
    pool = pool_expression(shape.call)
    _check_pool_stable(plan, pool)
    call: cst.BaseExpression = cst.Call(
        func=cst.Attribute(value=pool.deep_clone(), attr=cst.Name(shape.api.pool_release[0])),
        args=[cst.Arg(value=cst.Name(shape.var))],
    )
    return cst.Await(expression=call) if shape.api.release_awaited else call


def _check_pool_stable(plan: Plan, pool: cst.BaseExpression) -> None:
    """The pool name must still mean the same pool in the ``finally``."""
    shape = plan.shape
    text = dotted_name(pool)
    root = text.split(".", 1)[0] if text else None
    for stmt in shape.owner.body[shape.index:shape.stop]:
        for node in _walk(stmt):
            targets: list[cst.CSTNode] = []
            if isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.For)):
                targets = [node.target]
            elif isinstance(node, cst.WithItem) and node.asname is not None:
                targets = [node.asname.name]
            for target in targets:
                name = dotted_name(target) if isinstance(target, (cst.Name, cst.Attribute)) else None
                if name is not None and name in (text, root):
                    raise NoSafeFix(f"the pool '{text}' is rebound inside the block")


def _walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(current.children)
    return out


def leading(stmt: cst.BaseStatement) -> list[cst.EmptyLine]:
    """A statement's own-line comments and blank lines above it (every statement kind has them)."""
    return list(getattr(stmt, "leading_lines", ()))


def _statement(expr: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[cst.Expr(value=expr)])


def _comments_of(stmt: cst.BaseStatement) -> list[cst.EmptyLine]:
    """A removed statement's own-line comments and blank lines, plus its end-of-line comment."""
    lines = leading(stmt)
    if isinstance(stmt, cst.SimpleStatementLine) and stmt.trailing_whitespace.comment is not None:
        lines.append(cst.EmptyLine(indent=True, comment=stmt.trailing_whitespace.comment))
    return lines


def merge_lines(first: Sequence[cst.EmptyLine], second: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """``first`` then ``second``, with runs of blank lines no longer than the longest run in either."""
    longest = max(_longest_blank_run(first), _longest_blank_run(second))
    out: list[cst.EmptyLine] = []
    run = 0
    for line in [*first, *second]:
        if line.comment is None:
            run += 1
            if run > longest:
                continue
        else:
            run = 0
        out.append(line)
    return out


def _longest_blank_run(lines: Sequence[cst.EmptyLine]) -> int:
    best = run = 0
    for line in lines:
        run = run + 1 if line.comment is None else 0
        best = max(best, run)
    return best


def realign(shape: Shape, prefix: str) -> cst.Call:
    """The acquiring call, with continuation lines that were aligned to its first line (``f(a,\n  b)``)
    moved along with it when the text before it on its line becomes ``prefix``."""
    call = shape.call
    hanging = isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace)
    if shape.call_offset < 0 or not call.args or hanging:
        return call
    delta = len(prefix) - shape.call_offset
    threshold = shape.call_offset + len(_code(call.func)) + 1  # the column after "(" (from the statement)
    if delta == 0 or "\n" in _code(call.func):
        return call
    shifted = call.visit(_Shift(threshold, delta))
    assert isinstance(shifted, cst.Call)
    return shifted


class _Shift(cst.CSTTransformer):
    def __init__(self, threshold: int, delta: int) -> None:
        super().__init__()
        self.threshold = threshold
        self.delta = delta

    def leave_ParenthesizedWhitespace(
        self, original_node: cst.ParenthesizedWhitespace, updated_node: cst.ParenthesizedWhitespace
    ) -> cst.ParenthesizedWhitespace:
        space = updated_node.last_line.value
        if not updated_node.indent or "\t" in space or len(space) < self.threshold:
            return updated_node
        moved = " " * max(0, len(space) + self.delta)
        return updated_node.with_changes(last_line=cst.SimpleWhitespace(moved))


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


# ---------------------------------------------------------------------------------------------- text


_LABELS = {
    "with": "with {call} as {var}",
    "closing": "with {closing}({call}) as {var}",
    "async-with": "async with {call} as {var}",
    "async-with-await": "async with await {call} as {var}",
    "try-finally": "try/finally: {awaits}{var}.{release}()",
    "pool-try-finally": "try/finally: {awaits}{pool}.{pool_release}({var})",
    "closing-transaction": "with {closing}({call}) as {var}, {var}",
    "pool-with": "try/finally: {pool}.{pool_release}({var}) around 'with {var}'",
}


def describe(plan: Plan, closing: str | None) -> str:
    """A one-line picture of the fix, e.g. ``with closing(sqlite3.connect(...)) as conn``."""
    shape = plan.shape
    api = shape.api
    callee = cst.Module(body=[]).code_for_node(shape.call.func)
    pool = dotted_name(shape.call.func.value) if isinstance(shape.call.func, cst.Attribute) else None
    return _LABELS[plan.form].format(
        call=f"{callee}(...)" if shape.call.args else f"{callee}()",
        var=shape.var,
        closing=closing or "closing",
        awaits="await " if api.release_awaited else "",
        release=api.release[0] if api.release else "close",
        pool=pool or "pool",
        pool_release=api.pool_release[0] if api.pool_release else "putconn",
    )


__all__ = ["BUILDERS", "NeedsUnsafe", "Plan", "Rewrite", "build", "choose", "describe", "merge_lines"]
