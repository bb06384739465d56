"""The text prefilter: a file is parsed only if it names a catalog module in a way that can reach an
acquiring name, and calls something by a name that can acquire. It may let through a file that
acquires nothing; it must never skip one that does."""

from __future__ import annotations

from pathlib import Path

import pytest

from connlint.catalog import default_catalog
from connlint.checker import Options, check_source
from connlint.runner import prefilter

FIXTURES = Path(__file__).parent / "fixtures"

MUST_PASS = {
    "module call": "import sqlite3\nconn = sqlite3.connect(path)\n",
    "call across a line break": "import sqlite3\nconn = sqlite3.connect (\n    path)\n",
    "imported as an alias": "from sqlite3 import connect as open_db\nconn = open_db(path)\n",
    "method of a catalog value": "from django.db import connection\nwith connection.cursor() as c:\n    pass\n",
    "callable type in an annotation": (
        "from sqlalchemy.orm import sessionmaker\n\ndef f(maker: sessionmaker):\n    s = maker()\n"
    ),
    "registry": "from sqlalchemy.orm import scoped_session\nSession = scoped_session(factory)\n",
    "pool checkout": "from psycopg2.pool import SimpleConnectionPool as P\npool = P(1, 2)\n",
}

MAY_SKIP = {
    "no catalog module": "def f(:\n",
    "a module that names nothing acquiring": "from django.utils import timezone\nnow = timezone.now()\n",
    "only types and constants": "import sqlite3\nERR = sqlite3.Error\nROW = sqlite3.Row\n",
}


@pytest.mark.parametrize("name", sorted(MUST_PASS))
def test_texts_that_can_acquire_pass(name: str) -> None:
    assert prefilter(default_catalog()).may_acquire(MUST_PASS[name])


@pytest.mark.parametrize("name", sorted(MAY_SKIP))
def test_texts_that_cannot_acquire_are_skipped(name: str) -> None:
    assert not prefilter(default_catalog()).may_acquire(MAY_SKIP[name])


def test_a_module_that_only_names_the_driver_still_provides_helpers() -> None:
    """Other modules' lookups need helpers (``def done(c): c.close()``) of modules that call nothing
    acquiring: the project index uses the first stage only."""
    text = "import sqlite3\n\ndef done(conn: sqlite3.Connection):\n    conn.close()\n"
    assert prefilter(default_catalog()).names_catalog(text)
    assert not prefilter(default_catalog()).may_acquire(text)


def _fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.py") if "# error:" in p.read_text(encoding="utf-8"))


def _names_a_driver(path: Path) -> bool:
    return prefilter(default_catalog()).names_catalog(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [p for p in _fixture_files() if _names_a_driver(p)],
                         ids=lambda p: str(p.relative_to(FIXTURES)))
def test_no_fixture_with_findings_is_skipped(path: Path) -> None:
    """Every fixture module with a marked finding that names a driver itself passes the prefilter."""
    text = path.read_text(encoding="utf-8")
    findings = check_source(text, Options())
    if findings:
        assert prefilter(default_catalog()).may_acquire(text)


def test_fixtures_that_name_no_driver_are_checked_through_project_rounds() -> None:
    """A fixture with a marked finding that names no driver reaches one only through another module's
    factory: it belongs to a project fixture, whose marks test_projects checks through the CLI's rounds
    (which bypass the prefilter), flake8 and pylint."""
    projects = FIXTURES / "projects"
    driverless = [p for p in _fixture_files() if not _names_a_driver(p)]
    assert driverless, "the project fixtures have wrapper modules that name no driver"
    assert all(projects in p.parents for p in driverless), driverless
