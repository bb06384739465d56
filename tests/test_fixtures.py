"""Every file in tests/fixtures/cases/ is a test: the findings must be exactly the ``# error:`` marks.

A mark sits on the line of the acquiring call: ``conn = sqlite3.connect(p)  # error: CNL002``. A line
without a mark must produce no finding. A first line ``# connlint: select=CNL901`` turns on opt-in
rules for that file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from connlint.checker import Options, check_tree
from connlint.rules import RULES

CASES = Path(__file__).parent / "fixtures" / "cases"
MARK = re.compile(r"#\s*error:\s*(?P<codes>CNL\d{3}(?:\s*,\s*CNL\d{3})*)")
SELECT = re.compile(r"#\s*connlint:\s*select=(?P<codes>[A-Z0-9,]+)")


def expected_marks(source: str) -> set[tuple[int, str]]:
    marks = set()
    for lineno, line in enumerate(source.splitlines(), 1):
        m = MARK.search(line)
        if m:
            for code in m.group("codes").split(","):
                marks.add((lineno, code.strip()))
    return marks


def options_for(source: str) -> Options:
    first = source.splitlines()[0] if source else ""
    m = SELECT.search(first)
    extra = tuple(m.group("codes").split(",")) if m else ()
    return Options(select=(*(r.code for r in RULES if r.default), *extra))


@pytest.mark.parametrize("path", sorted(CASES.glob("*.py")), ids=lambda p: p.name)
def test_fixture(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    findings = check_tree(ast.parse(source, str(path)), options_for(source))
    got = {(f.line, f.code) for f in findings}
    want = expected_marks(source)
    lines = source.splitlines()
    missing = sorted(want - got)
    unexpected = sorted(got - want)
    messages = {(f.line, f.code): f.message for f in findings}
    report = [f"missing   {path.name}:{ln}: {code}  | {lines[ln - 1].strip()}" for ln, code in missing]
    report += [
        f"unexpected {path.name}:{ln}: {code} {messages[(ln, code)]}  | {lines[ln - 1].strip()}"
        for ln, code in unexpected
    ]
    assert not report, "\n" + "\n".join(report)


def test_there_are_fixtures() -> None:
    assert len(list(CASES.glob("*.py"))) >= 10
