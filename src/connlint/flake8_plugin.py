"""flake8 entry point: the same findings as ``connlint check``, from the tree flake8 already parsed.

flake8 applies ``# noqa``, select/ignore, per-file-ignores and excludes itself. Opt-in rules (9xx) are
default-ignored through ``extend_default_ignore`` so that ``--extend-select CNL901`` turns them on.
connlint's own settings come from flake8 options named ``connlint-<setting>`` (setup.cfg, .flake8,
tox.ini) and otherwise from ``[tool.connlint]`` in the nearest pyproject.toml. Nothing heavy (LibCST,
astroid) is imported here.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from connlint import __version__
from connlint.checker import Options, check_tree
from connlint.config import BY_NAME, FLAKE8_SETTINGS, Config, ConfigError, find_config, load_config
from connlint.prefilter import prefilter
from connlint.rules import DEFAULT_OFF, RULES

if TYPE_CHECKING:
    from connlint.cache import Cache


@cache  # one entry per folder of the run: a bounded cache thrashed on big trees
def _pyproject_config(directory: str) -> Config:
    found = find_config([directory])
    if found is None:
        return Config()
    try:
        return load_config(found)
    except ConfigError:
        # flake8 has no way to report a plugin configuration error per run; fall back to defaults
        # rather than failing every file ('connlint check' reports the error itself)
        return Config()


@lru_cache(maxsize=16)
def _cache(root: str, setting: str | None) -> Cache | None:
    from pathlib import Path

    from connlint.cache import Cache, cache_disabled_by_environment, cache_folder

    if cache_disabled_by_environment():
        return None
    return Cache(cache_folder(Path(root), setting))


@cache
def _is_project_module(root: str, top: str) -> bool:
    return os.path.isfile(os.path.join(root, top + ".py")) or os.path.isfile(os.path.join(root, top, "__init__.py"))


@cache
def _run_roots(filenames: tuple[str, ...]) -> frozenset[str]:
    """The package roots of every file flake8 was asked to check, as ``connlint check`` declares them:
    a tests/ folder that imports the package of src/ finds its factories with either entry point."""
    from connlint.files import discover
    from connlint.project import package_roots

    paths = [p for p in filenames or (".",) if p != "-"]
    return frozenset(package_roots(discover(paths)))


def _imports_project_modules(tree: ast.Module, roots: frozenset[str]) -> bool:
    """Does the file import another module of its run's roots (where a factory may live)?"""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                return True
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top and any(_is_project_module(root, top) for root in roots):
                return True
    return False


class Plugin:
    name = "connlint"
    version = __version__
    _flake8_settings: ClassVar[dict[str, Any]] = {}
    _filenames: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tree: ast.AST, filename: str = "", lines: list[str] | None = None) -> None:
        self.tree = tree
        self.filename = filename
        self.lines = lines or []

    @classmethod
    def add_options(cls, option_manager: Any) -> None:
        option_manager.extend_default_ignore(list(DEFAULT_OFF))
        for name in FLAKE8_SETTINGS:
            setting = BY_NAME[name]
            kwargs: dict[str, Any] = {"parse_from_config": True, "default": None, "help": setting.help}
            if setting.kind == "str-list":
                kwargs["comma_separated_list"] = True
            elif setting.kind == "int":
                kwargs["type"] = int
            elif setting.kind == "choice":
                kwargs["choices"] = setting.choices
            option_manager.add_option(f"--connlint-{name}", **kwargs)

    @classmethod
    def parse_options(cls, options: Any) -> None:
        cls._flake8_settings = {
            name: getattr(options, "connlint_" + name.replace("-", "_"), None) for name in FLAKE8_SETTINGS
        }
        cls._filenames = tuple(getattr(options, "filenames", None) or ())

    def _options(self, config: Config) -> Options:
        s = self._flake8_settings
        return Options(
            # every code is produced; flake8's own selection decides what is shown
            select=tuple(r.code for r in RULES),
            budget=s.get("analysis-budget") or config.analysis_budget,
            release_helpers=tuple(s.get("release-helpers") or ()) or config.release_helpers,
            unknown_calls=s.get("unknown-calls") or config.unknown_calls,
            inference=s.get("inference") or config.inference,
        )

    def _use_cache(self, config: Config) -> None:
        """The summaries of the modules a file imports come from the same cache as 'connlint check'."""
        from connlint.project import use_cache

        use_cache(_cache(str(config.root), self._flake8_settings.get("cache-dir") or config.cache_dir))

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        if not isinstance(self.tree, ast.Module):
            return
        directory = os.path.dirname(os.path.abspath(self.filename or "."))
        config = _pyproject_config(directory)
        self._use_cache(config)
        catalog = config.catalog()
        source = "".join(self.lines) if self.lines else None
        path = os.path.abspath(self.filename) if self.filename and self.filename != "stdin" else None
        roots: frozenset[str] = frozenset()
        if path is not None:
            from connlint.project import declare_roots, package_roots

            roots = _run_roots(self._filenames) | package_roots([path])
            declare_roots(roots)
        # what 'connlint check' analyses: a file that can acquire from the catalog (the prefilter), or
        # one that may call a factory of another module of its project (its later rounds)
        if source is not None and not prefilter(catalog).may_acquire(source) and not (
            path is not None and _imports_project_modules(self.tree, roots)
        ):
            return
        for finding in check_tree(self.tree, self._options(config), catalog, source, path):
            yield finding.line, finding.col - 1, f"{finding.code} {finding.message}", type(self)
