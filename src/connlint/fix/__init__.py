"""``connlint fix``: rewrite leaks into ``with``/``try``-``finally`` forms that close the resource.

This module only answers cheap questions about a finding (no LibCST import, safe on the check path);
the rewriting lives in ``engine`` (text in, text out), ``writer`` (files) and ``codemod`` (LibCST).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connlint.checker import Finding

SAFE, UNSAFE = "safe", "unsafe"

# codes whose finding a rewrite can close; CNL901 (module level) has no local scope to close it in
FIXABLE_CODES = frozenset(
    {"CNL001", "CNL002", "CNL003", "CNL004", "CNL005", "CNL006", "CNL007", "CNL101", "CNL102"}
)
_FORMS = frozenset({"with", "closing", "async-with", "async-with-await", "try-finally", "pool-try-finally"})

# the "Fix safety" paragraph of each rule's documentation
FIX_SAFETY: dict[str, str] = {
    "CNL001": (
        "The fix is safe. `conn = f(...)` ... `conn.close()` becomes `with f(...) as conn:` when the "
        "driver's `with` closes the connection, `with contextlib.closing(f(...)) as conn:` when its `with` "
        "only ends a transaction (sqlite3, psycopg2, pyodbc) or commits (psycopg 3, snowflake: plain `with` "
        "only when every path already commits, otherwise under `--unsafe-fixes`), `async with` / `async with "
        "await` for async drivers, and `try`/`finally` for asyncpg connections and pool checkouts. The block "
        "ends after the last statement that uses the resource or anything obtained from it. No fix is "
        "offered when the resource or something obtained from it is returned, yielded or stored, when the "
        "name is rebound, deleted, global or used by a nested function, or is used outside the block."
    ),
    "CNL002": "The fix is safe; it is the one of CNL001, and returns inside the block stay inside it.",
    "CNL003": (
        "The fix is safe. `with sqlite3.connect(p) as conn:` becomes "
        "`with closing(sqlite3.connect(p)) as conn, conn:`, which keeps the commit on success and also "
        "closes; `closing(...)` alone would drop the commit. A pool checkout used as `with pool.getconn() as "
        "conn:` becomes `conn = pool.getconn()` and `try: with conn: ... finally: pool.putconn(conn)`. No "
        "fix when the connection is used after the block."
    ),
    "CNL004": (
        "The fix is safe when the name is bound once (the loop case: the resource is acquired again in the "
        "next iteration); it is then the one of CNL001. Two different assignments are left to you."
    ),
    "CNL005": "The fix is safe: `try`/`finally: pool.putconn(conn)`, or the pool's own `with`/`async with`.",
    "CNL006": (
        "The fix is safe: the un-awaited `conn.close()` is removed and the resource is closed by "
        "`async with` or by `await conn.close()` in a `finally`."
    ),
    "CNL007": (
        "The fix is unsafe (applied with `--unsafe-fixes`): `return conn` becomes `yield conn` inside a "
        "`with` block, so the resource is now closed at teardown; code that keeps using it after the test "
        "ends would break."
    ),
    "CNL101": (
        "The fix is safe: the existing close moves into the exit of a `with` block (or a `finally`); closes "
        "directly before a `return`/`raise` in the block are removed."
    ),
    "CNL102": "The fix is safe: the `yield` moves into a `with` block that closes the resource.",
    "CNL901": "No fix: a module-level connection has no block to close it in.",
}
NO_FIX_SAFETY = "No fix: `connlint fix` leaves these findings to you."


def fix_safety(code: str) -> str:
    """The "Fix safety" paragraph for a rule's documentation."""
    return FIX_SAFETY.get(code, NO_FIX_SAFETY)


def fix_applicability(finding: Finding) -> str | None:
    """``"safe"``/``"unsafe"`` when a fix form exists for this finding's rule and API, else ``None``.

    Cheap (looks only at the finding). Whether the code around it has a provably safe shape is decided
    when fixing; ``engine.plan_text`` gives that exact answer at the cost of a LibCST parse.
    """
    leak = finding.leak
    if leak is None or finding.code not in FIXABLE_CODES or not leak.var or leak.function_line == 0:
        return None
    api = leak.api
    if leak.via_with:
        if api.is_pool_checkout:
            return SAFE if api.pool_release else None
        return SAFE if api.context_manager == "transaction-only" else None
    if api.fix not in _FORMS:
        return None
    return UNSAFE if finding.code == "CNL007" else SAFE


def fix_available(finding: Finding) -> bool:
    """Whether ``connlint fix`` has a fix form for this finding (safe or unsafe); see
    ``fix_applicability``."""
    return fix_applicability(finding) is not None


__all__ = [
    "FIXABLE_CODES", "FIX_SAFETY", "SAFE", "UNSAFE", "fix_applicability", "fix_available", "fix_safety",
]
