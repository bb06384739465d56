"""Generated programs (hypothesmith) never make the checker raise, as they are or with a sqlite3
connection spliced into their code. A few examples here; benchmarks/fuzz.py runs the same properties for
as long as you like."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesmith", reason="hypothesmith generates the programs (pip install hypothesmith)")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import fuzz

# generated code says things like 1(), which compile() warns about
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")
FEW = settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
POSITION = st.integers(0, 50)


@FEW
@given(fuzz.strategy("grammar"))
def test_generated_programs(program: str) -> None:
    fuzz.check_never_raises(fuzz.as_is(program))


@FEW
@given(fuzz.strategy("grammar"), POSITION, POSITION, st.none() | POSITION)
def test_generated_programs_with_an_acquisition_spliced_in(program: str, where: int, at: int,
                                                          release: int | None) -> None:
    spliced = fuzz.splice(program, where, at, release)
    if spliced is not None:
        fuzz.check_never_raises(spliced)


@settings(FEW, max_examples=20)
@given(fuzz.strategy("node"), POSITION, POSITION, st.none() | POSITION)
def test_generated_syntax_trees_with_an_acquisition_spliced_in(program: str, where: int, at: int,
                                                              release: int | None) -> None:
    fuzz.check_never_raises(fuzz.as_is(program))
    spliced = fuzz.splice(program, where, at, release)
    if spliced is not None:
        fuzz.check_never_raises(spliced)


def test_splice_puts_the_acquisition_inside_the_generated_blocks() -> None:
    program = "for x in y:\n    if x:\n        pass\n"
    spliced = fuzz.splice(program, where=2, at=0, release=None)
    assert spliced is not None
    assert "        if x:\n            conn = sqlite3.connect(path)" in spliced
    findings = fuzz.check_tree(fuzz.ast.parse(spliced), fuzz.ALL_CODES, fuzz.default_catalog())
    assert [f.code for f in findings] == ["CNL004"]  # opened again by the next iteration
