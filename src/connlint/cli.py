"""The ``connlint`` command: ``connlint check PATHS``, ``connlint rules``, ``connlint rule CODE``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connlint import __version__, rules
from connlint.checker import Options
from connlint.files import discover
from connlint.report import FileFindings

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(value: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in value.replace(" ", ",").split(",") if c.strip())


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
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--select", type=_codes, default=(), metavar="CODES",
                       help="comma-separated codes or prefixes to report (default: all default-on rules)")
    check.add_argument("--extend-select", type=_codes, default=(), metavar="CODES",
                       help="codes to report in addition to the selection, e.g. the opt-in CNL901")
    check.add_argument("--ignore", type=_codes, default=(), metavar="CODES",
                       help="comma-separated codes or prefixes not to report")
    check.add_argument("--exclude", type=lambda v: tuple(p.strip() for p in v.split(",") if p.strip()),
                       default=(), metavar="GLOBS", help="comma-separated globs of files or folders to skip")
    check.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                       help="check files in N processes (default: one per CPU)")
    fix = sub.add_parser("fix", help="rewrite leaks into 'with'/'try'-'finally' forms (needs libcst)")
    fix.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    fix.add_argument("--diff", action="store_true", help="print a unified diff and write nothing")
    fix.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    fix.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that may change behaviour")
    for option in ("--select", "--extend-select", "--ignore"):
        fix.add_argument(option, type=_codes, default=(), metavar="CODES", help=f"as for 'check {option}'")
    fix.add_argument("--exclude", type=lambda v: tuple(p.strip() for p in v.split(",") if p.strip()),
                     default=(), metavar="GLOBS", help="as for 'check --exclude'")
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
    from connlint.runner import check_paths

    select = args.select
    if args.extend_select:
        select = (*(select or ("CNL",)), *args.extend_select)
    unknown = [c for c in (*select, *args.ignore) if not c.startswith("CNL") and not "CNL".startswith(c)]
    if unknown:
        print(f"connlint: error: unknown code or prefix: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_ERROR
    options = Options(select=select, ignore=args.ignore)
    errors = 0
    results: list[FileFindings] = []
    for result in check_paths(list(discover(args.paths, args.exclude)), options, args.jobs):
        if result.error is not None:
            errors += 1
            print(f"{result.path}: error: {result.error}", file=sys.stderr)
            continue
        if result.findings:
            results.append(FileFindings(result.path, result.findings))
    if args.format == "json":
        from connlint.report import json as out
    else:
        from connlint.report import text as out  # type: ignore[no-redef]
    sys.stdout.write(out.render(results))
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if results else EXIT_CLEAN


def _list_rules() -> int:
    for rule in rules.RULES:
        state = "on" if rule.default else "off (opt-in)"
        print(f"{rule.code}  {rule.name:<38} default {state}")
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
