"""Parse with LibCST only the functions that hold something to fix, not the whole file.

Parsing a module with LibCST and resolving positions, parents and scopes for it costs about ten times
``ast.parse``; a test module of 4,000 lines with three leaks paid that for all of it. Every question a fix
asks is about the function that acquires the resource (its scope, its blocks, the statements it rewrites),
so each such function is cut out of the text by its ``ast`` line range and parsed alone. Its lines keep
their indentation (a method is wrapped in ``if 1:`` to parse), so columns are the file's and lines differ
by a constant. The rewritten functions are put back in place of their lines; the rest of the file is never
parsed, except to add an import or to check how ``closing`` may be spelled (``full``).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import libcst as cst

from connlint.checker import Finding
from connlint.fix.safety import HELPER_POOL_RELEASES, HELPER_RELEASES, FuncDef, Tree

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_NEWLINE = re.compile(r"\r\n?|\n")  # LibCST's rule for a module's default newline: the first one
_HELPER_WORDS = tuple(sorted({*HELPER_RELEASES, *HELPER_POOL_RELEASES}))


@dataclass(frozen=True)
class Span:
    """Lines ``first``..``last`` (1-based, inclusive) of the file: a function from its first decorator to its
    last statement, and the comment lines after it that its blocks own in a parse of the whole file."""

    first: int
    last: int
    indent: str  # the whitespace before its first line


class Regions:
    """The LibCST trees of the functions (outermost ``def`` of each) that hold the given lines.

    Raises ``cst.ParserSyntaxError`` like ``Tree`` when LibCST cannot parse what it needs. When a function
    cannot be cut out (its line is not a ``def`` the ``ast`` knows, or the cut does not parse alone), the
    whole file is parsed instead, as before."""

    def __init__(self, text: str, module: ast.Module, function_lines: Iterable[int]) -> None:
        self.text = text
        self.module_ast = module
        self.lines: list[str] = _LINE.findall(text)
        self._outermost = _outermost_defs(module)
        self._full: Tree | None = None
        self._trees: dict[Span, Tree] = {}
        self._helpers: list[FuncDef] | None = None
        self._indent: str | None = None
        self._newline: str | None = None
        wanted = sorted({line for line in function_lines})
        spans = [self._outermost.get(line) for line in wanted]
        self.whole_file = any(node is None for node in spans)
        if self.whole_file:
            self._full = Tree(text)
            return
        for node in spans:
            assert node is not None
            span = self.span_of(node)
            if span not in self._trees:
                tree = self._parse(span)
                if tree is None:  # cannot be parsed alone: do what was done before
                    self.whole_file = True
                    self._trees.clear()
                    self._full = Tree(text)
                    return
                self._trees[span] = tree

    # ------------------------------------------------------------------ trees

    @property
    def trees(self) -> list[Tree]:
        return [self._full] if self.whole_file and self._full is not None else list(self._trees.values())

    def tree_for(self, finding: Finding) -> Tree:
        """The tree that holds the finding's function."""
        if self.whole_file:
            return self.full()
        assert finding.leak is not None
        node = self._outermost[finding.leak.function_line]
        return self._trees[self.span_of(node)]

    def full(self) -> Tree:
        """The whole file (metadata resolved when asked for): for the imports of ``closing``."""
        if self._full is None:
            self._full = Tree(self.text, lazy=True)
        return self._full

    def module_functions(self) -> list[FuncDef]:
        """The module-level functions that may release a parameter (``safety.release_helpers`` decides):
        those whose text names a releasing method, each parsed alone."""
        if self._helpers is None:
            if self.whole_file:
                self._helpers = [s for s in self.full().module.body if isinstance(s, cst.FunctionDef)]
                return self._helpers
            helpers: list[FuncDef] = []
            for node in self.module_ast.body:
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                span = self.span_of(node)
                if not any(word in line for line in self.lines[span.first - 1:span.last] for word in _HELPER_WORDS):
                    continue
                tree = self._trees.get(span) or self._parse(span, metadata=False)
                function = _function_of(tree.module, span.indent != "") if tree is not None else None
                if function is None:  # cannot be parsed alone: take them from the whole file
                    helpers = [s for s in self.full().module.body if isinstance(s, cst.FunctionDef)]
                    break
                helpers.append(function)
            self._helpers = helpers
        return self._helpers

    # ------------------------------------------------------------------ rewriting

    def rewrite(self, plans: Sequence[object], tree_of: Callable[[object], Tree | None],
                transform: Callable[[cst.Module, list[object]], cst.Module]) -> str:
        """The file's text with each tree that has plans replaced by ``transform(tree.module, its plans)``."""
        if self.whole_file:
            return transform(self.full().module, list(plans)).code
        by_tree: dict[int, list[object]] = {}
        for plan in plans:
            tree = tree_of(plan)
            assert tree is not None
            by_tree.setdefault(id(tree), []).append(plan)
        edits: list[tuple[Span, str]] = []
        for span, tree in self._trees.items():
            mine = by_tree.get(id(tree))
            if not mine:
                continue
            code = transform(tree.module, mine).code
            header = self._header(span)
            assert code.startswith(header)
            edits.append((span, code[len(header):]))
        lines = list(self.lines)
        for span, code in sorted(edits, key=lambda e: e[0].first, reverse=True):
            lines[span.first - 1:span.last] = [code]
        return "".join(lines)

    def reparse(self, text: str) -> cst.Module:
        """``text`` (this file after a rewrite) as one module. Its first line and first indented block are
        the file's (a rewrite changes neither), so its default indent and newline are the file's too."""
        return cst.parse_module(text)

    # ------------------------------------------------------------------ cutting

    def span_of(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Span:
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno or node.lineno
        line = self.lines[first - 1]
        indent = line[:len(line) - len(line.lstrip(" \t\f"))]
        block = self._block_indent(node)
        if block is not None:
            # LibCST gives a block the comment lines after it up to the last one that starts with the
            # block's indentation (blank or not); they go with the function, the others stay outside
            for number in range(last + 1, len(self.lines) + 1):
                text = self.lines[number - 1]
                stripped = text.strip(" \t\f\r\n")
                if stripped and not stripped.startswith("#"):
                    break
                if text.startswith(block):
                    last = number
        return Span(first, last, indent)

    def _block_indent(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
        """The indentation of the function's body, or None when the body is on the ``def`` line."""
        first = node.body[0]
        line = self.lines[first.lineno - 1]
        before = line.encode("utf-8")[:first.col_offset]
        if before.strip(b" \t\f"):
            return None
        return before.decode("utf-8")

    def _parse(self, span: Span, metadata: bool = True) -> Tree | None:
        """The function alone, or None when the cut does not parse to exactly that function."""
        header = self._header(span)
        text = header + "".join(self.lines[span.first - 1:span.last])
        try:
            module = cst.parse_module(text)
        except cst.ParserSyntaxError:
            return None
        if _function_of(module, span.indent != "") is None:
            return None
        offset = span.first - 1 - header.count(self.default_newline)
        return Tree(text, offset, module=module, lazy=not metadata)

    def _header(self, span: Span) -> str:
        """What goes before the cut: a block whose indentation and newline are the file's first ones, so
        that LibCST detects the file's default indent and newline in the cut too (it writes new blocks and
        lines with them, and stores the lines that have them as "default"); then ``if 1:`` for a function
        that is indented."""
        newline = self.default_newline
        header = f"if 1:{newline}{self.default_indent}pass{newline}"
        return header + f"if 1:{newline}" if span.indent else header

    # ------------------------------------------------------------------ what LibCST would detect in the file

    @property
    def default_newline(self) -> str:
        """The file's first newline (LibCST's default newline), else ``\\n``."""
        if self._newline is None:
            found = _NEWLINE.search(self.text)
            self._newline = found.group(0) if found is not None else "\n"
        return self._newline

    @property
    def default_indent(self) -> str:
        """The indentation of the file's first indented block (LibCST's default indent), else four spaces."""
        if self._indent is None:
            self._indent = "    "
            start = next((s for s in self.module_ast.body if not isinstance(s, _SIMPLE)), None)
            if start is not None:
                first = min([start.lineno, *(d.lineno for d in getattr(start, "decorator_list", ()))])
                rest = io.StringIO("".join(self.lines[first - 1:]))
                try:
                    for token in tokenize.generate_tokens(rest.readline):
                        if token.type == tokenize.INDENT:
                            self._indent = token.string
                            break
                except (tokenize.TokenError, SyntaxError):
                    pass
        return self._indent


_SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import, ast.ImportFrom, ast.Pass, ast.Break,
           ast.Continue, ast.Return, ast.Raise, ast.Global, ast.Nonlocal, ast.Delete, ast.Assert)


def _outermost_defs(module: ast.Module) -> dict[int, ast.FunctionDef | ast.AsyncFunctionDef]:
    """For the line of every ``def``: the outermost ``def`` that holds it (itself, when not nested)."""
    found: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    stack: list[tuple[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef | None]] = [(module, None)]
    while stack:
        node, outer = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                top = outer or child
                found[child.lineno] = top
                stack.append((child, top))
            elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                stack.append((child, outer))
    return found


def _function_of(module: cst.Module, wrapped: bool) -> FuncDef | None:
    """The one function a cut parsed to, after the header block (inside ``if 1:`` when ``wrapped``)."""
    if len(module.body) != 2:
        return None
    stmt: cst.BaseStatement = module.body[1]
    if wrapped:
        if not isinstance(stmt, cst.If) or not isinstance(stmt.body, cst.IndentedBlock) \
                or len(stmt.body.body) != 1 or stmt.orelse is not None:
            return None
        stmt = stmt.body.body[0]
    return stmt if isinstance(stmt, cst.FunctionDef) else None


__all__ = ["Regions", "Span"]
