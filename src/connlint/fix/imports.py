"""Where ``closing`` comes from: an existing import, or one added in the file's own style, placed where
isort would put it, without duplicating an import or shadowing a name the module already uses."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Union

import libcst as cst

from connlint.fix.safety import NoSafeFix, Tree, dotted_name

Body = list[Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]]
_FALLBACK_STDLIB = frozenset({
    "abc", "argparse", "asyncio", "atexit", "base64", "collections", "contextlib", "csv", "dataclasses",
    "datetime", "decimal", "enum", "functools", "glob", "hashlib", "io", "itertools", "json", "logging",
    "math", "os", "pathlib", "pickle", "random", "re", "shutil", "signal", "socket", "sqlite3", "string",
    "subprocess", "sys", "tempfile", "threading", "time", "traceback", "typing", "unittest", "urllib",
    "uuid", "warnings", "weakref",
})
STDLIB = frozenset(getattr(sys, "stdlib_module_names", _FALLBACK_STDLIB))


@dataclass(frozen=True)
class Closing:
    """How the fixed code spells ``contextlib.closing`` and which import, if any, must be added."""

    spelling: str  # "closing", "contextlib.closing", "cl.closing"
    add: str | None = None  # None, "from" (from contextlib import closing) or "import" (import contextlib)

    def expression(self) -> cst.BaseExpression:
        return cst.parse_expression(self.spelling)


def resolve_closing(tree: Tree) -> Closing:
    """Use an existing module-level import of ``closing``/``contextlib`` if its name means only that;
    else choose the import the file's style suggests, with a name nothing in the module uses."""
    module = tree.module
    from_count = import_count = 0
    has_from_contextlib = False
    star = False
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom):
                name = _from_module(small)
                if name == "__future__":
                    continue
                from_count += 1
                if isinstance(small.names, cst.ImportStar):
                    star = True
                    continue
                if name == "contextlib":
                    has_from_contextlib = True
                    for alias in small.names:
                        if dotted_name(alias.name) == "closing":
                            bound = _bound(alias) or "closing"
                            if _bound_once(tree, bound):
                                return Closing(bound)
            elif isinstance(small, cst.Import):
                import_count += 1
                for alias in small.names:
                    if dotted_name(alias.name) == "contextlib":
                        bound = _bound(alias) or "contextlib"
                        if _bound_once(tree, bound):
                            return Closing(f"{bound}.closing")
    if star:
        raise NoSafeFix("a star import may already define 'closing' or 'contextlib'")
    prefer_from = has_from_contextlib or from_count >= import_count
    options = [("closing", "from"), ("contextlib.closing", "import")]
    if not prefer_from:
        options.reverse()
    for spelling, kind in options:
        if _unused(tree, spelling.split(".", 1)[0]):
            return Closing(spelling, kind)
    raise NoSafeFix("the names 'closing' and 'contextlib' are both used for something else")


def _from_module(node: cst.ImportFrom) -> str | None:
    if node.relative or node.module is None:
        return None
    return dotted_name(node.module)


def _bound(alias: cst.ImportAlias) -> str | None:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return None


def _bound_once(tree: Tree, name: str) -> bool:
    """Only one binding of ``name`` in the whole module (the import itself)."""
    count = sum(len(scope.assignments[name]) for scope in tree.all_scopes())
    return count == 1


def _unused(tree: Tree, name: str) -> bool:
    if name not in tree.text:
        return True  # no need to resolve the scopes of the whole file
    return all(not scope.assignments[name] and not scope.accesses[name] for scope in tree.all_scopes())


# ---------------------------------------------------------------------------------------------- adding


def add_import(module: cst.Module, kind: str) -> cst.Module:
    """Add ``from contextlib import closing`` (merged into an existing ``from contextlib import``) or
    ``import contextlib``, in the first import group that holds standard-library modules."""
    body: Body = list(module.body)
    if kind == "from":
        for i, stmt in enumerate(body):
            merged = _merge_into(stmt)
            if merged is not None:
                body[i] = merged
                return module.with_changes(body=body)
    text = "from contextlib import closing\n" if kind == "from" else "import contextlib\n"
    new = cst.parse_statement(text)
    assert isinstance(new, cst.SimpleStatementLine)
    start = _first_code_statement(body)
    imports: list[int] = []
    for i in range(start, len(body)):
        if not _is_import_line(body[i]):
            break
        imports.append(i)
    plain = [i for i in imports if not _is_future(body[i])]
    if not plain:
        at = imports[-1] + 1 if imports else start
        blank = [cst.EmptyLine()] if at > 0 else []
        body.insert(at, new.with_changes(leading_lines=blank))
        return module.with_changes(body=body)
    groups = _groups(body, plain)
    group = next((g for g in groups if any(_top_module(body[i]) in STDLIB for i in g)), None)
    if group is None:
        first = plain[0]
        body[first] = body[first].with_changes(leading_lines=[cst.EmptyLine()])
        body.insert(first, new.with_changes(leading_lines=module.body[first].leading_lines))
        return module.with_changes(body=body)
    want = cst.ImportFrom if kind == "from" else cst.Import
    same = [i for i in group if isinstance(_only(body[i]), want)]
    keys = [(_sort_key(body[i])) for i in same]
    if same:
        if keys == sorted(keys):
            after = [i for i, key in zip(same, keys) if key > "contextlib"]
            if after:
                return module.with_changes(body=_insert_before(body, after[0], new))
        return module.with_changes(body=_insert_after(body, same[-1], new))
    if kind == "import":
        return module.with_changes(body=_insert_before(body, group[0], new))
    return module.with_changes(body=_insert_after(body, group[-1], new))


def _merge_into(stmt: cst.BaseStatement) -> cst.SimpleStatementLine | None:
    """``from contextlib import a, b`` -> with ``closing`` in sorted place, keeping the layout."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    node = stmt.body[0]
    if not isinstance(node, cst.ImportFrom) or _from_module(node) != "contextlib":
        return None
    if isinstance(node.names, cst.ImportStar):
        return None
    aliases = list(node.names)
    names = [dotted_name(a.name) or "" for a in aliases]
    at = len(aliases)
    if names == sorted(names, key=str.lower):
        at = next((i for i, n in enumerate(names) if n.lower() > "closing"), len(aliases))
    separator = aliases[0].comma if (len(aliases) > 1 or isinstance(aliases[0].comma, cst.Comma)) else None
    if not isinstance(separator, cst.Comma):
        separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    new = cst.ImportAlias(name=cst.Name("closing"))
    if at < len(aliases):
        aliases.insert(at, new.with_changes(comma=separator))
    else:
        last = aliases[-1]
        aliases[-1] = last.with_changes(comma=separator)
        aliases.append(new.with_changes(comma=last.comma))
    return stmt.with_changes(body=[node.with_changes(names=aliases)])


def _first_code_statement(body: Body) -> int:
    if body and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1:
        first = body[0].body[0]
        docstring = (cst.SimpleString, cst.ConcatenatedString)
        if isinstance(first, cst.Expr) and isinstance(first.value, docstring):
            return 1
    return 0


def _is_import_line(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _only(stmt: cst.BaseStatement) -> cst.BaseSmallStatement | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        return stmt.body[0]
    return None


def _is_future(stmt: cst.BaseStatement) -> bool:
    node = _only(stmt)
    return isinstance(node, cst.ImportFrom) and _from_module(node) == "__future__"


def _sort_key(stmt: cst.BaseStatement) -> str:
    node = _only(stmt)
    if isinstance(node, cst.Import):
        return (dotted_name(node.names[0].name) or "").lower()
    if isinstance(node, cst.ImportFrom):
        return (_from_module(node) or "").lower()
    return ""


def _top_module(stmt: cst.BaseStatement) -> str:
    return _sort_key(stmt).split(".", 1)[0]


def _groups(body: Body, indexes: list[int]) -> list[list[int]]:
    """Runs of import lines not separated by blank lines or comment lines."""
    groups: list[list[int]] = []
    for i in indexes:
        starts = not groups or groups[-1][-1] != i - 1 or len(body[i].leading_lines) > 0
        if starts:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def _insert_before(body: Body, at: int, new: cst.SimpleStatementLine) -> Body:
    out = list(body)
    out[at] = body[at].with_changes(leading_lines=())
    out.insert(at, new.with_changes(leading_lines=body[at].leading_lines))
    return out


def _insert_after(body: Body, at: int, new: cst.SimpleStatementLine) -> Body:
    out = list(body)
    out.insert(at + 1, new.with_changes(leading_lines=()))
    return out


__all__ = ["Closing", "add_import", "resolve_closing"]
