"""``[tool.connlint]`` in pyproject.toml (and the flake8 options of the same names) -> one frozen Config.

``SETTINGS`` is the single list of option names: the pyproject loader, the flake8 plugin's options and
docs/configuration.md all come from it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from connlint import rules
from connlint.catalog import (
    CONTEXT_MANAGER_VALUES,
    Catalog,
    CatalogError,
    ResourceApi,
    build_catalog,
    default_catalog,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    """Invalid configuration: the message names the file, the key and what was expected."""


@dataclass(frozen=True)
class Setting:
    name: str  # kebab-case, as written in [tool.connlint] and (prefixed) as a flake8 option
    kind: str  # "codes" | "globs" | "str-list" | "choice" | "int" | "bool" | "per-file" | "resources" | "path"
    default: Any
    help: str
    choices: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    Setting("select", "codes", (), "Rule codes or prefixes to report (default: every default-on rule)."),
    Setting("extend-select", "codes", (), "Codes to report in addition to `select`, e.g. the opt-in CNL901."),
    Setting("ignore", "codes", (), "Rule codes or prefixes not to report."),
    Setting("extend-ignore", "codes", (), "Codes not to report, in addition to `ignore`."),
    Setting("per-file-ignores", "per-file", {},
            "A table of glob -> codes ignored in the files the glob matches (relative to the config file)."),
    Setting("exclude", "globs", (), "Globs of files and folders not to check (relative to the config file)."),
    Setting("extend-exclude", "globs", (), "More globs not to check, in addition to `exclude`."),
    Setting("exception-paths", "bool", True,
            "Report leaks that only happen when an exception is raised (CNL101, CNL102). "
            "`false` ignores the CNL1 rules."),
    Setting("module-level-connections", "bool", False,
            "Report connections and cursors opened at module level (turns on the opt-in CNL901)."),
    Setting("unknown-calls", "choice", "borrow",
            "What a call the analysis knows nothing about does with a resource passed to it: `borrow` "
            "(the caller still owns it and must close it) or `hand-off` (the callee may keep it; fewer "
            "findings).", ("borrow", "hand-off")),
    Setting("inference", "choice", "astroid",
            "How receivers the project summaries cannot type are resolved: `astroid` (its inference, "
            "for method calls whose name is a factory method of the project, such as "
            "`get_db().session()`) or `off`.", ("astroid", "off")),
    Setting("release-helpers", "str-list", (),
            "Qualified names of your own functions that release the resource passed to them, such as "
            "`myapp.db.put_conn`."),
    Setting("analysis-budget", "int", 200_000,
            "Per-function limit on control-flow graph nodes; a larger function is skipped (CNL900)."),
    Setting("resources", "resources", (),
            "Your own acquire APIs, checked like the built-in drivers (see below)."),
    Setting("cache-dir", "path", ".connlint_cache",
            "Folder of the cache of module summaries and results (relative to the config file); "
            "`--no-cache` or `CONNLINT_NO_CACHE=1` turns the cache off."),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

RESOURCE_KEYS: dict[str, str] = {
    "api": "qualified name of the callable that acquires, e.g. `myapp.db.get_conn` or "
           "`myapp.db.Database.session` (a method; `Database(...)` values are then typed)",
    "kind": "what it is, used in messages: connection, cursor, session, pooled connection, client...",
    "release": "list of methods on the object that release it (default `[\"close\"]`)",
    "pool-release": "list of methods of its pool that release it when given the object (`putconn`)",
    "context-manager": "what leaving `with obj:` does: " + " | ".join(CONTEXT_MANAGER_VALUES),
    "returns": "type name of the object, for the methods it has (default: the api name)",
    "aliases": "other qualified spellings of the same callable",
    "async": "the object belongs to an async API (true/false)",
    "awaited": "the acquire call is a coroutine: the object is `await f(...)`",
    "release-awaited": "the release methods are coroutines: only `await obj.close()` releases",
    "release-helpers": "qualified names of functions that release this resource when given it",
}


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the pyproject.toml it came from
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = ()
    unknown_calls: str = "borrow"
    inference: str = "astroid"
    release_helpers: tuple[str, ...] = ()
    analysis_budget: int = 200_000
    resources: tuple[ResourceApi, ...] = ()
    cache_dir: str | None = None
    _catalog: list[Catalog] = field(default_factory=list, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def catalog(self) -> Catalog:
        if not self.resources:
            return default_catalog()
        if not self._catalog:
            from connlint.catalog import CATALOG_PATH

            with CATALOG_PATH.open("rb") as fh:
                data = tomllib.load(fh)
            extra_ctor = [
                {"call": owner, "returns": owner}
                for api in self.resources
                for owner in [api.api.rpartition(".")[0]]
                if owner.rpartition(".")[2][:1].isupper()
            ]
            data = {**data, "constructor": [*data.get("constructor", []), *extra_ctor]}
            self._catalog.append(build_catalog(data, self.resources))
        return self._catalog[0]

    def ignored_for(self, path: str) -> tuple[str, ...]:
        """Codes that per-file-ignores drop for ``path``."""
        import fnmatch

        codes: list[str] = []
        absolute = os.path.abspath(path)
        try:
            relative = os.path.relpath(absolute, self.root)
        except ValueError:  # another drive on Windows
            relative = absolute
        name = os.path.basename(path)
        for pattern, pattern_codes in self.per_file_ignores:
            if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(
                path, pattern
            ):
                codes.extend(pattern_codes)
        return tuple(codes)


# ---------------------------------------------------------------------------------------------- loading


def find_config(paths: list[str]) -> Path | None:
    """The nearest pyproject.toml with a [tool.connlint] table, walking up from the checked paths."""
    starts = [Path(p).resolve() for p in paths] or [Path.cwd()]
    start = Path(os.path.commonpath([str(s) for s in starts]))
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                with candidate.open("rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "connlint" in data["tool"]:
                return candidate
    return None


def load_config(path: Path) -> Config:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("connlint", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.connlint] must be a table")
    return config_from_table(table, path)


def config_from_table(table: Mapping[str, Any], path: Path | None) -> Config:
    where = str(path) if path is not None else "configuration"
    values: dict[str, Any] = {}
    for key, raw in table.items():
        setting = BY_NAME.get(key)
        if setting is None:
            suggestion = _closest(key, BY_NAME)
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            raise ConfigError(f"{where}: [tool.connlint] unknown key '{key}'{hint}")
        values[key] = _convert(setting, raw, f"{where}: [tool.connlint] '{key}'")
    return _build(values, path)


def _closest(key: str, names: Mapping[str, Any]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key.replace("_", "-"), list(names), n=1)
    return found[0] if found else None


def _convert(setting: Setting, raw: Any, where: str) -> Any:
    kind = setting.kind
    if kind in ("codes", "globs", "str-list"):
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{where}: expected a list of strings, got {_type(raw)}")
        if kind == "codes":
            return check_codes(raw, where)
        return tuple(raw)
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: expected true or false, got {_type(raw)}")
        return raw
    if kind == "int":
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise ConfigError(f"{where}: expected a positive integer, got {raw!r}")
        return raw
    if kind == "choice":
        if raw not in setting.choices:
            raise ConfigError(f"{where}: expected one of {', '.join(map(repr, setting.choices))}, got {raw!r}")
        return raw
    if kind == "path":
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{where}: expected a folder name, got {raw!r}")
        return raw
    if kind == "per-file":
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table of glob = [codes], got {_type(raw)}")
        out = []
        for glob, codes in raw.items():
            out.append((glob, _convert(BY_NAME["ignore"], codes, f"{where}[{glob!r}]")))
        return tuple(out)
    if kind == "resources":
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise ConfigError(f"{where}: expected an array of tables ([[tool.connlint.resources]])")
        return tuple(raw)
    raise AssertionError(kind)  # pragma: no cover


def _type(value: Any) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", float: "a number", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_codes(codes: list[str] | tuple[str, ...], where: str) -> tuple[str, ...]:
    """Upper-case codes; each must be a rule code or a prefix of one."""
    out = []
    for code in codes:
        c = code.strip().upper()
        if not any(rule.code.startswith(c) for rule in rules.RULES) and c != "CNL":
            raise ConfigError(f"{where}: unknown rule code or prefix {code!r} (codes are CNL001..CNL901; "
                              f"'connlint rules' lists them)")
        out.append(c)
    return tuple(out)


def _build(values: dict[str, Any], path: Path | None) -> Config:
    select = tuple(values.get("select", ()))
    extend_select = tuple(values.get("extend-select", ()))
    if values.get("module-level-connections"):
        extend_select += ("CNL901",)
    if extend_select:
        select = (*(select or ("CNL",)), *extend_select)
    ignore = (*values.get("ignore", ()), *values.get("extend-ignore", ()))
    if values.get("exception-paths") is False:
        ignore = (*ignore, "CNL1")
    resources, helpers = _resources(values.get("resources", ()), path)
    return Config(
        path=path,
        select=select,
        ignore=tuple(ignore),
        per_file_ignores=tuple(values.get("per-file-ignores", ())),
        exclude=(*values.get("exclude", ()), *values.get("extend-exclude", ())),
        unknown_calls=values.get("unknown-calls", "borrow"),
        inference=values.get("inference", "astroid"),
        release_helpers=(*values.get("release-helpers", ()), *helpers),
        analysis_budget=values.get("analysis-budget", 200_000),
        resources=resources,
        cache_dir=values.get("cache-dir"),
    )


_FIX_FOR = {"closes": "with", "commits-then-closes": "with", "returns-to-pool": "with",
            "transaction-only": "closing", "none": "closing"}


def _resources(raws: tuple[dict[str, Any], ...], path: Path | None) -> tuple[tuple[ResourceApi, ...], tuple[str, ...]]:
    from connlint.catalog import _resource

    where_file = str(path) if path is not None else "configuration"
    records: list[ResourceApi] = []
    helpers: list[str] = []
    for i, raw in enumerate(raws):
        where = f"{where_file}: [[tool.connlint.resources]] #{i + 1}"
        unknown = set(raw) - set(RESOURCE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected "
                              f"{', '.join(RESOURCE_KEYS)}")
        if not isinstance(raw.get("api"), str) or "." not in raw["api"]:
            raise ConfigError(f"{where}: 'api' must be a qualified name such as 'myapp.db.get_conn'")
        for key in ("release", "pool-release", "aliases", "release-helpers"):
            if key in raw and (not isinstance(raw[key], list) or not all(isinstance(x, str) for x in raw[key])):
                raise ConfigError(f"{where}: '{key}' must be a list of strings")
        for key in ("async", "awaited", "release-awaited"):
            if key in raw and not isinstance(raw[key], bool):
                raise ConfigError(f"{where}: '{key}' must be true or false")
        cm = raw.get("context-manager", "closes")
        if cm not in CONTEXT_MANAGER_VALUES:
            raise ConfigError(f"{where}: 'context-manager' must be one of {', '.join(CONTEXT_MANAGER_VALUES)}, "
                              f"got {cm!r}")
        is_async = bool(raw.get("async", False))
        fix = _FIX_FOR[cm]
        if is_async:
            fix = "async-with-await" if raw.get("awaited") and cm != "none" else "async-with"
            if cm == "none":
                fix = "try-finally"
        record = {
            "api": raw["api"],
            "kind": str(raw.get("kind", "connection")),
            "returns": str(raw.get("returns", raw["api"] + "()")),
            "release": raw.get("release", ["close"] if not raw.get("pool-release") else []),
            "pool_release": raw.get("pool-release", []),
            "context_manager": cm,
            "fix": fix,
            "aliases": raw.get("aliases", []),
            "async": is_async,
            "awaited": bool(raw.get("awaited", False)),
            "release_awaited": bool(raw.get("release-awaited", False)),
        }
        try:
            records.append(_resource(record, where))
        except CatalogError as exc:
            raise ConfigError(str(exc)) from None
        helpers.extend(raw.get("release-helpers", ()))
    return tuple(records), tuple(helpers)


def resolve_config(paths: list[str], config_path: str | None, isolated: bool) -> Config:
    """The configuration a run uses: --isolated ignores files, --config names one, else discovery."""
    if isolated:
        return Config()
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"{config_path}: no such configuration file")
        return load_config(path)
    found = find_config(paths)
    return load_config(found) if found is not None else Config()


def options_for(config: Config, select: tuple[str, ...] = (), ignore: tuple[str, ...] = (),
                extend_select: tuple[str, ...] = ()) -> Any:
    """The analysis Options: command-line selections override the file's."""
    from connlint.checker import Options

    chosen = select or config.select
    if extend_select:
        chosen = (*(chosen or ("CNL",)), *extend_select)
    return Options(
        select=chosen,
        ignore=(*config.ignore, *ignore),
        budget=config.analysis_budget,
        release_helpers=config.release_helpers,
        unknown_calls=config.unknown_calls,
        inference=config.inference,
    )


def markdown_reference() -> str:
    """The options table of docs/configuration.md (a test keeps the page in sync with SETTINGS)."""
    lines = ["| key | flake8 option | default | what it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        flake8 = f"`connlint-{s.name}`" if s.name in FLAKE8_SETTINGS else "pyproject only"
        if s.name in ("select", "extend-select", "ignore", "extend-ignore", "per-file-ignores", "exclude",
                      "extend-exclude"):
            flake8 = f"flake8's own `{s.name}`"
        default = _default_text(s.default)
        lines.append(f"| `{s.name}` | {flake8} | {default} | {s.help} |")
    lines += ["", "Keys of a `[[tool.connlint.resources]]` entry:", "", "| key | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in RESOURCE_KEYS.items()]
    return "\n".join(lines) + "\n"


def _default_text(value: Any) -> str:
    if value in ((), {}):
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


# the settings the flake8 plugin registers as its own options (flake8 handles selection and excludes)
FLAKE8_SETTINGS = ("unknown-calls", "inference", "release-helpers", "analysis-budget", "cache-dir")
Converter = Callable[[str], Any]
