"""Per-tenant reservation databases on PostgreSQL (psycopg2): the nightly jobs and the tenant report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager

import psycopg2

from .settings import TENANT_DSNS


def expire_reservations() -> None:
    # LEAK: each iteration rebinds "conn"; the close() after the loop closes the last tenant's only
    for dsn in TENANT_DSNS:
        conn = psycopg2.connect(dsn)
        cur = conn.cursor()
        cur.execute("DELETE FROM reservations WHERE expires_at < now()")
        conn.commit()
    conn.close()


def vacuum_reservations() -> None:
    # correct: one connection per tenant, closed before the next one is opened
    for dsn in TENANT_DSNS:
        with closing(psycopg2.connect(dsn)) as conn:
            conn.autocommit = True  # VACUUM cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE reservations")


def tenant_report(dsn: str) -> dict[str, int]:
    # LEAK: any failing query (a timeout, a missing table in a new tenant) skips the close()
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    cur.execute("SELECT status, count(*) FROM reservations GROUP BY status")
    report = dict(cur.fetchall())
    conn.close()
    return report


def reserved_quantity(dsn: str, sku: str) -> int:
    # correct: closing() for the connection (its own "with" only ends the transaction),
    # the cursor's "with" closes the cursor
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(qty), 0) FROM reservations WHERE sku = %s", (sku,))
        (qty,) = cur.fetchone()
        return qty


@contextmanager
def tenant_transaction(dsn: str) -> Iterator[psycopg2.extensions.connection]:
    # LEAK: when the caller's with-block raises, the exception comes out of the yield
    # and the close() below never runs
    conn = psycopg2.connect(dsn)
    yield conn
    conn.commit()
    conn.close()


@contextmanager
def tenant_cursor(dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    # correct: the close() is in a finally, so it runs when the caller's block raises
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:  # commit on success, rollback on error
            yield cur
    finally:
        conn.close()


def release_reservation(dsn: str, reservation_id: int) -> None:
    with tenant_transaction(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM reservations WHERE id = %s", (reservation_id,))
