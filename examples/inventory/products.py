"""The product catalogue, on SQLite: lookups for the shop and the nightly CSV import."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing

from .settings import DB_PATH


class ValidationError(ValueError):
    """A row the import cannot take."""


def connect() -> sqlite3.Connection:
    """A new connection to the catalogue. The caller closes it."""
    conn = sqlite3.connect(DB_PATH, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


def get_product(sku: str) -> sqlite3.Row | None:
    # correct: closing() closes the connection on every path
    with closing(connect()) as conn:
        return conn.execute(
            "SELECT sku, name, on_hand FROM products WHERE sku = ?", (sku,)
        ).fetchone()


def rename_product(sku: str, new_name: str) -> bool:
    conn = connect()
    row = conn.execute("SELECT name FROM products WHERE sku = ?", (sku,)).fetchone()
    if row is None or not new_name.strip():
        return False  # LEAK: the early return on a validation error skips the close()
    conn.execute("UPDATE products SET name = ? WHERE sku = ?", (new_name, sku))
    conn.commit()
    conn.close()
    return True


def add_stock(sku: str, qty: int) -> None:
    # LEAK: sqlite3's "with" commits or rolls back; it does not close the connection
    with sqlite3.connect(DB_PATH) as conn:
        conn.execute(
            "UPDATE products SET on_hand = on_hand + ? WHERE sku = ?", (qty, sku)
        )


def remove_stock(sku: str, qty: int) -> None:
    # correct: closing() closes, the inner "conn" commits on success and rolls back on error
    with closing(sqlite3.connect(DB_PATH)) as conn, conn:
        conn.execute(
            "UPDATE products SET on_hand = on_hand - ? WHERE sku = ?", (qty, sku)
        )


def import_rows(rows: Iterable[tuple[str, str, int]]) -> int:
    # correct: try/finally closes the connection whatever the rows contain
    conn = connect()
    try:
        count = 0
        with conn:  # one transaction for the whole file
            for sku, name, on_hand in rows:
                if not sku:
                    raise ValidationError("row without a SKU")
                conn.execute(
                    "INSERT OR REPLACE INTO products (sku, name, on_hand) VALUES (?, ?, ?)",
                    (sku, name, on_hand),
                )
                count += 1
        return count
    finally:
        conn.close()
