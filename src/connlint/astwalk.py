"""Tree walks for the analysis: the child nodes that can matter, without ``ast``'s generators.

``ast.iter_child_nodes`` goes through ``ast.iter_fields``: two generator frames and a ``getattr`` of
every field for every node, and it yields the ``Load()``/``Store()`` context and operator singletons
too. The analysis never looks at those as nodes (it reads ``node.ctx`` and ``node.op`` directly), so
the walks here leave them out and read each node type's child fields from a table built once per type.
Over a large function this halves the time of a full walk.
"""

from __future__ import annotations

import ast
from collections import deque

# fields whose values are never nodes the analysis visits: contexts, operators, names, constants
_NOT_CHILDREN = frozenset({
    "ctx", "op", "ops", "id", "attr", "name", "arg", "module", "level", "kind", "is_async", "conversion",
    "simple", "type_comment", "tag", "lineno", "col_offset", "end_lineno", "end_col_offset",
})
_FIELDS: dict[type, tuple[str, ...]] = {}
_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _fields(cls: type) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        fields: tuple[str, ...] = getattr(cls, "_fields", ())
        if cls is ast.Constant or (hasattr(ast, "MatchSingleton") and cls.__name__ == "MatchSingleton"):
            fields = ()  # 'value' is a Python constant, not a node
        found = _FIELDS[cls] = tuple(f for f in fields if f not in _NOT_CHILDREN)
    return found


def children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node`` in field order, as ``ast.iter_child_nodes`` (without contexts and
    operators)."""
    out: list[ast.AST] = []
    for name in _fields(type(node)):
        value = getattr(node, name, None)
        if value is None:
            continue
        if type(value) is list:
            for item in value:
                if isinstance(item, ast.AST):
                    out.append(item)
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def walk(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` (itself included), breadth first, as ``ast.walk``."""
    out: list[ast.AST] = []
    todo = deque((node,))
    while todo:
        n = todo.popleft()
        out.append(n)
        todo.extend(children(n))
    return out


def walk_scope(scope: ast.AST) -> list[ast.AST]:
    """Every node of a function (or module) body, without entering nested scopes: the nested
    function, lambda or class node itself is included, its body is not. Depth first, last child
    first."""
    out: list[ast.AST] = []
    stack = children(scope)
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, _NESTED_SCOPES):
            stack.extend(children(node))
    return out


def walk_expr(node: ast.AST) -> list[ast.AST]:
    """Every node of ``node`` (itself included) without entering nested function, lambda or class
    bodies (the nested node is not included either). Depth first, last child first."""
    out: list[ast.AST] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        for child in children(n):
            if not isinstance(child, _NESTED_SCOPES):
                stack.append(child)
    return out
