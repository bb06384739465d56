"""Project layouts that more than one test module builds in a temporary folder."""

from __future__ import annotations

from pathlib import Path


def src_and_tests(root: Path) -> Path:
    """src/ and tests/ layout: tests/test_orders.py (root tests/) leaks, at line 5, what the factory
    ``shop.db.get_conn`` of the package under src/ returns."""
    (root / "src" / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "src" / "shop" / "__init__.py").write_text("")
    (root / "src" / "shop" / "db.py").write_text(
        "import sqlite3\n\n\ndef get_conn(path):\n    return sqlite3.connect(path)\n")
    (root / "tests" / "test_orders.py").write_text(
        "from shop.db import get_conn\n\n\ndef test_count(tmp_path):\n    conn = get_conn(tmp_path / 'x.db')\n"
        "    assert conn.execute('select 1').fetchone()\n")
    return root
