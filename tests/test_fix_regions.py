"""The fix parses with LibCST only the functions that hold something to fix (``fix/regions.py``). A function
cut out of the file must come out exactly as the same function in a parse of the whole file (comments and
blank lines after it included), LibCST's default indent and newline must be the file's, and the fix must be
the one the whole-file parse gives, byte for byte, with the same report."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from connlint.fix import regions
from connlint.fix.engine import FixResult, fix_text
from connlint.fix.regions import Regions

FIXTURES = Path(__file__).parent / "fixtures"
FIX_CASES = sorted(
    p for folder in ("fix", "fix_behaviour") for p in (FIXTURES / folder).glob("*.py")
    if not p.name.endswith(".fixed.py")
)

# functions at every depth, decorators with comments between them, comment lines after a function at the
# indentation of each of its blocks and of the next statement, blank lines with and without indentation
NESTED = """\
import sqlite3


# leading comment of the class
class Store:
    '''Doc.'''

    # above the decorator
    @staticmethod
    # between decorator and def
    def open(path):
        conn = sqlite3.connect(path)
        if path:
            rows = conn.execute("x").fetchall()
            # deep, after the last statement of the if

        # at the body's indentation
    # at the class body's indentation
        # deeper again

    def other(self):
        def inner(p):
            c = sqlite3.connect(p)
            c.close()
                # deeper than inner's body

        return inner
# at column 0


def last(path):
    conn = sqlite3.connect(path)
    conn.close()
    # trailing comment at the end of the file
        
"""  # noqa: W293 (the whitespace-only last line is the point)

CUTS = {
    "nested": NESTED,
    "crlf": NESTED.replace("\n", "\r\n"),
    "first_line_crlf": NESTED.replace("\n", "\r\n", 1),
    "tabs": NESTED.replace("    ", "\t"),
    "two_spaces_first": "if True:\n  x = 1\n" + NESTED,
    "no_final_newline": NESTED.rstrip("\n "),
    "one_line_def": "import sqlite3\ndef f(p): return sqlite3.connect(p)\n# after\n\ndef g(p):\n    pass\n",
    "async": "import asyncpg\n\n\nclass A:\n    async def f(self):\n        c = await asyncpg.connect()\n"
             "        await c.close()\n",
}


def _whole_file_functions(module: cst.Module) -> dict[int, cst.FunctionDef]:
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {positions[n.name].start.line: n for n in positions if isinstance(n, cst.FunctionDef)}


@pytest.mark.parametrize("name", sorted(CUTS))
def test_a_function_cut_out_is_the_function_of_the_whole_file(name: str) -> None:
    text = CUTS[name]
    whole = cst.parse_module(text)
    by_line = _whole_file_functions(whole)
    module = ast.parse(text)
    lines = [n.lineno for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    cut = Regions(text, module, lines)
    assert not cut.whole_file
    assert (cut.default_indent, cut.default_newline) == (whole.default_indent, whole.default_newline)
    for tree in cut.trees:
        function = regions._function_of(tree.module, isinstance(tree.module.body[-1], cst.If))
        assert function is not None
        line = tree.line_of(function.name)
        assert function.deep_equals(by_line[line].with_changes(leading_lines=()))
    # putting the functions back unchanged gives the text back
    assert cut.rewrite([t for t in cut.trees], lambda t: t, lambda m, _: m) == text  # type: ignore[arg-type]


def test_the_trailing_comments_a_function_owns_are_cut_with_it() -> None:
    module = ast.parse(NESTED)
    cut = Regions(NESTED, module, [])
    store = module.body[1]
    assert isinstance(store, ast.ClassDef)
    opener = store.body[1]
    assert isinstance(opener, ast.FunctionDef)
    span = cut.span_of(opener)
    lines = NESTED.splitlines()
    assert lines[span.first - 1].strip() == "@staticmethod"
    # its body's comment lines, up to the last one indented like its body; not the class body's
    assert lines[span.last - 1].strip() == "# deeper again"


def test_a_function_that_cannot_be_cut_out_means_the_whole_file() -> None:
    text = "import sqlite3\nconn = sqlite3.connect('x')\n"
    cut = Regions(text, ast.parse(text), [2])  # no def on that line
    assert cut.whole_file and len(cut.trees) == 1 and cut.trees[0].line_offset == 0


def _summary(result: FixResult) -> tuple[object, ...]:
    return (
        result.text, result.error,
        [(f.finding, f.description, f.applicability, f.form) for f in result.fixed],
        [(u.finding, u.reason, u.original, u.unsafe_available) for u in result.unfixed],
    )


@pytest.mark.parametrize("path", FIX_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_fix_is_the_one_of_a_whole_file_parse(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = path.read_text(encoding="utf-8")
    unsafe = "connlint: unsafe-fixes" in source.splitlines()[0] if source else False
    cut = fix_text(source, unsafe=unsafe, path=str(path))
    monkeypatch.setattr(regions, "_outermost_defs", lambda module: {})  # every function: the whole file
    whole = fix_text(source, unsafe=unsafe, path=str(path))
    assert _summary(cut) == _summary(whole)


@pytest.mark.parametrize("name", sorted(CUTS))
def test_the_children_map_gives_what_the_children_property_gives(name: str) -> None:
    from connlint.fix.safety import _walk

    text = CUTS[name]
    module = ast.parse(text)
    lines = [n.lineno for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for tree in [*Regions(text, module, lines).trees, regions.Tree(text)]:
        nodes = list(_walk(tree.module))
        assert len(nodes) > 20
        for node in nodes:
            assert list(tree.children(node)) == list(node.children)
