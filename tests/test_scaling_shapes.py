"""The programs benchmarks/scaling.py times are what they claim to be, and connlint's answers on them do
not change with their size (one finding per leaking unit, whatever the size). No timings here: the
benchmark measures time, on a quiet machine."""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

from connlint.checker import Options, check_source

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import scaling


def codes(source: str) -> Counter[str]:
    return Counter(f.code for f in check_source(source, Options()))


def function_of(source: str) -> ast.FunctionDef:
    funcs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    assert len(funcs) == 1
    return funcs[0]


def depth_of(node: ast.AST) -> int:
    blocks = (ast.If, ast.For, ast.While, ast.With, ast.Try)
    children = [depth_of(c) for c in ast.iter_child_nodes(node)]
    return (1 if isinstance(node, blocks) else 0) + max(children, default=0)


@pytest.mark.parametrize("statements", [1000, 4000])
def test_big_function_has_the_requested_size(statements: int) -> None:
    source = scaling.big_function(statements, statements // 40, leak_every=10)
    func = function_of(source)
    count = sum(isinstance(n, ast.stmt) for n in ast.walk(func)) - 1
    assert statements * 0.9 <= count <= statements * 1.2
    assert source.count("sqlite3.connect(") == statements // 40
    assert depth_of(func) >= 6  # the if/else ladders


@pytest.mark.parametrize("statements", [1000, 2000, 4000])
def test_big_function_findings_grow_with_the_leaky_acquisitions_only(statements: int) -> None:
    acquisitions = statements // 40
    found = codes(scaling.big_function(statements, acquisitions, leak_every=10))
    # every 10th acquisition is closed only on the normal path: it leaks when a query raises
    assert found == Counter({"CNL101": len(range(0, acquisitions, 10))})
    assert codes(scaling.big_function(statements, acquisitions)) == Counter()


@pytest.mark.parametrize("n", [5, 40])
def test_leaking_function_one_finding_per_acquisition(n: int) -> None:
    assert codes(scaling.leaking_function(n)) == Counter({"CNL002": n})


@pytest.mark.parametrize("items", [1, 30])
def test_one_with_statement(items: int) -> None:
    source = scaling.one_with(items)
    with_node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.With))
    assert len(with_node.items) == items
    assert codes(source) == Counter({"CNL001": 1})  # the connection the cursors came from


def test_the_deepest_nesting_python_allows() -> None:
    source = scaling.nested_blocks(scaling.MAX_NESTED_BLOCKS)
    assert depth_of(function_of(source)) == scaling.MAX_NESTED_BLOCKS
    deeper = source.replace("conn.close()", "if flag:\n" + "    " * (scaling.MAX_NESTED_BLOCKS + 2) + "conn.close()")
    with pytest.raises(SyntaxError, match="too many levels of indentation"):
        ast.parse(deeper)  # so 98 blocks in a function (99 with the def) is as deep as a file gets


@pytest.mark.parametrize("depth", [1, 5, 25, scaling.MAX_NESTED_BLOCKS])
def test_nested_blocks_leak_whatever_the_depth(depth: int) -> None:
    assert codes(scaling.nested_blocks(depth)) == Counter({"CNL002": 1})


def test_module_findings_are_proportional_to_its_size() -> None:
    small, large = scaling.module_of_bytes(40_000), scaling.module_of_bytes(160_000)
    assert len(large) >= 160_000
    units_small, units_large = small.count("def leak_"), large.count("def leak_")
    assert units_large >= 3 * units_small
    # per unit: the leaking function (CNL002) and the with-block sqlite3 does not close (CNL003)
    assert codes(small) == Counter({"CNL002": units_small, "CNL003": units_small})
    assert codes(large) == Counter({"CNL002": units_large, "CNL003": units_large})


def test_every_axis_generates_valid_python() -> None:
    for axis in scaling.axes(quick=True):
        for size in axis.sizes:
            ast.parse(axis.make(size))
    full = scaling.axes()
    assert [a.sizes[-1] for a in full if a.target] == [20_000, 500, scaling.MAX_NESTED_BLOCKS, 5_000_000, 5_000_000]
