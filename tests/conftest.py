"""Database server fixtures (PostgreSQL and MariaDB). Only DB fixtures live here.

``pg_dsn``         a libpq DSN whose ``application_name`` is unique to the test
``pg_sessions``    callable: how many server sessions that test's connections hold right now
``pg_admin``       an autocommit psycopg2 connection wrapper (``dbservers.PgAdmin``) for looking from outside
``mysql_params``   connect kwargs (host, port, user, password, database) for a user unique to the test
``mysql_sessions`` callable: how many server threads that user holds right now
``mysql_admin``    a root connection wrapper (``dbservers.MysqlAdmin``)

If a server is unreachable these fixtures skip the test, or fail it under ``CONNLINT_REQUIRE_DB=1``.
Tests that use them are marked ``db`` automatically (``-m "not db"`` deselects them).
"""


from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# Subprocesses the tests start (python -m connlint, flake8) import this checkout's connlint, not
# whatever copy is installed; pytest itself gets src/ from pyproject's pythonpath.
_SRC = str(_Path(__file__).resolve().parent.parent / "src")
_os.environ["PYTHONPATH"] = _os.pathsep.join(p for p in (_SRC, _os.environ.get("PYTHONPATH", "")) if p)
# The cache of the runs the tests start goes to one temporary folder, not into the fixture folders
# (tests of the cache itself set their own).
if "CONNLINT_CACHE_DIR" not in _os.environ:
    import tempfile as _tempfile

    _os.environ["CONNLINT_CACHE_DIR"] = _tempfile.mkdtemp(prefix="connlint-test-cache-")

import secrets  # noqa: E402 (after the environment above)
from collections.abc import Iterator  # noqa: E402 (after the environment above)
from typing import Any, Callable  # noqa: E402 (after the environment above)

import dbservers  # noqa: E402 (after the environment above)
import pytest  # noqa: E402 (after the environment above)

_DB_FIXTURES = frozenset(
    {"pg_dsn", "pg_sessions", "pg_admin", "mysql_params", "mysql_sessions", "mysql_admin"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


# ------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def _pg_server() -> str | None:
    """Checked once per run: None when reachable, else the reason (a down server costs one timeout)."""
    return dbservers.pg_unreachable_reason()


@pytest.fixture
def pg_admin(_pg_server: str | None) -> Iterator[dbservers.PgAdmin]:
    if _pg_server is not None:
        dbservers.unavailable(_pg_server)
    admin = dbservers.PgAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def _pg_application_name(request: pytest.FixtureRequest, pg_admin: dbservers.PgAdmin) -> Iterator[str]:
    name = dbservers.unique_tag("connlint", request.node.name, length=60)
    yield name
    pg_admin.terminate(name)


@pytest.fixture
def pg_dsn(_pg_application_name: str) -> str:
    return dbservers.pg_dsn(_pg_application_name)


@pytest.fixture
def pg_sessions(pg_admin: dbservers.PgAdmin, _pg_application_name: str, pg_dsn: str) -> Callable[[], int]:
    return lambda: pg_admin.session_count(_pg_application_name)


# ------------------------------------------------------------------------------------- MariaDB


@pytest.fixture(scope="session")
def _mysql_server() -> str | None:
    return dbservers.mysql_unreachable_reason()


@pytest.fixture
def mysql_admin(_mysql_server: str | None) -> Iterator[dbservers.MysqlAdmin]:
    if _mysql_server is not None:
        dbservers.unavailable(_mysql_server)
    admin = dbservers.MysqlAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def mysql_params(mysql_admin: dbservers.MysqlAdmin) -> Iterator[dict[str, Any]]:
    user = dbservers.unique_tag("cl", length=32)  # MariaDB user names: at most 80 chars; keep them short
    password = secrets.token_hex(8)
    mysql_admin.create_user(user, password)
    try:
        yield {
            "host": dbservers.MYSQL_HOST,
            "port": dbservers.MYSQL_PORT,
            "user": user,
            "password": password,
            "database": dbservers.MYSQL_DATABASE,
        }
    finally:
        mysql_admin.drop_user(user)


@pytest.fixture
def mysql_sessions(mysql_admin: dbservers.MysqlAdmin, mysql_params: dict[str, Any]) -> Callable[[], int]:
    user = mysql_params["user"]
    return lambda: mysql_admin.session_count(user)
