"""The fix as a LibCST codemod command (``python -m libcst.tool codemod codemod.FixLeaks``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from libcst.codemod import CodemodTest

from connlint.fix.codemod import FixLeaks

BEFORE = """
import duckdb


def f(path):
    conn = duckdb.connect(path)
    rows = conn.execute("SELECT 1").fetchall()
    conn.close()
    return rows
"""
AFTER = """
import duckdb


def f(path):
    with duckdb.connect(path) as conn:
        rows = conn.execute("SELECT 1").fetchall()
    return rows
"""


class TestFixLeaks(CodemodTest):
    TRANSFORM = FixLeaks

    def test_rewrites_a_leak(self) -> None:
        self.assertCodemod(BEFORE, AFTER)

    def test_leaves_clean_code_alone(self) -> None:
        self.assertCodemod(AFTER, AFTER)

    def test_reports_findings_without_a_safe_fix(self) -> None:
        source = (
            "import duckdb\n\n\ndef f(path):\n    conn = duckdb.connect(path)\n    return conn.cursor()\n"
        )
        self.assertCodemod(source, source, expected_warnings=[
            "5:12: CNL001 no safe fix: it would return a value that needs 'conn' open at line 6",
        ])

    def test_unsafe_fixes_option(self) -> None:
        source = "import psycopg\n\n\ndef f(dsn):\n    conn = psycopg.connect(dsn)\n    conn.execute('x')\n"
        safe = (  # a new standard-library group goes before the third-party one
            "import contextlib\n\nimport psycopg\n\n\ndef f(dsn):\n"
            "    with contextlib.closing(psycopg.connect(dsn)) as conn:\n        conn.execute('x')\n"
        )
        unsafe = (
            "import psycopg\n\n\ndef f(dsn):\n"
            "    with psycopg.connect(dsn) as conn:\n        conn.execute('x')\n"
        )
        self.assertCodemod(source, safe)
        self.assertCodemod(source, unsafe, unsafe_fixes=True)


def test_runs_under_the_libcst_tool(tmp_path: Path) -> None:
    (tmp_path / ".libcst.codemod.yaml").write_text(
        "generated_code_marker: '@generated'\nformatter: ['cat']\nblacklist_patterns: []\n"
        "modules:\n- 'connlint.fix'\nrepo_root: '.'\n"
    )
    target = tmp_path / "m.py"
    target.write_text(BEFORE)
    done = subprocess.run(
        [sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "codemod.FixLeaks", "m.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert target.read_text() == AFTER
