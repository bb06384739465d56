"""The loader of catalog/apis.toml: the fields about releasing twice, deferred constructions and
scope registries are read, checked and indexed."""

from __future__ import annotations

import ast

import pytest

from connlint.catalog import CatalogError, build_catalog, default_catalog
from connlint.checker import Options, check_tree

RECORD = {"api": "drv.connect", "kind": "connection", "returns": "drv.Connection", "release": ["close"],
          "context_manager": "closes", "fix": "with"}


def test_release_twice_facts_default_to_unknown_and_are_checked() -> None:
    api = build_catalog({"resource": [RECORD]}).resources["drv.connect"]
    assert (api.close_twice, api.exit_after_close) == ("unknown", "unknown")
    assert not api.second_release_raises
    raising = build_catalog({"resource": [{**RECORD, "exit_after_close": "raises"}]}).resources["drv.connect"]
    assert raising.second_release_raises  # fix = "with": the fix's release is leaving the block
    closing = build_catalog({"resource": [{**RECORD, "fix": "closing", "exit_after_close": "raises"}]})
    assert not closing.resources["drv.connect"].second_release_raises  # closing() releases with close()
    with pytest.raises(CatalogError, match="close_twice"):
        build_catalog({"resource": [{**RECORD, "close_twice": "sometimes"}]})


def test_deferred_construction_is_typed_but_not_acquired() -> None:
    catalog = build_catalog({"resource": [
        {**RECORD, "deferred_by": ["lazy"], "opened_by": ["open"]},
        {"api": "drv.Connection.cursor", "kind": "cursor", "returns": "drv.Cursor", "release": ["close"],
         "context_manager": "closes", "fix": "with"},
    ]})
    source = (
        "import drv\n\n"
        "def built():\n    conn = drv.connect(lazy=True)\n    return conn.ready\n\n"
        "def opened():\n    conn = drv.connect(lazy=True)\n    conn.open()\n    return conn.ready\n\n"
        "def eager():\n    conn = drv.connect(lazy=False)\n    return conn.ready\n"
    )
    findings = check_tree(ast.parse(source), Options(), catalog, source)
    assert [(f.line, f.code) for f in findings] == [(9, "CNL001"), (13, "CNL001")]


def test_registries_are_indexed_by_every_spelling() -> None:
    registries = default_catalog().registries
    assert registries["sqlalchemy.orm.scoped_session"] is registries["sqlalchemy.orm.scoping.scoped_session"]
    assert "remove" in registries["sqlalchemy.orm.scoped_session"].release
    assert "sqlalchemy.ext.asyncio.async_scoped_session" in registries
    with pytest.raises(CatalogError, match="unknown keys"):
        build_catalog({"registry": [{"call": "x.reg", "kind": "session", "release": ["remove"], "scope": "thread"}]})
