"""Multi-module projects: factories, helpers and re-exports across modules, relative imports and
import cycles. Marks as in tests/fixtures/cases; the CLI and flake8 must report the same findings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from layouts import src_and_tests

PROJECTS = Path(__file__).parent / "fixtures" / "projects"
MARK = re.compile(r"#\s*error:\s*(?P<codes>CNL\d{3}(?:\s*,\s*CNL\d{3})*)")


def marks(project: Path) -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(project.rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = MARK.search(line)
            if m:
                for code in m.group("codes").split(","):
                    found.add((str(path.relative_to(project)), lineno, code.strip()))
    return found


@pytest.mark.parametrize("project", sorted(p for p in PROJECTS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_cli_reports_exactly_the_marks(project: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "json", "."], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    got = {(str(Path(i["path"])), i["line"], i["code"]) for i in json.loads(proc.stdout)}
    assert got == marks(project)


@pytest.mark.parametrize("project", sorted(p for p in PROJECTS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_flake8_agrees_with_the_cli(project: Path) -> None:
    flake8 = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select", "CNL", "."], cwd=project,
                            capture_output=True, text=True, timeout=120)
    cli = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", "."], cwd=project,
                         capture_output=True, text=True, timeout=120)
    assert flake8.returncode in (0, 1), flake8.stderr
    assert sorted(flake8.stdout.splitlines()) == sorted(cli.stdout.splitlines())


def test_messages_name_the_chain() -> None:
    proc = subprocess.run([sys.executable, "-m", "connlint", "check", "--format", "concise", "."],
                          cwd=PROJECTS / "factory_chain", capture_output=True, text=True, timeout=120)
    assert (
        "shop/service.py:8:12: CNL001 connection 'conn' from open_repo_conn() (shop/repo.py:4, "
        "sqlite3.connect) is never closed"
    ) in proc.stdout


@pytest.mark.parametrize("project", sorted(p for p in PROJECTS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_pylint_agrees_with_the_cli(project: Path) -> None:
    packages = sorted(p.name for p in project.iterdir() if (p / "__init__.py").is_file())
    pylint = subprocess.run(
        [sys.executable, "-m", "pylint", "--load-plugins=connlint.pylint_plugin", "--disable=all",
         "--enable=connlint", "--output-format=parseable", "--score=n", *packages],
        cwd=project, capture_output=True, text=True, timeout=300,
    )
    assert "Traceback" not in pylint.stdout + pylint.stderr
    got = set()
    for line in pylint.stdout.splitlines():
        m = re.match(r"(?P<path>[^:]+):(?P<line>\d+): \[W84\d\d\(.*?\), .*?\] (?P<code>CNL\d{3}) ", line)
        if m:
            got.add((str(Path(m["path"])), int(m["line"]), m["code"]))
    assert got == marks(project), pylint.stdout


def test_pylint_symbols_are_the_rule_names() -> None:
    from connlint.pylint_plugin import MSGS
    from connlint.rules import RULES

    assert sorted(v[1] for v in MSGS.values()) == sorted(r.name for r in RULES)


def test_later_rounds_need_an_import_of_the_factorys_package() -> None:
    from connlint.project import _imports_package

    def imports(text: bytes, package: bytes = b"databases") -> bool:
        return _imports_package(package).search(text) is not None

    assert imports(b"import os\nfrom databases.core import Database\n")
    assert imports(b"import os, databases\n")
    assert imports(b"    import databases as dbs\n")
    assert imports(b"import a.b, c as d, databases.core\n")
    assert not imports(b"databases = {'default'}\nconnection = None\n")
    assert not imports(b"from databasesx import y\nimport other.databases\n")
    assert not imports(b"import os.path as databases\nfrom . import databases\nx = 'import databases'\n")
    text = b"import os, databases.core as d\nfrom sqlalchemy.orm import Session\n  import luigi\nx = 'import no'\n"
    assert all(imports(text, p) for p in (b"os", b"databases", b"sqlalchemy", b"luigi"))
    assert not any(imports(text, p) for p in (b"no", b"core", b"d", b"orm", b"Session"))


def test_pylint_knows_every_root_of_its_run(tmp_path: Path) -> None:
    """src/ and tests/ layout, as tests/test_flake8.py checks for flake8: pylint adds the package root
    of each of its arguments to sys.path, and the plugin takes them as the run's roots (the test module
    comes first: before, a root was known only once a file of it had been checked)."""
    src_and_tests(tmp_path)
    pylint = subprocess.run(
        [sys.executable, "-m", "pylint", "--load-plugins=connlint.pylint_plugin", "--disable=all",
         "--enable=connlint", "--output-format=parseable", "--score=n", "tests/test_orders.py", "src/shop"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert "tests/test_orders.py:5: [W8401(resource-never-closed), ] CNL001 connection 'conn' from get_conn() " in (
        pylint.stdout), pylint.stdout + pylint.stderr
