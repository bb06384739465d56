"""The API catalog: which calls acquire a database resource and how that resource is released.

The knowledge is data (``apis.toml``); this module only loads it into frozen records and indexes them
for the resolver. Users extend it with custom resources through the same records.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

CONTEXT_MANAGER_VALUES = ("closes", "commits-then-closes", "returns-to-pool", "transaction-only", "none")
FIX_VALUES = ("with", "closing", "async-with", "async-with-await", "try-finally", "pool-try-finally", "none")
LIFETIME_VALUES = ("short", "long-lived")
# what releasing an already released object does (a second close(), or leaving its ``with`` after close())
TWICE_VALUES = ("no-op", "raises", "unknown")
WITH_FIXES = ("with", "async-with", "async-with-await")


@dataclass(frozen=True)
class ResourceApi:
    """A callable that acquires a resource the caller must release."""

    api: str
    kind: str
    returns: str
    release: tuple[str, ...]
    context_manager: str
    fix: str
    aliases: tuple[str, ...] = ()
    pool_release: tuple[str, ...] = ()
    release_awaited: bool = False
    sync_release: tuple[str, ...] = ()
    awaited: bool = False
    is_async: bool = False
    lifetime: str = "short"
    report_in_function: bool = False
    # keyword arguments that, passed a literal True, make the call build the object without acquiring
    # anything (pymysql's defer_connect=True: no socket until conn.connect())
    deferred_by: tuple[str, ...] = ()
    opened_by: tuple[str, ...] = ()  # methods that acquire what a deferred construction did not
    close_twice: str = "unknown"  # x.close() when x is already closed
    exit_after_close: str = "unknown"  # leaving ``with x:`` when x was closed inside the block

    @property
    def cm_releases(self) -> bool:
        """Leaving ``with x:`` releases the object (closes it or returns it to its pool)."""
        return self.context_manager in ("closes", "commits-then-closes", "returns-to-pool")

    def must_await(self, method: str) -> bool:
        """Is ``x.method()`` a coroutine that only releases when awaited?"""
        return self.release_awaited and method not in self.sync_release

    def defers(self, call_keywords: dict[str, object]) -> bool:
        """Does a call with these keyword arguments (constant values only) acquire nothing yet?"""
        return any(call_keywords.get(name) is True for name in self.deferred_by)

    @property
    def second_release_raises(self) -> bool:
        """Does the release that connlint's fix adds raise when the object is already closed? (the
        ``with`` forms release by leaving the block, the others by calling ``close()``)"""
        fact = self.exit_after_close if self.fix in WITH_FIXES else self.close_twice
        return fact == "raises"

    @property
    def is_pool_checkout(self) -> bool:
        return self.kind == "pooled connection"

    @property
    def tracked_in_functions(self) -> bool:
        return self.lifetime == "short" or self.report_in_function


@dataclass(frozen=True)
class Registry:
    """A long-lived object that hands out one resource per scope (thread, request, task) and must be
    told when the scope ends: SQLAlchemy's ``scoped_session``, whose ``remove()`` closes the session
    of the current scope and forgets it."""

    call: str
    kind: str  # what it hands out (session)
    release: tuple[str, ...]  # registry methods that release the current scope's resource
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """Indexes over the records: by callable name, by (type, method) and by type spelling."""

    resources: dict[str, ResourceApi] = field(default_factory=dict)
    constructors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    item_types: dict[str, str] = field(default_factory=dict)
    type_aliases: dict[str, str] = field(default_factory=dict)
    methods: dict[tuple[str, str], ResourceApi] = field(default_factory=dict)
    types: frozenset[str] = frozenset()
    registries: dict[str, Registry] = field(default_factory=dict)  # by every spelling of the call

    @cached_property
    def root_modules(self) -> frozenset[str]:
        """Top-level module names a file must mention to acquire anything from the catalog."""
        names = set(self.resources) | set(self.constructors) | set(self.values) | set(self.types)
        return frozenset(name.split(".", 1)[0] for name in names)

    @cached_property
    def deferring_keywords(self) -> frozenset[str]:
        """Keyword arguments that can make an acquire call build without acquiring (defer_connect)."""
        return frozenset(k for r in self.resources.values() for k in r.deferred_by)

    def canonical_type(self, name: str) -> str:
        return self.type_aliases.get(name, name)

    def resource_for_call(self, qualified: str) -> ResourceApi | None:
        return self.resources.get(qualified)

    def resource_for_method(self, type_name: str, method: str) -> ResourceApi | None:
        return self.methods.get((type_name, method))


class CatalogError(ValueError):
    """A catalog record is malformed (names the record and the field)."""


_BOOL_FIELDS = {
    "release_awaited": "release_awaited",
    "awaited": "awaited",
    "async": "is_async",
    "report_in_function": "report_in_function",
}


def _resource(raw: dict[str, Any], where: str) -> ResourceApi:
    def need(key: str) -> Any:
        if key not in raw:
            raise CatalogError(f"{where}: missing '{key}'")
        return raw[key]

    def choice(key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = raw.get(key, default)
        if value not in allowed:
            raise CatalogError(f"{where}: '{key}' must be one of {', '.join(allowed)}, not {value!r}")
        return str(value)

    known = {"api", "aliases", "kind", "returns", "release", "pool_release", "sync_release", "context_manager",
             "fix", "lifetime", "close_twice", "exit_after_close", "deferred_by", "opened_by", *_BOOL_FIELDS}
    unknown = set(raw) - known
    if unknown:
        raise CatalogError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    flags = {attr: bool(raw.get(key, False)) for key, attr in _BOOL_FIELDS.items()}
    return ResourceApi(
        api=str(need("api")),
        kind=str(need("kind")),
        returns=str(need("returns")),
        release=tuple(need("release")),
        context_manager=choice("context_manager", CONTEXT_MANAGER_VALUES),
        fix=choice("fix", FIX_VALUES),
        aliases=tuple(raw.get("aliases", ())),
        pool_release=tuple(raw.get("pool_release", ())),
        sync_release=tuple(raw.get("sync_release", ())),
        deferred_by=tuple(raw.get("deferred_by", ())),
        opened_by=tuple(raw.get("opened_by", ())),
        lifetime=choice("lifetime", LIFETIME_VALUES, "short"),
        close_twice=choice("close_twice", TWICE_VALUES, "unknown"),
        exit_after_close=choice("exit_after_close", TWICE_VALUES, "unknown"),
        **flags,
    )


def _registry(raw: dict[str, Any], where: str) -> Registry:
    unknown = set(raw) - {"call", "aliases", "kind", "release"}
    if unknown:
        raise CatalogError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    for key in ("call", "kind", "release"):
        if key not in raw:
            raise CatalogError(f"{where}: missing '{key}'")
    return Registry(str(raw["call"]), str(raw["kind"]), tuple(raw["release"]), tuple(raw.get("aliases", ())))


def build_catalog(data: dict[str, Any], extra: tuple[ResourceApi, ...] = ()) -> Catalog:
    """Index the records of a parsed catalog file plus any user-declared resources."""
    resources: dict[str, ResourceApi] = {}
    constructors: dict[str, str] = {}
    values: dict[str, str] = {}
    item_types: dict[str, str] = {}
    type_aliases: dict[str, str] = {}
    records = [_resource(raw, f"resource {raw.get('api', i)!r}") for i, raw in enumerate(data.get("resource", []))]
    records.extend(extra)
    for ctor in data.get("constructor", []):
        for name in (ctor["call"], *ctor.get("aliases", ())):
            constructors[name] = ctor["returns"]
    for value in data.get("value", []):
        values[value["name"]] = value["type"]
        if "item_type" in value:
            item_types[value["type"]] = value["item_type"]
    for typ in data.get("type", []):
        for alias in typ.get("aliases", ()):
            if alias != typ["name"]:
                type_aliases[alias] = typ["name"]
    types = set(constructors.values()) | set(values.values()) | set(item_types.values())
    types |= {r.returns for r in records} | {t["name"] for t in data.get("type", [])}
    # a spelling of a resource class doubles as its type name in annotations (sqlite3.Connection)
    for record in records:
        for alias in (record.api, *record.aliases):
            class_like = alias.rpartition(".")[2][:1].isupper()
            if class_like and alias != record.returns and alias not in types:
                type_aliases.setdefault(alias, record.returns)
    methods: dict[tuple[str, str], ResourceApi] = {}
    for record in records:
        for name in (record.api, *record.aliases):
            resources[name] = record
            owner, _, method = name.rpartition(".")
            if owner in types:
                methods[(owner, method)] = record
    registries: dict[str, Registry] = {}
    for i, raw in enumerate(data.get("registry", [])):
        registry = _registry(raw, f"registry {raw.get('call', i)!r}")
        for name in (registry.call, *registry.aliases):
            registries[name] = registry
    return Catalog(
        registries=registries,
        resources=resources,
        constructors=constructors,
        values=values,
        item_types=item_types,
        type_aliases=type_aliases,
        methods=methods,
        types=frozenset(types),
    )


CATALOG_PATH = Path(__file__).with_name("apis.toml")


@cache
def default_catalog() -> Catalog:
    with CATALOG_PATH.open("rb") as fh:
        return build_catalog(tomllib.load(fh))
