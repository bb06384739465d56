"""The catalog's context-manager claims, checked against the real drivers.

Every ``[[resource]]`` record of a driver the test extra installs (sqlite3, duckdb, psycopg2, psycopg,
psycopg_pool, PyMySQL, mysql-connector) has a probe below. A probe runs the driver, does some
uncommitted work inside ``with x:`` / ``async with x:``, and reports what leaving the block actually
did (closed? committed? returned to the pool?). :meth:`Observed.meaning` turns that into one of the
catalog's ``context_manager`` values and the test compares it with what the catalog record says, so the
expectations come from ``apis.toml``, never from this file.

Server drivers are judged from the server side: sessions are counted in ``pg_stat_activity`` /
``information_schema.processlist`` before, inside and after the block (see tests/dbservers.py), and
"committed" means another session sees the row afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dbservers
import pytest

from connlint.catalog import CONTEXT_MANAGER_VALUES, default_catalog

CATALOG = default_catalog()


@dataclass
class Observed:
    """What leaving ``with x:`` did to ``x``."""

    has_cm: bool
    closed: bool | None = None  # x is unusable afterwards (server drivers: its server session is gone)
    committed: bool | None = None  # work done inside the block is visible to another session afterwards
    returned_to_pool: bool | None = None  # the pool can hand the connection out again
    evidence: list[str] = field(default_factory=list)

    def meaning(self) -> str:
        if not self.has_cm:
            return "none"
        if self.returned_to_pool:
            return "returns-to-pool"
        if self.closed:
            return "commits-then-closes" if self.committed else "closes"
        if self.committed:
            return "transaction-only"
        return "does nothing (stays open, does not commit)"

    def note(self, text: str) -> None:
        self.evidence.append(text)


def check_claim(api: str, probe: Callable[[], Observed]) -> None:
    record = CATALOG.resources[api]
    claim = record.context_manager
    assert claim in CONTEXT_MANAGER_VALUES
    observed = probe()
    assert observed.meaning() == claim, (
        f"catalog: leaving `with` on {api} -> {claim!r}; the real driver -> {observed.meaning()!r}\n"
        f"observed: {observed}"
    )


def has_sync_cm(obj: Any) -> bool:
    return hasattr(type(obj), "__enter__") and hasattr(type(obj), "__exit__")


def has_async_cm(obj: Any) -> bool:
    return hasattr(type(obj), "__aenter__") and hasattr(type(obj), "__aexit__")


def unusable(run: Callable[[], Any]) -> bool:
    """True if using the object raises (how a closed connection/cursor behaves in every driver here)."""
    try:
        run()
    except Exception:
        return True
    return False


async def aunusable(run: Callable[[], Any]) -> bool:
    try:
        await run()
    except Exception:
        return True
    return False


def _same_session_count(count: Callable[[], int], expected: int, what: str) -> None:
    """Sanity check on the measuring device itself, not on the claim."""
    actual = count()
    assert actual == expected, (
        f"session counting is off: expected {expected} server sessions {what}, saw {actual}"
    )


def server_closed(obs: Observed, count: Callable[[], int], before: int, client_closed: bool) -> bool:
    """Did the block's exit end the server session? Cross-checked with the client's own flag."""
    after = dbservers.wait_for(count, before, timeout=3.0)
    obs.note(f"server sessions: before={before}, after with={after}; client says closed={client_closed}")
    gone = after == before
    assert gone == client_closed, (
        f"server and client disagree about the connection being closed: {obs.evidence}"
    )
    return gone


# ============================================================================================ embedded


def probe_sqlite3_connect(tmp_path: Path) -> Observed:
    path = tmp_path / "claims.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (x INTEGER)")
        setup.commit()
    conn = sqlite3.connect(path)
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            entered.execute("INSERT INTO t VALUES (1)")  # opens an implicit transaction
        obs.closed = unusable(lambda: conn.execute("SELECT 1").fetchall())
        with contextlib.closing(sqlite3.connect(path)) as other:
            obs.committed = other.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    finally:
        conn.close()
    return obs


def probe_sqlite3_cursor(tmp_path: Path) -> Observed:
    with contextlib.closing(sqlite3.connect(tmp_path / "claims.sqlite3")) as conn:
        cur = conn.cursor()
        try:
            obs = Observed(has_cm=has_sync_cm(cur))
            try:
                with cur:  # type: ignore[attr-defined]
                    pass
            except (TypeError, AttributeError) as exc:
                obs.note(f"`with cursor:` raised {type(exc).__name__}: {exc}")
                obs.has_cm = False
            else:
                obs.has_cm = True
                obs.closed = unusable(lambda: cur.execute("SELECT 1").fetchall())
        finally:
            cur.close()
    return obs


def _duckdb_setup(path: Path) -> None:
    import duckdb

    with contextlib.closing(duckdb.connect(str(path))) as setup:
        setup.execute("CREATE TABLE t (x INTEGER)")


def _duckdb_rows(path: Path) -> int:
    import duckdb

    with contextlib.closing(duckdb.connect(str(path))) as other:
        return int(other.execute("SELECT count(*) FROM t").fetchone()[0])


def probe_duckdb_connect(tmp_path: Path) -> Observed:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "claims.duckdb"
    _duckdb_setup(path)
    conn = duckdb.connect(str(path))
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            entered.execute("BEGIN TRANSACTION")  # duckdb autocommits otherwise
            entered.execute("INSERT INTO t VALUES (1)")
        obs.closed = unusable(lambda: conn.execute("SELECT 1").fetchall())
        obs.committed = _duckdb_rows(path) == 1
    finally:
        conn.close()
    return obs


def probe_duckdb_cursor(tmp_path: Path) -> Observed:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "claims.duckdb"
    _duckdb_setup(path)
    with contextlib.closing(duckdb.connect(str(path))) as parent:
        cur = parent.cursor()
        try:
            obs = Observed(has_cm=has_sync_cm(cur))
            with cur as entered:
                entered.execute("BEGIN TRANSACTION")
                entered.execute("INSERT INTO t VALUES (1)")
            obs.closed = unusable(lambda: cur.execute("SELECT 1").fetchall())
            obs.note(f"parent still usable: {not unusable(lambda: parent.execute('SELECT 1').fetchall())}")
            obs.committed = _duckdb_rows(path) == 1
        finally:
            cur.close()
    return obs


EMBEDDED: dict[str, Callable[[Path], Observed]] = {
    "sqlite3.connect": probe_sqlite3_connect,
    "sqlite3.Connection.cursor": probe_sqlite3_cursor,
    "duckdb.connect": probe_duckdb_connect,
    "duckdb.DuckDBPyConnection.cursor": probe_duckdb_cursor,
}


@pytest.mark.parametrize("api", sorted(EMBEDDED))
def test_embedded_claim(api: str, tmp_path: Path) -> None:
    check_claim(api, lambda: EMBEDDED[api](tmp_path))


# ============================================================================================ PostgreSQL


def pg_application_name(dsn: str) -> str:
    from psycopg2.extensions import parse_dsn

    return str(parse_dsn(dsn)["application_name"])


@dataclass
class Pg:
    dsn: str
    sessions: Callable[[], int]
    admin: dbservers.PgAdmin
    table: str

    @property
    def insert(self) -> str:
        return f"INSERT INTO {self.table} VALUES (1)"

    def rows(self) -> int:
        return int(self.admin.scalar(f"SELECT count(*) FROM {self.table}"))


@pytest.fixture
def pg(pg_dsn: str, pg_sessions: Callable[[], int], pg_admin: dbservers.PgAdmin) -> Iterator[Pg]:
    table = dbservers.unique_tag("connlint_t")
    pg_admin.execute(f"CREATE TABLE {table} (x integer)")
    try:
        yield Pg(pg_dsn, pg_sessions, pg_admin, table)
    finally:
        # a probe that failed half-way may still hold a transaction on the table: end its sessions first
        pg_admin.terminate(pg_application_name(pg_dsn))
        pg_admin.execute(f"DROP TABLE IF EXISTS {table}")


def probe_psycopg2_connect(pg: Pg) -> Observed:
    psycopg2 = pytest.importorskip("psycopg2")
    before = pg.sessions()
    conn = psycopg2.connect(pg.dsn)
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            _same_session_count(pg.sessions, before + 1, "inside the block")
            with contextlib.closing(entered.cursor()) as cur:
                cur.execute(pg.insert)
        obs.note(f"conn.closed={conn.closed}")
        obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed != 0)
        obs.committed = pg.rows() == 1
    finally:
        conn.close()
    return obs


def probe_psycopg2_cursor(pg: Pg) -> Observed:
    psycopg2 = pytest.importorskip("psycopg2")
    before = pg.sessions()
    conn = psycopg2.connect(pg.dsn)
    try:
        cur = conn.cursor()
        obs = Observed(has_cm=has_sync_cm(cur))
        with cur as entered:
            entered.execute(pg.insert)
        obs.note(f"cur.closed={cur.closed}")
        obs.closed = cur.closed and unusable(lambda: cur.execute("SELECT 1"))
        _same_session_count(
            pg.sessions, before + 1, "after the cursor's block (the connection is still open)"
        )
        obs.committed = pg.rows() == 1
    finally:
        conn.close()
    _same_session_count(lambda: dbservers.wait_for(pg.sessions, before), before, "after conn.close()")
    return obs


def probe_psycopg2_pool_getconn(pg: Pg) -> Observed:
    pytest.importorskip("psycopg2")
    from psycopg2 import pool as pg2pool

    before = pg.sessions()
    pool = pg2pool.SimpleConnectionPool(1, 1, pg.dsn)
    try:
        conn = pool.getconn()
        _same_session_count(pg.sessions, before + 1, "with one pooled connection")
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered, contextlib.closing(entered.cursor()) as cur:
            cur.execute(pg.insert)
        obs.note(f"conn.closed={conn.closed}")
        obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed != 0)
        obs.committed = pg.rows() == 1
        try:
            again = pool.getconn()  # maxconn=1: only possible if the block gave the connection back
        except pg2pool.PoolError as exc:
            obs.note(f"pool.getconn() after the block: {type(exc).__name__}: {exc}")
            obs.returned_to_pool = False
        else:
            obs.returned_to_pool = True
            pool.putconn(again)
        if not obs.returned_to_pool:
            pool.putconn(conn)
    finally:
        pool.closeall()
    return obs


def probe_psycopg_connect(pg: Pg) -> Observed:
    psycopg = pytest.importorskip("psycopg")
    before = pg.sessions()
    conn = psycopg.connect(pg.dsn)
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            _same_session_count(pg.sessions, before + 1, "inside the block")
            entered.execute(pg.insert)
        obs.note(f"conn.closed={conn.closed}")
        obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed)
        obs.committed = pg.rows() == 1
    finally:
        conn.close()
    return obs


def probe_psycopg_cursor(pg: Pg) -> Observed:
    psycopg = pytest.importorskip("psycopg")
    before = pg.sessions()
    conn = psycopg.connect(pg.dsn)
    try:
        cur = conn.cursor()
        obs = Observed(has_cm=has_sync_cm(cur))
        with cur as entered:
            entered.execute(pg.insert)
        obs.note(f"cur.closed={cur.closed}")
        obs.closed = cur.closed and unusable(lambda: cur.execute("SELECT 1"))
        _same_session_count(
            pg.sessions, before + 1, "after the cursor's block (the connection is still open)"
        )
        obs.committed = pg.rows() == 1
    finally:
        conn.close()
    return obs


def probe_psycopg_pool_getconn(pg: Pg) -> Observed:
    pytest.importorskip("psycopg")
    psycopg_pool = pytest.importorskip("psycopg_pool")
    before = pg.sessions()
    pool = psycopg_pool.ConnectionPool(pg.dsn, min_size=1, max_size=1, open=False)
    pool.open(wait=True, timeout=10)
    try:
        conn = pool.getconn()
        _same_session_count(pg.sessions, before + 1, "with one pooled connection")
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            entered.execute(pg.insert)
        obs.note(f"conn.closed={conn.closed}")
        obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed)
        obs.committed = pg.rows() == 1
        available = pool.get_stats().get("pool_available", 0)
        obs.note(f"pool_available after the block: {available}")
        obs.returned_to_pool = available > 0
        if not obs.returned_to_pool:
            pool.putconn(conn)
    finally:
        pool.close()
    return obs


def probe_psycopg_async_connect(pg: Pg) -> Observed:
    psycopg = pytest.importorskip("psycopg")

    async def run() -> Observed:
        before = pg.sessions()
        conn = await psycopg.AsyncConnection.connect(pg.dsn)
        try:
            obs = Observed(has_cm=has_async_cm(conn))
            async with conn as entered:
                _same_session_count(pg.sessions, before + 1, "inside the block")
                await entered.execute(pg.insert)
            obs.note(f"conn.closed={conn.closed}")
            obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed)
            obs.committed = pg.rows() == 1
        finally:
            await conn.close()
        return obs

    return asyncio.run(run())


def probe_psycopg_async_cursor(pg: Pg) -> Observed:
    psycopg = pytest.importorskip("psycopg")

    async def run() -> Observed:
        before = pg.sessions()
        conn = await psycopg.AsyncConnection.connect(pg.dsn)
        try:
            cur = conn.cursor()
            obs = Observed(has_cm=has_async_cm(cur))
            async with cur as entered:
                await entered.execute(pg.insert)
            obs.note(f"cur.closed={cur.closed}")
            obs.closed = cur.closed and await aunusable(lambda: cur.execute("SELECT 1"))
            _same_session_count(pg.sessions, before + 1, "after the cursor's block")
            obs.committed = pg.rows() == 1
        finally:
            await conn.close()
        return obs

    return asyncio.run(run())


def probe_psycopg_async_pool_getconn(pg: Pg) -> Observed:
    pytest.importorskip("psycopg")
    psycopg_pool = pytest.importorskip("psycopg_pool")

    async def run() -> Observed:
        before = pg.sessions()
        pool = psycopg_pool.AsyncConnectionPool(pg.dsn, min_size=1, max_size=1, open=False)
        await pool.open(wait=True, timeout=10)
        try:
            conn = await pool.getconn()
            _same_session_count(pg.sessions, before + 1, "with one pooled connection")
            obs = Observed(has_cm=has_async_cm(conn))
            async with conn as entered:
                await entered.execute(pg.insert)
            obs.note(f"conn.closed={conn.closed}")
            obs.closed = server_closed(obs, pg.sessions, before, client_closed=conn.closed)
            obs.committed = pg.rows() == 1
            available = pool.get_stats().get("pool_available", 0)
            obs.note(f"pool_available after the block: {available}")
            obs.returned_to_pool = available > 0
            if not obs.returned_to_pool:
                await pool.putconn(conn)
        finally:
            await pool.close()
        return obs

    return asyncio.run(run())


POSTGRES: dict[str, Callable[[Pg], Observed]] = {
    "psycopg2.connect": probe_psycopg2_connect,
    "psycopg2.extensions.connection.cursor": probe_psycopg2_cursor,
    "psycopg2.pool.AbstractConnectionPool.getconn": probe_psycopg2_pool_getconn,
    "psycopg.connect": probe_psycopg_connect,
    "psycopg.Connection.cursor": probe_psycopg_cursor,
    "psycopg_pool.ConnectionPool.getconn": probe_psycopg_pool_getconn,
    "psycopg.AsyncConnection.connect": probe_psycopg_async_connect,
    "psycopg.AsyncConnection.cursor": probe_psycopg_async_cursor,
    "psycopg_pool.AsyncConnectionPool.getconn": probe_psycopg_async_pool_getconn,
}


@pytest.mark.db
@pytest.mark.parametrize("api", sorted(POSTGRES))
def test_postgres_claim(api: str, pg: Pg) -> None:
    check_claim(api, lambda: POSTGRES[api](pg))


# ============================================================================================ MariaDB


@dataclass
class My:
    params: dict[str, Any]
    sessions: Callable[[], int]
    admin: dbservers.MysqlAdmin
    table: str

    @property
    def insert(self) -> str:
        return f"INSERT INTO {self.table} VALUES (1)"

    def rows(self) -> int:
        return int(self.admin.scalar(f"SELECT count(*) FROM {self.table}"))


@pytest.fixture
def my(
    mysql_params: dict[str, Any], mysql_sessions: Callable[[], int], mysql_admin: dbservers.MysqlAdmin
) -> Iterator[My]:
    table = dbservers.unique_tag("connlint_t")
    mysql_admin.execute(f"CREATE TABLE {table} (x INT) ENGINE=InnoDB")
    try:
        yield My(dict(mysql_params), mysql_sessions, mysql_admin, table)
    finally:
        mysql_admin.kill_sessions(mysql_params["user"])  # a half-finished probe may hold a metadata lock
        mysql_admin.execute(f"DROP TABLE IF EXISTS {table}")


def probe_pymysql_connect(my: My) -> Observed:
    pymysql = pytest.importorskip("pymysql")
    before = my.sessions()
    conn = pymysql.connect(**my.params)  # autocommit is off by default
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            _same_session_count(my.sessions, before + 1, "inside the block")
            with entered.cursor() as cur:
                cur.execute(my.insert)
        obs.note(f"conn.open={conn.open}")
        obs.closed = server_closed(obs, my.sessions, before, client_closed=not conn.open)
        obs.committed = my.rows() == 1
    finally:
        if conn.open:
            conn.close()
    return obs


def probe_pymysql_cursor(my: My) -> Observed:
    pymysql = pytest.importorskip("pymysql")
    before = my.sessions()
    conn = pymysql.connect(**my.params)
    try:
        cur = conn.cursor()
        obs = Observed(has_cm=has_sync_cm(cur))
        with cur as entered:
            entered.execute(my.insert)
        obs.closed = unusable(lambda: cur.execute("SELECT 1"))
        _same_session_count(
            my.sessions, before + 1, "after the cursor's block (the connection is still open)"
        )
        obs.committed = my.rows() == 1
    finally:
        conn.close()
    return obs


def _mysql_connector_params(my: My) -> dict[str, Any]:
    # pure-Python protocol either way; no TLS (Debian's MariaDB has have_ssl=DISABLED)
    return {**my.params, "ssl_disabled": True}


def probe_mysql_connector_connect(my: My) -> Observed:
    mysql_connector = pytest.importorskip("mysql.connector")
    before = my.sessions()
    conn = mysql_connector.connect(**_mysql_connector_params(my))
    try:
        obs = Observed(has_cm=has_sync_cm(conn))
        obs.note(f"connection class: {type(conn).__module__}.{type(conn).__qualname__}")
        with conn as entered:
            _same_session_count(my.sessions, before + 1, "inside the block")
            cur = entered.cursor()
            cur.execute(my.insert)
            cur.close()
        connected = conn.is_connected()
        obs.closed = server_closed(obs, my.sessions, before, client_closed=not connected)
        obs.committed = my.rows() == 1
    finally:
        conn.close()
    return obs


def probe_mysql_connector_cursor(my: My) -> Observed:
    mysql_connector = pytest.importorskip("mysql.connector")
    before = my.sessions()
    conn = mysql_connector.connect(**_mysql_connector_params(my))
    try:
        cur = conn.cursor()
        obs = Observed(has_cm=has_sync_cm(cur))
        with cur as entered:
            entered.execute(my.insert)
        obs.closed = unusable(lambda: cur.execute("SELECT 1"))
        _same_session_count(
            my.sessions, before + 1, "after the cursor's block (the connection is still open)"
        )
        obs.committed = my.rows() == 1
    finally:
        conn.close()
    return obs


def probe_mysql_connector_pool_get_connection(my: My) -> Observed:
    pytest.importorskip("mysql.connector")
    from mysql.connector import pooling

    before = my.sessions()
    pool = pooling.MySQLConnectionPool(
        pool_name=dbservers.unique_tag("cl_pool"), pool_size=1, **_mysql_connector_params(my)
    )
    try:
        conn = pool.get_connection()
        _same_session_count(my.sessions, before + 1, "with one pooled connection")
        obs = Observed(has_cm=has_sync_cm(conn))
        with conn as entered:
            cur = entered.cursor()
            cur.execute(my.insert)
            cur.close()
        after = dbservers.wait_for(my.sessions, before + 1)
        obs.note(f"server sessions after the block: {after} (the pool keeps its connection open)")
        obs.closed = after == before
        obs.committed = my.rows() == 1
        try:
            again = pool.get_connection()  # pool_size=1: only possible if the block gave it back
        except pooling.errors.PoolError as exc:
            obs.note(f"pool.get_connection() after the block: {type(exc).__name__}: {exc}")
            obs.returned_to_pool = False
        else:
            obs.returned_to_pool = True
            again.close()
    finally:
        remove = getattr(pool, "_remove_connections", None)  # no public way to close the pool
        if remove is not None:
            remove()
    return obs


def probe_mysql_connector_aio_connect(my: My) -> Observed:
    pytest.importorskip("mysql.connector")
    aio = pytest.importorskip("mysql.connector.aio")

    async def run() -> Observed:
        before = my.sessions()
        conn = await aio.connect(**_mysql_connector_params(my))
        try:
            obs = Observed(has_cm=has_async_cm(conn))
            async with conn as entered:
                _same_session_count(my.sessions, before + 1, "inside the block")
                cur = await entered.cursor()
                await cur.execute(my.insert)
                await cur.close()
            connected = await conn.is_connected()
            obs.closed = server_closed(obs, my.sessions, before, client_closed=not connected)
            obs.committed = my.rows() == 1
        finally:
            await conn.close()
        return obs

    return asyncio.run(run())


MYSQL: dict[str, Callable[[My], Observed]] = {
    "pymysql.connect": probe_pymysql_connect,
    "pymysql.connections.Connection.cursor": probe_pymysql_cursor,
    "mysql.connector.connect": probe_mysql_connector_connect,
    "mysql.connector.MySQLConnection.cursor": probe_mysql_connector_cursor,
    "mysql.connector.pooling.MySQLConnectionPool.get_connection": probe_mysql_connector_pool_get_connection,
    "mysql.connector.aio.connect": probe_mysql_connector_aio_connect,
}


@pytest.mark.db
@pytest.mark.parametrize("api", sorted(MYSQL))
def test_mysql_claim(api: str, my: My) -> None:
    check_claim(api, lambda: MYSQL[api](my))


# ============================================================================================ second release
#
# ``close_twice`` / ``exit_after_close``: what releasing an object that is already closed does. An
# opener makes a fresh object of the record's API and returns it with the clean-up of what it needed
# (the parent connection of a cursor, a pool); the probe closes the object and then releases it a
# second time, by ``close()`` or by leaving ``with obj:`` (the close runs inside the block).


Opened = tuple[Any, Callable[[], None]]


def second_release(open_: Callable[[], Opened], how: str) -> str:
    obj, cleanup = open_()
    try:
        try:
            if how == "close_twice":
                obj.close()
                obj.close()
            else:
                with obj:
                    obj.close()
        except Exception:
            return "raises"
        return "no-op"
    finally:
        cleanup()


def _child(parent: Any, make: Callable[[Any], Any]) -> Opened:
    return make(parent), parent.close


def _embedded_openers(tmp_path: Path) -> dict[str, Callable[[], Opened]]:
    import duckdb

    return {
        "sqlite3.connect": lambda: (sqlite3.connect(tmp_path / "twice.sqlite3"), lambda: None),
        "sqlite3.Connection.cursor": lambda: _child(sqlite3.connect(":memory:"), lambda c: c.cursor()),
        "duckdb.connect": lambda: (duckdb.connect(), lambda: None),
        "duckdb.DuckDBPyConnection.cursor": lambda: _child(duckdb.connect(), lambda c: c.cursor()),
    }


def _pg_openers(pg: Pg) -> dict[str, Callable[[], Opened]]:
    import psycopg
    import psycopg2

    return {
        "psycopg2.connect": lambda: (psycopg2.connect(pg.dsn), lambda: None),
        "psycopg2.extensions.connection.cursor": lambda: _child(psycopg2.connect(pg.dsn), lambda c: c.cursor()),
        "psycopg.connect": lambda: (psycopg.connect(pg.dsn), lambda: None),
        "psycopg.Connection.cursor": lambda: _child(psycopg.connect(pg.dsn), lambda c: c.cursor()),
    }


def _mysql_pooled(my: My) -> Opened:
    from mysql.connector import pooling

    # two connections in the pool, one of them checked out, so that a second return finds room
    pool = pooling.MySQLConnectionPool(pool_name=dbservers.unique_tag("cl_twice"), pool_size=2,
                                       **_mysql_connector_params(my))
    return pool.get_connection(), pool._remove_connections


def _mysql_openers(my: My) -> dict[str, Callable[[], Opened]]:
    import mysql.connector
    import pymysql

    def pymysql_cleanup(conn: Any) -> Callable[[], None]:
        return lambda: conn.close() if conn.open else None

    def pymysql_connect() -> Opened:
        conn = pymysql.connect(**my.params)
        return conn, pymysql_cleanup(conn)

    def pymysql_cursor() -> Opened:
        conn = pymysql.connect(**my.params)
        return conn.cursor(), pymysql_cleanup(conn)

    return {
        "pymysql.connect": pymysql_connect,
        "pymysql.connections.Connection.cursor": pymysql_cursor,
        "mysql.connector.connect": lambda: (mysql.connector.connect(**_mysql_connector_params(my)), lambda: None),
        "mysql.connector.MySQLConnection.cursor": lambda: _child(
            mysql.connector.connect(**_mysql_connector_params(my)), lambda c: c.cursor()),
        "mysql.connector.pooling.MySQLConnectionPool.get_connection": lambda: _mysql_pooled(my),
    }


def check_second_release(api: str, open_: Callable[[], Opened]) -> None:
    record = CATALOG.resources[api]
    facts = {"close_twice": record.close_twice, "exit_after_close": record.exit_after_close}
    assert facts["close_twice"] != "unknown", f"{api}: the catalog does not say what a second close() does"
    for how, claim in facts.items():
        if claim == "unknown":
            continue
        observed = second_release(open_, how)
        assert observed == claim, f"catalog: {how} on {api} -> {claim!r}; the real driver -> {observed!r}"


SECOND_RELEASE_EMBEDDED = ("sqlite3.connect", "sqlite3.Connection.cursor", "duckdb.connect",
                           "duckdb.DuckDBPyConnection.cursor")
SECOND_RELEASE_PG = ("psycopg2.connect", "psycopg2.extensions.connection.cursor", "psycopg.connect",
                     "psycopg.Connection.cursor")
SECOND_RELEASE_MYSQL = ("pymysql.connect", "pymysql.connections.Connection.cursor", "mysql.connector.connect",
                        "mysql.connector.MySQLConnection.cursor",
                        "mysql.connector.pooling.MySQLConnectionPool.get_connection")


@pytest.mark.parametrize("api", SECOND_RELEASE_EMBEDDED)
def test_embedded_second_release(api: str, tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    check_second_release(api, _embedded_openers(tmp_path)[api])


@pytest.mark.db
@pytest.mark.parametrize("api", SECOND_RELEASE_PG)
def test_postgres_second_release(api: str, pg: Pg) -> None:
    check_second_release(api, _pg_openers(pg)[api])


@pytest.mark.db
@pytest.mark.parametrize("api", SECOND_RELEASE_MYSQL)
def test_mysql_second_release(api: str, my: My) -> None:
    check_second_release(api, _mysql_openers(my)[api])


def test_the_fix_never_adds_a_release_that_raises() -> None:
    """The fix's own release is the ``with`` exit for its with-forms and close() for the others."""
    from connlint.catalog import WITH_FIXES

    for record in set(CATALOG.resources.values()):
        fact = record.exit_after_close if record.fix in WITH_FIXES else record.close_twice
        assert record.second_release_raises == (fact == "raises"), record.api
    assert CATALOG.resources["pymysql.connect"].second_release_raises
    assert not CATALOG.resources["sqlite3.connect"].second_release_raises  # closing(): close() twice is fine


# ============================================================================================ coverage

# the drivers the `test` extra installs: every catalog record for them must have a probe above
PROBED_DRIVERS = (
    "sqlite3.",
    "duckdb.",
    "psycopg2.",
    "psycopg.",
    "psycopg_pool.",
    "pymysql.",
    "mysql.connector.",
)


def test_every_claim_about_an_installed_driver_is_probed() -> None:
    records = {record.api for record in CATALOG.resources.values()}
    claimed = {api for api in records if api.startswith(PROBED_DRIVERS)}
    probed = set(EMBEDDED) | set(POSTGRES) | set(MYSQL)
    assert probed <= records, f"probes for APIs the catalog does not list: {sorted(probed - records)}"
    assert claimed <= probed, f"catalog claims nobody checks against the driver: {sorted(claimed - probed)}"
    twice = {api for api in records if CATALOG.resources[api].close_twice != "unknown"
             or CATALOG.resources[api].exit_after_close != "unknown"}
    run = set(SECOND_RELEASE_EMBEDDED) | set(SECOND_RELEASE_PG) | set(SECOND_RELEASE_MYSQL)
    read_in_source = {"MySQLdb.connect", "MySQLdb.connections.Connection.cursor", "oracledb.connect"}
    assert twice & {api for api in records if api.startswith(PROBED_DRIVERS)} <= run
    assert twice <= run | read_in_source, f"second-release facts nobody checked: {sorted(twice - run - read_in_source)}"
