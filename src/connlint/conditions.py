"""Branch conditions that hold their value through a function.

``if own: conn = connect()`` ... ``if own: conn.close()``: on the path where the second test is
false, the first was false too, so nothing was acquired. A condition counts when it is a name or an
attribute chain (``self.owns_conn``), possibly negated, that the function never assigns; an
acquisition inside ``if C:`` is then known not to have happened on the ``not C`` side of any later
test of ``C``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from connlint import astwalk
from connlint.resolve import dotted

Condition = tuple[str, bool]  # (the tested expression, the branch taken)


def condition_key(test: ast.expr) -> tuple[str, bool] | None:
    """("own", True) for ``if own:``, ("self.x", False) for ``if not self.x:``; None otherwise."""
    polarity = True
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, polarity = test.operand, not polarity
    name = dotted(test) if isinstance(test, (ast.Name, ast.Attribute)) else None
    return (name, polarity) if name is not None else None


def _assigned(func: ast.AST) -> dict[str, list[int]]:
    """Dotted names the function assigns, with the lines of the assignments."""
    names: dict[str, list[int]] = {}
    for node in astwalk.walk(func):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = [node.optional_vars]
        for target in targets:
            for sub in astwalk.walk(target):
                name = dotted(sub) if isinstance(sub, (ast.Name, ast.Attribute)) else None
                if name is not None:
                    names.setdefault(name, []).append(getattr(node, "lineno", 0))
    return names


def enclosing_conditions(func: ast.AST) -> dict[int, frozenset[Condition]]:
    """For each call node (by id) inside ``if`` branches on stable conditions: those conditions."""
    assigned = _assigned(func)
    found: dict[int, frozenset[Condition]] = {}

    def stable(key: tuple[str, bool] | None, line: int) -> bool:
        """Assigned, if at all, only before this test (``own = conn is None`` then ``if own:``)."""
        if key is None:
            return False
        parts = key[0].split(".")
        return all(
            assigned_line < line
            for i in range(1, len(parts) + 1)
            for assigned_line in assigned.get(".".join(parts[:i]), ())
        )

    def visit(stmts: list[ast.stmt], conds: frozenset[Condition]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                key = condition_key(stmt.test)
                if stable(key, stmt.lineno):
                    assert key is not None
                    visit(stmt.body, conds | {key})
                    visit(stmt.orelse, conds | {(key[0], not key[1])})
                else:
                    visit(stmt.body, conds)
                    visit(stmt.orelse, conds)
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if conds:
                for node in _own_nodes(stmt):
                    if isinstance(node, ast.Call):
                        found[id(node)] = conds
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, field, None)
                if inner:
                    visit(inner, conds)
            for handler in getattr(stmt, "handlers", ()) or ():
                visit(handler.body, conds)
            for case in getattr(stmt, "cases", ()) or ():
                visit(case.body, conds)

    visit(list(getattr(func, "body", [])), frozenset())
    return found


def _own_nodes(stmt: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a statement's own expressions (not of its nested blocks)."""
    for field, value in ast.iter_fields(stmt):
        if field in ("body", "orelse", "finalbody", "handlers", "cases"):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, ast.AST):
                yield from astwalk.walk(item)
