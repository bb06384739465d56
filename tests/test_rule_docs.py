"""The rule pages in ``src/connlint/rule_docs/`` (also ``docs/rules/``): every rule has one, with every
section, and each page's Example is reported under its code while its "Use instead" is clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from connlint.checker import Options, check_source
from connlint.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "src" / "connlint" / "rule_docs"
SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Fix safety",
    "Options",
    "References",
)
CODES = [rule.code for rule in RULES]
EVERY_RULE = ("CNL", *CODES)  # "CNL" alone would leave opt-in rules to the selection logic

# Options a page's examples assume (CNL900's example exceeds a small analysis budget).
PAGE_OPTIONS: dict[str, dict[str, int]] = {"CNL900": {"budget": 30}}

# Pages whose example is correct but which the analyzer gets wrong today; the reason says how.
KNOWN_ANALYZER_GAPS: dict[tuple[str, str], str] = {}
# e.g. {("CNL901", "Example"): "analyzer: ..."}: the case becomes a strict xfail with that reason


def sections(code: str) -> dict[str, str]:
    """The page's level-2 sections by title, in file order."""
    text = (PAGES / f"{code}.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    return {part.splitlines()[0].strip(): part for part in parts[1:]}


def python_block(code: str, section: str) -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", sections(code)[section], flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"{code}.md: '## {section}' must hold exactly one python block"
    return str(blocks[0])


def case(code: str, section: str) -> object:
    reason = KNOWN_ANALYZER_GAPS.get((code, section))
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(code, marks=marks, id=code)


@pytest.mark.parametrize("code", CODES)
def test_every_rule_has_a_page_with_every_section_in_order(code: str) -> None:
    page = PAGES / f"{code}.md"
    assert page.is_file(), f"no page for {code}"
    rule = next(r for r in RULES if r.code == code)
    assert page.read_text(encoding="utf-8").splitlines()[0] == f"# {rule.code}: {rule.name}"
    assert tuple(sections(code)) == SECTIONS


def test_no_page_without_a_rule() -> None:
    assert sorted(p.stem for p in PAGES.glob("*.md")) == sorted(CODES)


def test_docs_rules_is_the_same_folder() -> None:
    assert (ROOT / "docs" / "rules").resolve() == PAGES.resolve()


@pytest.mark.parametrize("code", [case(c, "Example") for c in CODES])
def test_example_is_reported_under_its_code(code: str) -> None:
    findings = check_source(python_block(code, "Example"), Options(select=(code,), **PAGE_OPTIONS.get(code, {})))
    assert any(f.code == code for f in findings), findings


@pytest.mark.parametrize("code", [case(c, "Example") for c in CODES])
def test_example_shows_only_its_rule(code: str) -> None:
    """With every rule on, the example is not reported under another (more specific) code."""
    findings = check_source(python_block(code, "Example"), Options(select=EVERY_RULE, **PAGE_OPTIONS.get(code, {})))
    assert findings
    assert {f.code for f in findings} == {code}, findings


@pytest.mark.parametrize("code", [case(c, "Use instead") for c in CODES])
def test_use_instead_has_no_finding(code: str) -> None:
    findings = check_source(python_block(code, "Use instead"), Options(select=EVERY_RULE, **PAGE_OPTIONS.get(code, {})))
    assert findings == []


@pytest.mark.parametrize("code", CODES)
def test_examples_are_valid_python(code: str) -> None:
    for section in ("Example", "Use instead"):
        compile(python_block(code, section), f"{code}.md:{section}", "exec")


def test_connlint_rule_prints_the_page() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "connlint", "rule", "CNL002"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == (PAGES / "CNL002.md").read_text(encoding="utf-8").rstrip("\n")


@pytest.mark.parametrize("code", CODES)
def test_fix_safety_section_is_the_fixers_own_statement(code: str) -> None:
    from connlint.fix import fix_safety

    assert fix_safety(code) in sections(code)["Fix safety"]
