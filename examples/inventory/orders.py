"""Orders, on PostgreSQL through a psycopg2 connection pool shared by the web workers' threads."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg2
from psycopg2.pool import ThreadedConnectionPool

from .settings import ORDERS_DSN

log = logging.getLogger(__name__)

POOL = ThreadedConnectionPool(minconn=2, maxconn=20, dsn=ORDERS_DSN)


@dataclass(frozen=True)
class Order:
    order_id: str
    sku: str
    qty: int


def place_order(order: Order) -> bool:
    conn = POOL.getconn()
    cur = conn.cursor()
    try:
        cur.execute(
            "INSERT INTO orders (order_id, sku, qty) VALUES (%s, %s, %s)",
            (order.order_id, order.sku, order.qty),
        )
        conn.commit()
    except psycopg2.IntegrityError:
        # LEAK: a client retrying an order it already placed lands here, and the checkout
        # is never given back; after 20 retries every getconn() raises "pool exhausted"
        conn.rollback()
        log.info("duplicate order %s", order.order_id)
        return False
    POOL.putconn(conn)
    return True


def cancel_order(order_id: str) -> bool:
    # correct: the connection goes back to the pool on every path, exceptions included
    conn = POOL.getconn()
    try:
        with conn, conn.cursor() as cur:  # commit on success, rollback on error
            cur.execute(
                "UPDATE orders SET status = 'cancelled' WHERE order_id = %s AND status = 'open'",
                (order_id,),
            )
            return cur.rowcount == 1
    finally:
        POOL.putconn(conn)
