"""The fixes run: for each form, a leaky function and its fixed version execute against real databases
(sqlite3 and duckdb in-process, PostgreSQL and MariaDB servers). The leaky version leaves its connection
open, the fixed one leaves none, on the normal path and when a statement in the block raises; and the
committed data is the same before and after the fix.

The functions are in ``fixtures/fix_behaviour/``; ``fix_db_helpers.Tracker`` keeps every connection the
code opens (as a traceback or a cache would), so what is still open is what the code did not close.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any, Callable

import dbservers
import duckdb
import mysql
import mysql.connector
import mysql.connector.aio
import psycopg
import psycopg2
import psycopg2.errors
import psycopg2.pool
import psycopg_pool
import pymysql
import pytest
from fix_db_helpers import Tracker, close_all, load, sqlite_is_open, versions

NORMAL_AND_RAISING = pytest.mark.parametrize("fail", [False, True], ids=["normal", "raises"])


def _call(func: Callable[..., Any], *args: Any, fail: bool, error: type[BaseException]) -> None:
    if fail:
        with pytest.raises(error):
            func(*args, fail=True)
    else:
        func(*args)


# -------------------------------------------------------------------------------------- sqlite3, duckdb


@pytest.fixture
def sqlite_path(tmp_path: Any) -> str:
    path = str(tmp_path / "t.db")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    conn.close()
    return path


def _sqlite_rows(path: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]
    finally:
        conn.close()


@NORMAL_AND_RAISING
def test_sqlite3_closing_closes_what_was_left_open(sqlite_path: str, fail: bool) -> None:
    tracker = Tracker(sqlite3)
    code = versions("embedded.py", sqlite3=tracker)
    assert code.forms["sqlite_never_closed"] == "closing"
    _call(code.leaky["sqlite_never_closed"], sqlite_path, fail=fail, error=sqlite3.OperationalError)
    assert sqlite_is_open(tracker.opened[-1])
    _call(code.fixed["sqlite_never_closed"], sqlite_path, fail=fail, error=sqlite3.OperationalError)
    assert not sqlite_is_open(tracker.opened[-1])
    close_all(tracker)


@NORMAL_AND_RAISING
def test_sqlite3_exception_path_leak_is_closed(sqlite_path: str, fail: bool) -> None:
    tracker = Tracker(sqlite3)
    code = versions("embedded.py", sqlite3=tracker)
    assert code.forms["sqlite_closed_at_end"] == "closing"
    _call(code.leaky["sqlite_closed_at_end"], sqlite_path, fail=fail, error=sqlite3.OperationalError)
    assert sqlite_is_open(tracker.opened[-1]) is fail  # CNL101: only the raising path leaked
    _call(code.fixed["sqlite_closed_at_end"], sqlite_path, fail=fail, error=sqlite3.OperationalError)
    assert not sqlite_is_open(tracker.opened[-1])
    close_all(tracker)


def test_sqlite3_with_keeps_its_commit_and_now_closes(tmp_path: Any) -> None:
    """``with sqlite3.connect(p) as conn`` -> ``with closing(...) as conn, conn``: same rows committed."""
    tracker = Tracker(sqlite3)
    code = versions("embedded.py", sqlite3=tracker)
    assert code.forms["sqlite_add"] == "closing-transaction"
    committed = {}
    for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
        path = str(tmp_path / f"{label}.db")
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.close()
        start = len(tracker.opened)
        namespace["sqlite_add"](path, 10)
        _call(namespace["sqlite_add"], path, 11, fail=True, error=sqlite3.OperationalError)
        committed[label] = _sqlite_rows(path)
        still_open = [sqlite_is_open(c) for c in tracker.opened[start:]]
        assert still_open == ([True, True] if label == "leaky" else [False, False])
    assert committed["leaky"] == committed["fixed"] == [10]
    close_all(tracker)


def test_closing_alone_would_drop_the_commit(tmp_path: Any) -> None:
    """Why CNL003's fix keeps ``, conn``: without it the insert is rolled back by close()."""
    code = versions("embedded.py")
    naive = load(code.result.text.replace("as conn, conn:", "as conn:"), tmp_path / "naive.py")
    path = str(tmp_path / "t.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.close()
    naive["sqlite_add"](path, 10)
    assert _sqlite_rows(path) == []
    code.fixed["sqlite_add"](path, 10)
    assert _sqlite_rows(path) == [10]


@NORMAL_AND_RAISING
def test_duckdb_with_closes(tmp_path: Any, fail: bool) -> None:
    path = str(tmp_path / "t.duckdb")
    setup = duckdb.connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (1), (2)")
    setup.close()
    tracker = Tracker(duckdb)
    code = versions("embedded.py", duckdb=tracker)
    assert code.forms["duckdb_never_closed"] == "with"
    _call(code.leaky["duckdb_never_closed"], path, fail=fail, error=duckdb.CatalogException)
    assert sqlite_is_open(tracker.opened[-1])
    _call(code.fixed["duckdb_never_closed"], path, fail=fail, error=duckdb.CatalogException)
    assert not sqlite_is_open(tracker.opened[-1])
    close_all(tracker)


# ---------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_table(pg_admin: dbservers.PgAdmin) -> Iterator[str]:
    name = dbservers.unique_tag("fix")
    pg_admin.execute(f"CREATE TABLE {name} (x integer)")
    yield name
    pg_admin.execute(f"DROP TABLE IF EXISTS {name}")


def _pg_rows(admin: dbservers.PgAdmin, table: str) -> list[int]:
    with admin.conn.cursor() as cur:
        cur.execute(f"SELECT x FROM {table} ORDER BY x")
        return [x for (x,) in cur.fetchall()]


def _settled(count: Callable[[], int], expected: int) -> int:
    return dbservers.wait_for(count, expected)


@NORMAL_AND_RAISING
def test_psycopg2_closing_ends_the_session(pg_dsn: str, pg_sessions: Callable[[], int], fail: bool) -> None:
    tracker = Tracker(psycopg2)
    code = versions("postgres.py", psycopg2=tracker)
    assert code.forms["pg2_never_closed"] == "closing"
    try:
        _call(code.leaky["pg2_never_closed"], pg_dsn, fail=fail, error=psycopg2.errors.DivisionByZero)
        assert _settled(pg_sessions, 1) == 1
        close_all(tracker)
        assert _settled(pg_sessions, 0) == 0
        _call(code.fixed["pg2_never_closed"], pg_dsn, fail=fail, error=psycopg2.errors.DivisionByZero)
        assert _settled(pg_sessions, 0) == 0
        assert tracker.opened[-1].closed
    finally:
        close_all(tracker)


def test_psycopg2_a_kept_traceback_keeps_the_leaky_session(pg_dsn: str,
                                                           pg_sessions: Callable[[], int]) -> None:
    """No tracker: the traceback of the raised error is enough to keep the leaky connection alive."""
    code = versions("postgres.py")
    with pytest.raises(psycopg2.errors.DivisionByZero) as leaky_error:
        code.leaky["pg2_never_closed"](pg_dsn, fail=True)
    assert _settled(pg_sessions, 1) == 1
    with pytest.raises(psycopg2.errors.DivisionByZero) as fixed_error:
        code.fixed["pg2_never_closed"](pg_dsn, fail=True)
    assert _settled(pg_sessions, 1) == 1  # only the leaky one
    del leaky_error
    assert _settled(pg_sessions, 0) == 0
    del fixed_error


def test_psycopg2_with_keeps_its_commit_and_now_closes(
    pg_dsn: str, pg_sessions: Callable[[], int], pg_admin: dbservers.PgAdmin, pg_table: str
) -> None:
    tracker = Tracker(psycopg2)
    code = versions("postgres.py", psycopg2=tracker)
    assert code.forms["pg2_add"] == "closing-transaction"
    committed = {}
    try:
        for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
            pg_admin.execute(f"DELETE FROM {pg_table}")
            namespace["pg2_add"](pg_dsn, pg_table, 10)
            _call(namespace["pg2_add"], pg_dsn, pg_table, 11, fail=True, error=psycopg2.errors.DivisionByZero)
            committed[label] = _pg_rows(pg_admin, pg_table)
            assert _settled(pg_sessions, 2 if label == "leaky" else 0) == (2 if label == "leaky" else 0)
            close_all(tracker)
            assert _settled(pg_sessions, 0) == 0
    finally:
        close_all(tracker)
    assert committed["leaky"] == committed["fixed"] == [10]


@NORMAL_AND_RAISING
def test_psycopg2_pool_checkout_is_returned(pg_dsn: str, fail: bool) -> None:
    code = versions("postgres.py")
    assert code.forms["pg2_pool_fetch"] == "pool-try-finally"
    for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
        pool = psycopg2.pool.SimpleConnectionPool(1, 2, pg_dsn)
        try:
            _call(namespace["pg2_pool_fetch"], pool, fail=fail, error=psycopg2.errors.DivisionByZero)
            checked_out = len(pool._used)  # type: ignore[attr-defined]
            assert checked_out == (1 if label == "leaky" and fail else 0)
        finally:
            pool.closeall()


@NORMAL_AND_RAISING
def test_psycopg3_closing_keeps_uncommitted_work_uncommitted(
    pg_dsn: str, pg_sessions: Callable[[], int], pg_admin: dbservers.PgAdmin, pg_table: str, fail: bool
) -> None:
    """The safe fix for a commits-then-closes driver is ``closing``: no commit is added."""
    tracker = Tracker(psycopg)
    code = versions("postgres.py", psycopg=tracker)
    assert code.forms["pg3_add_uncommitted"] == "closing"
    try:
        error = psycopg.errors.DivisionByZero
        _call(code.leaky["pg3_add_uncommitted"], pg_dsn, pg_table, 10, fail=fail, error=error)
        assert _settled(pg_sessions, 1) == 1
        close_all(tracker)
        _call(code.fixed["pg3_add_uncommitted"], pg_dsn, pg_table, 11, fail=fail, error=error)
        assert _settled(pg_sessions, 0) == 0
        assert _pg_rows(pg_admin, pg_table) == []  # neither version committed
    finally:
        close_all(tracker)


def test_psycopg3_plain_with_is_unsafe_because_it_commits(pg_dsn: str, pg_admin: dbservers.PgAdmin,
                                                          pg_table: str) -> None:
    code = versions("postgres.py", unsafe=True)
    assert code.forms["pg3_add_uncommitted"] == "with"
    code.fixed["pg3_add_uncommitted"](pg_dsn, pg_table, 10)
    assert _pg_rows(pg_admin, pg_table) == [10]  # a commit the original never made


@NORMAL_AND_RAISING
def test_psycopg3_with_when_every_path_commits(
    pg_dsn: str, pg_sessions: Callable[[], int], pg_admin: dbservers.PgAdmin, pg_table: str, fail: bool
) -> None:
    tracker = Tracker(psycopg)
    code = versions("postgres.py", psycopg=tracker)
    assert code.forms["pg3_save"] == "with"
    committed = {}
    try:
        for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
            pg_admin.execute(f"DELETE FROM {pg_table}")
            _call(namespace["pg3_save"], pg_dsn, pg_table, 10, fail=fail, error=psycopg.errors.DivisionByZero)
            committed[label] = _pg_rows(pg_admin, pg_table)
            leaked = 1 if label == "leaky" and fail else 0
            assert _settled(pg_sessions, leaked) == leaked
            close_all(tracker)
    finally:
        close_all(tracker)
    assert committed["leaky"] == committed["fixed"] == ([] if fail else [10])


@NORMAL_AND_RAISING
def test_psycopg_pool_checkout_is_returned(pg_dsn: str, fail: bool) -> None:
    code = versions("postgres.py")
    assert code.forms["pool3_fetch"] == "pool-try-finally"
    for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
        with psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=1, open=True) as pool:
            pool.wait()
            _call(namespace["pool3_fetch"], pool, fail=fail, error=psycopg.errors.DivisionByZero)
            assert pool.get_stats()["pool_available"] == (0 if label == "leaky" and fail else 1)


@NORMAL_AND_RAISING
def test_psycopg3_async_forms(pg_dsn: str, pg_sessions: Callable[[], int], pg_admin: dbservers.PgAdmin,
                              pg_table: str, fail: bool) -> None:
    """``async with await`` where every path commits, ``try/finally: await conn.close()`` otherwise."""
    connect = Tracker(psycopg.AsyncConnection)
    tracker = Tracker(psycopg, AsyncConnection=connect)
    code = versions("postgres.py", psycopg=tracker)
    assert code.forms["pg3_async_save"] == "async-with-await"
    assert code.forms["pg3_async_peek"] == "try-finally"

    async def scenario() -> dict[str, list[int]]:
        committed = {}
        for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
            pg_admin.execute(f"DELETE FROM {pg_table}")
            for name, args in (("pg3_async_save", (pg_dsn, pg_table, 10)), ("pg3_async_peek", (pg_dsn,))):
                if fail:
                    with pytest.raises(psycopg.errors.DivisionByZero):
                        await namespace[name](*args, fail=True)
                else:
                    await namespace[name](*args)
            committed[label] = _pg_rows(pg_admin, pg_table)
            leaked = (2 if fail else 1) if label == "leaky" else 0  # peek never closes; save only on error
            assert _settled(pg_sessions, leaked) == leaked
            for conn in connect.opened:
                await conn.close()
            assert _settled(pg_sessions, 0) == 0
        return committed

    committed = asyncio.run(scenario())
    assert committed["leaky"] == committed["fixed"] == ([] if fail else [10])


# ---------------------------------------------------------------------------------------------- MariaDB


@pytest.fixture
def mysql_table(mysql_admin: dbservers.MysqlAdmin, mysql_params: dict[str, Any]) -> Iterator[str]:
    name = dbservers.unique_tag("fix", length=30)
    mysql_admin.execute(f"CREATE TABLE {name} (x INT) ENGINE=InnoDB")
    yield name
    mysql_admin.kill_sessions(mysql_params["user"])
    mysql_admin.execute(f"DROP TABLE IF EXISTS {name}")


def _mysql_rows(admin: dbservers.MysqlAdmin, table: str) -> list[int]:
    with admin.conn.cursor() as cur:
        cur.execute(f"SELECT x FROM {table} ORDER BY x")
        return [x for (x,) in cur.fetchall()]


@NORMAL_AND_RAISING
def test_pymysql_with_closes(mysql_params: dict[str, Any], mysql_sessions: Callable[[], int],
                             fail: bool) -> None:
    tracker = Tracker(pymysql)
    code = versions("mariadb.py", pymysql=tracker)
    assert code.forms["pymysql_never_closed"] == "with"
    try:
        _call(code.leaky["pymysql_never_closed"], mysql_params, fail=fail, error=pymysql.err.ProgrammingError)
        assert _settled(mysql_sessions, 1) == 1
        close_all(tracker)
        assert _settled(mysql_sessions, 0) == 0
        _call(code.fixed["pymysql_never_closed"], mysql_params, fail=fail, error=pymysql.err.ProgrammingError)
        assert _settled(mysql_sessions, 0) == 0
    finally:
        close_all(tracker)


@NORMAL_AND_RAISING
def test_pymysql_exception_path_keeps_committed_data(
    mysql_params: dict[str, Any], mysql_sessions: Callable[[], int], mysql_admin: dbservers.MysqlAdmin,
    mysql_table: str, fail: bool
) -> None:
    tracker = Tracker(pymysql)
    code = versions("mariadb.py", pymysql=tracker)
    assert code.forms["pymysql_add"] == "with"
    committed = {}
    try:
        for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
            mysql_admin.execute(f"DELETE FROM {mysql_table}")
            _call(namespace["pymysql_add"], mysql_params, mysql_table, 10, fail=fail,
                  error=pymysql.err.ProgrammingError)
            leaked = 1 if label == "leaky" and fail else 0
            assert _settled(mysql_sessions, leaked) == leaked
            close_all(tracker)  # the leaked one rolls back its insert as it closes
            assert _settled(mysql_sessions, 0) == 0
            committed[label] = _mysql_rows(mysql_admin, mysql_table)
    finally:
        close_all(tracker)
    assert committed["leaky"] == committed["fixed"] == ([] if fail else [10])


@NORMAL_AND_RAISING
def test_mysql_connector_sync_and_async(mysql_params: dict[str, Any], mysql_sessions: Callable[[], int],
                                        fail: bool) -> None:
    aio = Tracker(mysql.connector.aio)
    connector = Tracker(mysql.connector, aio=aio)
    tracker = Tracker(mysql, tracked=(), connector=connector)
    code = versions("mariadb.py", mysql=tracker)
    assert code.forms["connector_never_closed"] == "with"
    assert code.forms["connector_aio_never_closed"] == "async-with-await"
    error = mysql.connector.errors.ProgrammingError
    try:
        for label, namespace in (("leaky", code.leaky), ("fixed", code.fixed)):
            _call(namespace["connector_never_closed"], mysql_params, fail=fail, error=error)
            leaked = 1 if label == "leaky" else 0
            assert _settled(mysql_sessions, leaked) == leaked
            close_all(connector)
            assert _settled(mysql_sessions, 0) == 0

            async def run_async(func: Callable[..., Any] = namespace["connector_aio_never_closed"],
                                leaked: int = leaked) -> None:
                params = {**mysql_params, "ssl_disabled": True}  # the aio client trips on a non-TLS socket
                if fail:
                    with pytest.raises(error):
                        await func(params, fail=True)
                else:
                    await func(params)
                assert _settled(mysql_sessions, leaked) == leaked
                for conn in aio.opened:
                    await conn.close()
                aio.opened.clear()

            asyncio.run(run_async())
            assert _settled(mysql_sessions, 0) == 0
    finally:
        close_all(connector)

