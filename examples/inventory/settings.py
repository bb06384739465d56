"""Where the databases are. Read from the environment; nothing here connects."""

import os

# the product catalogue: one SQLite file per warehouse host
DB_PATH = os.environ.get("INVENTORY_DB", "/var/lib/inventory/catalogue.sqlite3")

# orders live in PostgreSQL, one database for the shop and one per tenant for reservations
ORDERS_DSN = os.environ.get("ORDERS_DSN", "dbname=orders host=db.internal user=inventory")
TENANT_DSNS = [dsn for dsn in os.environ.get("TENANT_DSNS", "").split(";") if dsn]

# reporting goes through SQLAlchemy
REPORTS_URL = os.environ.get("REPORTS_URL", "postgresql+psycopg2://reports@db.internal/orders")
