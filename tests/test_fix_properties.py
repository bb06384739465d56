"""Property tests: for generated leak shapes (drivers, bodies with branches, loops, early returns and
raises, closes or none, LF/CRLF, spaces/tabs), the fixed code compiles, re-checks without the fixed
findings, and a second fix changes nothing."""

from __future__ import annotations

import ast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connlint.catalog import default_catalog
from connlint.checker import Options
from connlint.fix.engine import fix_text
from connlint.runner import check_text

# (imports, acquisition, close, is async); {v} is the variable
DRIVERS = {
    "sqlite3": ("import sqlite3", "{v} = sqlite3.connect(path)", "{v}.close()", False),
    "duckdb": ("import duckdb", "{v} = duckdb.connect(path)", "{v}.close()", False),
    "psycopg": ("import psycopg", "{v} = psycopg.connect(path)", "{v}.close()", False),
    "psycopg2-pool": (
        "import psycopg2.pool\n\nPOOL = psycopg2.pool.SimpleConnectionPool(1, 2, '')",
        "{v} = POOL.getconn()", "POOL.putconn({v})", False,
    ),
    "asyncpg": ("import asyncpg", "{v} = await asyncpg.connect(path)", "await {v}.close()", True),
    "aiosqlite": ("import aiosqlite", "{v} = await aiosqlite.connect(path)", "await {v}.close()", True),
    "psycopg-async": (
        "import psycopg", "{v} = await psycopg.AsyncConnection.connect(path)", "await {v}.close()", True,
    ),
}

SYNC_STATEMENTS = [
    ["rows = {v}.execute('SELECT 1').fetchall()"],
    ["print({v})"],
    ["if flag:", "    return None"],
    ["if flag:", "    raise ValueError(flag)"],
    ["for i in range(3):", "    {v}.execute('SELECT 1')", "    if i == flag:", "        break"],
    ["try:", "    {v}.execute('SELECT 1')", "except Exception:", "    pass"],
    ["unrelated = 1"],
    ["{v}.commit()"],
    ["# a comment about the next line", "n = len(str(flag))"],
    [""],
]
ASYNC_STATEMENTS = [
    ["rows = await {v}.fetch('SELECT 1')"],
    ["print({v})"],
    ["if flag:", "    return None"],
    ["if flag:", "    raise ValueError(flag)"],
    ["unrelated = 1"],
    [""],
]


@st.composite
def leaky_modules(draw: st.DrawFn) -> str:
    driver = draw(st.sampled_from(sorted(DRIVERS)))
    imports, acquire, close, is_async = DRIVERS[driver]
    var = draw(st.sampled_from(["conn", "db", "c"]))
    indent = draw(st.sampled_from(["    ", "  ", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    pool = ASYNC_STATEMENTS if is_async else SYNC_STATEMENTS
    body = draw(st.lists(st.sampled_from(pool), max_size=4))
    closes = draw(st.booleans())
    ending = draw(st.sampled_from(["", "return 1", "return flag"]))
    lines = [*imports.split("\n"), "", ""]
    lines.append(f"{'async ' if is_async else ''}def work(path, flag):")
    lines.append(indent + acquire.format(v=var))
    for statement in body:
        for line in statement:
            lines.append(indent + line.format(v=var).replace("    ", indent) if line else "")
    if closes:
        lines.append(indent + close.format(v=var))
    if ending:
        lines.append(indent + ending)
    if lines[-1] == "" or lines[-1].endswith(":"):
        lines.append(indent + "pass")
    return newline.join(lines) + newline


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=leaky_modules(), unsafe=st.booleans())
def test_fixed_code_compiles_rechecks_clean_and_is_idempotent(source: str, unsafe: bool) -> None:
    compile(source, "<generated>", "exec")
    result = fix_text(source, unsafe=unsafe)
    assert result.error is None
    compile(result.text, "<generated>", "exec")
    after = check_text("<generated>", result.text, Options(), default_catalog()).findings
    if result.fixed:
        assert result.changed
        # one resource per generated function: once fixed, nothing is reported for its variable
        fixed_vars = {x.finding.leak.var for x in result.fixed if x.finding.leak is not None}
        assert not [f for f in after if f.leak is not None and f.leak.var in fixed_vars]
    else:
        assert result.text == source
    second = fix_text(result.text, unsafe=unsafe)
    assert second.text == result.text and not second.fixed
    newline = "\r\n" if "\r\n" in source else "\n"
    assert all(line.endswith(newline) for line in result.text.splitlines(keepends=True))
    ast.parse(result.text)
