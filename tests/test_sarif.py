"""SARIF output validated against the official SARIF 2.1.0 schema (../shared/schemas)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from connlint.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
CASES = ROOT / "tests" / "fixtures" / "cases"


@pytest.fixture(scope="module")
def sarif_schema() -> dict:
    if not SCHEMA.is_file():
        pytest.skip(f"the official SARIF schema is not at {SCHEMA}")
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def sarif_for(*paths: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "sarif", *paths],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_sarif_validates_against_the_official_schema(sarif_schema: dict) -> None:
    log = sarif_for("tests/fixtures/cases", "examples")
    jsonschema.validate(log, sarif_schema, format_checker=jsonschema.FormatChecker())
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.code for r in RULES]
    assert len(run["results"]) > 100


def test_rules_and_results_carry_what_code_scanning_shows(sarif_schema: dict) -> None:
    log = sarif_for("examples/inventory/products.py")
    jsonschema.validate(log, sarif_schema)
    run = log["runs"][0]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CNL002")
    assert rule["name"] == "resource-not-closed-on-path"
    assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert rule["helpUri"].endswith("/CNL002.md")
    assert rule["defaultConfiguration"]["level"] == "error"
    opt_in = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CNL901")
    assert opt_in["defaultConfiguration"]["enabled"] is False
    result = next(r for r in run["results"] if r["ruleId"] == "CNL002")
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 32 and region["startColumn"] == 12
    assert region["endLine"] >= region["startLine"] and region["endColumn"] > region["startColumn"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "examples/inventory/products.py"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "CNL002"


def test_empty_run_is_valid(sarif_schema: dict, tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    log = sarif_for(str(tmp_path / "ok.py"))
    jsonschema.validate(log, sarif_schema)
    assert log["runs"][0]["results"] == []


def test_fixable_results_carry_a_fix_that_applies(sarif_schema: dict, tmp_path: Path) -> None:
    src = (
        "import sqlite3\n\n\ndef count(path):\n    conn = sqlite3.connect(path)\n"
        "    n = conn.execute('select 1').fetchone()[0]\n    conn.close()\n    return n\n"
    )
    path = tmp_path / "m.py"
    path.write_text(src)
    log = sarif_for(str(path))
    jsonschema.validate(log, sarif_schema)
    (result,) = log["runs"][0]["results"]
    (fix,) = result["fixes"]
    assert "closing" in fix["description"]["text"]
    lines = src.splitlines(keepends=True)
    # apply the replacements (bottom-up) and check the result is what 'connlint fix' writes
    for rep in sorted(fix["artifactChanges"][0]["replacements"], key=lambda r: -r["deletedRegion"]["startLine"]):
        region = rep["deletedRegion"]
        start = region["startLine"] - 1
        end = region.get("endLine", region["startLine"]) if region.get("endColumn", 1) > 1 else start
        lines[start:end] = [rep["insertedContent"]["text"]]
    fixed = "".join(lines)
    assert "with contextlib.closing(sqlite3.connect(path)) as conn:" in fixed
    compile(fixed, "m.py", "exec")


def test_columns_are_code_points_on_lines_with_non_ascii_text(sarif_schema: dict, tmp_path: Path) -> None:
    # 'é' is 2 bytes in UTF-8 and '€' 3: the ast (and flake8) count bytes, SARIF declares code points
    src = (
        "import sqlite3\n\n\ndef f(path):\n"
        "    \x0c\n"  # a form feed: the parser keeps it inside the line, str.splitlines() would split there
        "    café = '€'; conn = sqlite3.connect(path)\n"
        "    return conn.execute('select 1').fetchone()\n"
    )
    path = tmp_path / "m.py"
    path.write_text(src, encoding="utf-8")
    log = sarif_for(str(path))
    jsonschema.validate(log, sarif_schema, format_checker=jsonschema.FormatChecker())
    run = log["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    (result,) = run["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    line = src.split("\n")[region["startLine"] - 1]
    assert region["startLine"] == 6
    start, end = region["startColumn"] - 1, region["endColumn"] - 1
    assert line[start:end] == "sqlite3.connect(path)"
    # the flake8-style columns of the other formats stay byte offsets
    concise = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    assert f":6:{len(line[:start].encode('utf-8')) + 1}: CNL001" in concise
