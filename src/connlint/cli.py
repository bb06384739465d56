"""The ``connlint`` command: ``connlint check PATHS``, ``connlint rules``, ``connlint rule CODE``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from connlint import __version__, rules
from connlint.files import discover
from connlint.report import FileFindings

if TYPE_CHECKING:
    from connlint.cache import Cache
    from connlint.checker import Options
    from connlint.config import Config

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(value: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in value.replace(" ", ",").split(",") if c.strip())


def _globs(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``check`` and ``fix``: which rules, which files, which configuration."""
    parser.add_argument("--select", type=_codes, default=(), metavar="CODES",
                        help="comma-separated codes or prefixes to report (default: all default-on rules)")
    parser.add_argument("--extend-select", type=_codes, default=(), metavar="CODES",
                        help="codes to report in addition to the selection, e.g. the opt-in CNL901")
    parser.add_argument("--ignore", type=_codes, default=(), metavar="CODES",
                        help="comma-separated codes or prefixes not to report")
    parser.add_argument("--exclude", type=_globs, default=(), metavar="GLOBS",
                        help="comma-separated globs of files or folders to skip (adds to the configuration's)")
    parser.add_argument("--force-exclude", action="store_true",
                        help="apply the excludes to files named on the command line too (for pre-commit)")
    parser.add_argument("--config", default=None, metavar="PYPROJECT",
                        help="read [tool.connlint] from this file instead of the nearest pyproject.toml")
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def settings(args: argparse.Namespace) -> tuple[Config, Options, tuple[str, ...]]:
    """Configuration file + command line -> (config, analysis options, exclude globs).
    Raises ConfigError for bad configuration or unknown codes."""
    from connlint.config import check_codes, options_for, resolve_config

    for name in ("select", "extend_select", "ignore"):
        check_codes(getattr(args, name), f"--{name.replace('_', '-')}")
    config = resolve_config(list(args.paths), args.config, args.isolated)
    options = options_for(config, args.select, args.ignore, args.extend_select)
    return config, options, (*config.exclude, *args.exclude)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connlint",
        description="Find database connections, cursors, sessions and pool checkouts that are not "
        "closed on every path.",
    )
    parser.add_argument("--version", action="version", version=f"connlint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check", help="report leaks (default command)")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    check.add_argument("--format", choices=("text", "concise", "json", "sarif", "github"), default="text",
                       help="text: each finding with its source line and a help line (default); concise: "
                       "one flake8-style line per finding; json; sarif (SARIF 2.1.0); github (Actions "
                       "annotations)")
    check.add_argument("--statistics", action="store_true", help="print the number of findings per code")
    check.add_argument("--docs-url", default=None, metavar="URL",
                       help="base URL of the rule pages for SARIF helpUri (default: the installed pages)")
    add_selection_options(check)
    check.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                       help="check files in N processes (default: one per CPU)")
    check.add_argument("--no-cache", action="store_true",
                       help="neither read nor write the cache of summaries and results (also CONNLINT_NO_CACHE=1)")
    check.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="cache folder (default: the cache-dir setting, else .connlint_cache at the project root)")
    fix = sub.add_parser("fix", help="rewrite leaks into 'with'/'try'-'finally' forms (needs libcst)")
    fix.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    fix.add_argument("--diff", action="store_true", help="print a unified diff and write nothing")
    fix.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    fix.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that may change behaviour")
    add_selection_options(fix)
    fix.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                     help="fix files in N processes (default: one per CPU)")
    sub.add_parser("rules", help="list every rule")
    rule = sub.add_parser("rule", help="show one rule's documentation")
    rule.add_argument("code")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] not in ("check", "fix", "rules", "rule", "-h", "--help", "--version"):
        args_list.insert(0, "check")
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    if args.command == "rules":
        return _list_rules()
    if args.command == "rule":
        return _show_rule(args.code)
    if args.command == "fix":
        from connlint.fix.command import run

        return run(args)
    return _check(args)


def _check(args: argparse.Namespace) -> int:
    from connlint.config import ConfigError

    try:
        config, options, exclude = settings(args)
    except ConfigError as exc:
        print(f"connlint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    paths = list(discover(args.paths, exclude, force_exclude=args.force_exclude, root=str(config.root)))
    errors = 0
    results: list[FileFindings] = []
    from connlint.project import check_project, use_cache

    cache = _cache(args, config)
    if cache is not None:
        cache.prune(config.catalog())  # before the run: its context is marked as used first
    use_cache(cache)
    try:
        checked = check_project(paths, options, args.jobs, config)
    finally:
        use_cache(None)
    for result in checked:
        if result.error is not None:
            errors += 1
            print(f"{result.path}: error: {result.error}", file=sys.stderr)
            continue
        if result.findings:
            results.append(FileFindings(result.path, result.findings))
    sys.stdout.write(_render(args, results))
    if args.statistics:
        from connlint.report.text import render_statistics

        sys.stdout.write(render_statistics(results))
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if results else EXIT_CLEAN


def _cache(args: argparse.Namespace, config: Config) -> Cache | None:
    from connlint.cache import Cache, cache_disabled_by_environment, cache_folder

    if args.no_cache or cache_disabled_by_environment():
        return None
    return Cache(cache_folder(config.root, config.cache_dir, args.cache_dir))


def _render(args: argparse.Namespace, results: list[FileFindings]) -> str:
    if args.format == "json":
        from connlint.report import json as json_report

        return json_report.render(results)
    if args.format == "sarif":
        from connlint.report import sarif

        return sarif.render(results, args.docs_url)
    if args.format == "github":
        from connlint.report import github

        return github.render(results)
    from connlint.report import text

    colour = text.use_colour(sys.stdout)
    if args.format == "concise":
        return text.render_concise(results, colour)
    return text.render(results, colour)


def _list_rules() -> int:
    from connlint.fix import FIX_SAFETY, FIXABLE_CODES

    print(f"{'code':<7} {'name':<38} {'fix':<8} default")
    for rule in rules.RULES:
        state = "on" if rule.default else "off (opt-in)"
        if rule.code not in FIXABLE_CODES:
            fix = "-"
        else:
            fix = "unsafe" if FIX_SAFETY.get(rule.code, "").startswith("The fix is unsafe") else "safe"
        print(f"{rule.code:<7} {rule.name:<38} {fix:<8} {state}")
    return EXIT_CLEAN


def _show_rule(code: str) -> int:
    from connlint.docs import rule_doc

    rule = rules.BY_CODE.get(code.upper()) or rules.BY_NAME.get(code)
    if rule is None:
        print(f"connlint: error: no rule {code!r}; 'connlint rules' lists them", file=sys.stderr)
        return EXIT_ERROR
    print(rule_doc(rule.code))
    return EXIT_CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
