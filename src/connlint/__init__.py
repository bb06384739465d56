"""connlint: find database connections, cursors, sessions and pool checkouts that leak."""

__version__ = "0.1.0"
