"""The operators' command line: ``python -m inventory.cli import FILE.csv | export FILE.csv | health``."""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
from contextlib import closing

from . import products
from .settings import DB_PATH


def cmd_import(path: str) -> int:
    with open(path, newline="") as fh:
        rows = [(r["sku"], r["name"], int(r["on_hand"])) for r in csv.DictReader(fh)]
    try:
        count = products.import_rows(rows)
    except products.ValidationError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    print(f"imported {count} products")
    return 0


def cmd_export(path: str) -> int:
    # correct: the connection is closed by closing(), the file by its own "with"
    with closing(sqlite3.connect(DB_PATH)) as conn, open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "name", "on_hand"])
        writer.writerows(conn.execute("SELECT sku, name, on_hand FROM products ORDER BY sku"))
    return 0


def cmd_health() -> int:
    # LEAK: products.connect() is a factory of another module; the caller owns what it returns
    conn = products.connect()
    conn.execute("SELECT 1 FROM products LIMIT 1")
    print("ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inventory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("import").add_argument("path")
    sub.add_parser("export").add_argument("path")
    sub.add_parser("health")
    args = parser.parse_args(argv)
    if args.command == "import":
        return cmd_import(args.path)
    if args.command == "export":
        return cmd_export(args.path)
    return cmd_health()


if __name__ == "__main__":
    sys.exit(main())
