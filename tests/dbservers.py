"""Helpers for tests that need a real PostgreSQL or MariaDB/MySQL server.

The servers are expected at 127.0.0.1:5432 (user ``postgres``, trust auth, database ``test``) and
127.0.0.1:3306 (``root``, empty password, database ``test``); ``.ci/ensure-services.sh`` provides them in
CI. Host and port can be overridden with ``CONNLINT_PG_HOST``/``CONNLINT_PG_PORT`` and
``CONNLINT_MYSQL_HOST``/``CONNLINT_MYSQL_PORT``.

Server-side session counting, so a test can see whether a ``with`` block really disconnected:

* PostgreSQL: each test connects with its own ``application_name`` and counts its rows in
  ``pg_stat_activity``.
* MariaDB: ``information_schema.processlist`` has no program name/connection-attribute column and
  ``performance_schema`` (where ``session_connect_attrs`` lives) is off by default on MariaDB 10.11, so
  each test gets its own throw-away user and counts that user's rows in the processlist. Works the same
  for PyMySQL and mysql-connector.

When a server is unreachable, :func:`unavailable` skips the test, or fails it when
``CONNLINT_REQUIRE_DB=1`` (CI sets that so a missing server can never turn into a green run).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from typing import Any, Callable, NoReturn

import pytest

PG_HOST = os.environ.get("CONNLINT_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CONNLINT_PG_PORT", "5432"))
PG_USER = "postgres"
PG_DATABASE = "test"

MYSQL_HOST = os.environ.get("CONNLINT_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("CONNLINT_MYSQL_PORT", "3306"))
MYSQL_ROOT_USER = "root"
MYSQL_ROOT_PASSWORD = ""
MYSQL_DATABASE = "test"

CONNECT_TIMEOUT = 5  # seconds, for reachability checks and admin connections


def require_db() -> bool:
    """True when a missing database server must fail the run instead of skipping (CI)."""
    return os.environ.get("CONNLINT_REQUIRE_DB", "").strip().lower() in ("1", "true", "yes", "on")


def unavailable(reason: str) -> NoReturn:
    """Skip the current test, or fail it when ``CONNLINT_REQUIRE_DB=1``."""
    if require_db():
        pytest.fail(f"{reason} (CONNLINT_REQUIRE_DB=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def unique_tag(prefix: str, hint: str = "", length: int = 40) -> str:
    """A short identifier, unique per call, made only of ``[a-z0-9_]`` (safe in SQL and DSNs)."""
    hint = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")
    token = secrets.token_hex(5)
    room = length - len(prefix) - len(token) - 2
    parts = [prefix, hint[:room] if room > 0 else "", token]
    return "_".join(p for p in parts if p)


def wait_for(count: Callable[[], int], expected: int, timeout: float = 5.0, interval: float = 0.05) -> int:
    """Poll ``count()`` until it returns ``expected`` or ``timeout`` passes; return the last value.

    A server drops a session asynchronously after the client hangs up, so a disconnect may take a
    moment to show; a session that stays is reported after the timeout.
    """
    deadline = time.monotonic() + timeout
    value = count()
    while value != expected and time.monotonic() < deadline:
        time.sleep(interval)
        value = count()
    return value


# ---------------------------------------------------------------------------------------- PostgreSQL


def pg_dsn(application_name: str | None = None) -> str:
    """A libpq keyword/value DSN (accepted by psycopg2, psycopg 3 and psycopg_pool)."""
    dsn = (
        f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DATABASE} connect_timeout={CONNECT_TIMEOUT}"
    )
    if application_name:
        dsn += f" application_name={application_name}"
    return dsn


def pg_unreachable_reason() -> str | None:
    """None if PostgreSQL accepts a connection, else a one-line reason."""
    try:
        import psycopg2
    except ImportError as exc:
        return f"PostgreSQL checks need psycopg2: {exc}"
    try:
        conn = psycopg2.connect(pg_dsn("connlint_probe"))
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {detail}"
    conn.close()
    return None


class PgAdmin:
    """An autocommit admin connection used to look at the server from outside the code under test."""

    def __init__(self) -> None:
        import psycopg2

        self.conn = psycopg2.connect(pg_dsn("connlint_admin"))
        self.conn.autocommit = True

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return None if row is None else row[0]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def session_count(self, application_name: str) -> int:
        """Live backends connected with ``application_name``."""
        return int(
            self.scalar(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application_name,),
            )
        )

    def terminate(self, application_name: str) -> None:
        """Kill whatever a test left connected (so a failing test cannot leak into the next one)."""
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        )

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------- MariaDB


def mysql_root_params() -> dict[str, Any]:
    return {
        "host": MYSQL_HOST,
        "port": MYSQL_PORT,
        "user": MYSQL_ROOT_USER,
        "password": MYSQL_ROOT_PASSWORD,
        "database": MYSQL_DATABASE,
    }


def mysql_unreachable_reason() -> str | None:
    """None if MariaDB/MySQL accepts a root connection, else a one-line reason."""
    try:
        import pymysql
    except ImportError as exc:
        return f"MariaDB checks need PyMySQL: {exc}"
    try:
        conn = pymysql.connect(**mysql_root_params(), connect_timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return f"MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {detail}"
    conn.close()
    return None


# A per-test user must win the server's account matching whatever host the client is seen as: with
# name resolution on, 127.0.0.1 is seen as "localhost" and an anonymous ''@localhost would beat 'u'@'%'.
_MYSQL_USER_HOSTS = ("%", "localhost", "127.0.0.1")


class MysqlAdmin:
    """An autocommit root connection: creates per-test users and reads the processlist."""

    def __init__(self) -> None:
        import pymysql

        self.conn = pymysql.connect(**mysql_root_params(), connect_timeout=CONNECT_TIMEOUT, autocommit=True)

    def scalar(self, sql: str, params: tuple[Any, ...] | None = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return None if row is None else row[0]

    def execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def create_user(self, user: str, password: str) -> None:
        accounts = ", ".join(f"'{user}'@'{host}' IDENTIFIED BY '{password}'" for host in _MYSQL_USER_HOSTS)
        self.execute(f"CREATE USER {accounts}")
        for host in _MYSQL_USER_HOSTS:
            self.execute(f"GRANT ALL PRIVILEGES ON `{MYSQL_DATABASE}`.* TO '{user}'@'{host}'")

    def session_ids(self, user: str) -> list[int]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (user,))
            return [int(row[0]) for row in cur.fetchall()]

    def session_count(self, user: str) -> int:
        """Live server threads logged in as ``user``."""
        return len(self.session_ids(user))

    def kill_sessions(self, user: str) -> None:
        """End whatever a test left connected (a leftover transaction would block DROP TABLE)."""
        for thread_id in self.session_ids(user):
            with contextlib.suppress(Exception):  # already gone
                self.execute(f"KILL {thread_id}")

    def drop_user(self, user: str) -> None:
        self.kill_sessions(user)
        accounts = ", ".join(f"'{user}'@'{host}'" for host in _MYSQL_USER_HOSTS)
        self.execute(f"DROP USER IF EXISTS {accounts}")

    def close(self) -> None:
        self.conn.close()
