"""Every ``tests/fixtures/fix/<name>.py`` with a ``<name>.fixed.py`` is a test: fixing the first gives
exactly the second, the result compiles, re-checks clean and a second fix changes nothing.

``no_fix_*.py`` files must come back unchanged; each finding in them has a ``# nofix: <reason>`` mark on
its line with a part of the reason given. A first line ``# connlint: unsafe-fixes`` fixes with
``--unsafe-fixes``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connlint.catalog import default_catalog
from connlint.checker import Options
from connlint.fix import FIX_SAFETY, FIXABLE_CODES, fix_applicability, fix_available, fix_safety
from connlint.fix.engine import fix_text
from connlint.fix.forms import BUILDERS
from connlint.rules import RULES
from connlint.runner import check_text

FIXTURES = Path(__file__).parent / "fixtures" / "fix"
PAIRS = sorted(
    p for p in FIXTURES.glob("*.py") if not p.name.endswith(".fixed.py") and not p.name.startswith("no_fix")
)
NO_FIX = sorted(FIXTURES.glob("no_fix_*.py"))
NOFIX_MARK = re.compile(r"#\s*nofix:\s*(?P<reason>.+?)\s*$")


def _unsafe(source: str) -> bool:
    return "connlint: unsafe-fixes" in source.splitlines()[0]


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.name)
def test_fix_gives_the_fixed_file(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    expected = path.with_name(path.stem + ".fixed.py").read_text(encoding="utf-8")
    result = fix_text(source, unsafe=_unsafe(source), path=str(path))
    assert result.error is None
    assert result.text == expected
    assert result.fixed, "a fixture pair must fix something"
    assert not result.unfixed, [(u.finding.line, u.reason) for u in result.unfixed]


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.name)
def test_fixed_file_compiles_rechecks_clean_and_is_stable(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    fixed = path.with_name(path.stem + ".fixed.py").read_text(encoding="utf-8")
    compile(fixed, str(path), "exec")
    assert check_text(str(path), fixed, Options(), default_catalog()).findings == ()
    again = fix_text(fixed, unsafe=_unsafe(source), path=str(path))
    assert again.text == fixed and not again.fixed


@pytest.mark.parametrize("path", NO_FIX, ids=lambda p: p.name)
def test_no_safe_fix(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    result = fix_text(source, path=str(path))
    assert result.error is None
    assert result.text == source
    lines = source.splitlines()
    marks = {n: m.group("reason") for n, line in enumerate(lines, 1) if (m := NOFIX_MARK.search(line))}
    got = {u.finding.line: u.reason for u in result.unfixed}
    assert set(got) == set(marks), f"findings on {sorted(got)}, marks on {sorted(marks)}"
    for line, fragment in marks.items():
        assert fragment in got[line], f"line {line}: {got[line]!r} does not say {fragment!r}"


def test_every_form_has_a_fixture() -> None:
    forms = set()
    for path in PAIRS:
        source = path.read_text(encoding="utf-8")
        forms.update(f.form for f in fix_text(source, unsafe=_unsafe(source)).fixed)
    assert forms == set(BUILDERS)


def test_fix_available_matches_what_the_fixture_pairs_fix() -> None:
    for path in PAIRS:
        source = path.read_text(encoding="utf-8")
        for fixed in fix_text(source, unsafe=_unsafe(source)).fixed:
            assert fix_available(fixed.finding), (path.name, fixed.finding)
            expected = "unsafe" if fixed.finding.code == "CNL007" else "safe"
            assert fix_applicability(fixed.finding) == expected


def test_fix_available_is_false_for_module_level_connections() -> None:
    source = "import sqlite3\nconn = sqlite3.connect('x')\n"
    findings = check_text("m.py", source, Options(select=("CNL901",)), default_catalog()).findings
    assert [f.code for f in findings] == ["CNL901"]
    assert not fix_available(findings[0])


def test_every_fixable_rule_states_its_fix_safety() -> None:
    codes = {rule.code for rule in RULES}
    assert codes >= FIXABLE_CODES
    assert set(FIX_SAFETY) >= FIXABLE_CODES
    assert all(fix_safety(code) for code in codes)


def test_fix_respects_noqa_and_select() -> None:
    source = (
        "import sqlite3\n\n\ndef f(p):\n"
        "    conn = sqlite3.connect(p)  # noqa: CNL001\n    return conn.execute('x').fetchall()\n\n\n"
        "def g(p):\n    conn = sqlite3.connect(p)\n    conn.execute('x')\n"
        "    if p:\n        return\n    conn.close()\n"
    )
    assert fix_text(source, Options(select=("CNL001",))).text == source  # g is CNL002
    result = fix_text(source)
    assert [f.finding.line for f in result.fixed] == [10]
    assert "# noqa: CNL001" in result.text and "conn = sqlite3.connect(p)  # noqa" in result.text
