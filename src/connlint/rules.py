"""Every rule connlint reports: code, kebab-case name, summary and whether it is on by default.

This is the one place that names rules; the analysis produces ``Leak`` records and the checker turns
them into findings with a code from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    default: bool = True


RULES: tuple[Rule, ...] = (
    Rule("CNL001", "resource-never-closed", "A connection, cursor, session or client is never closed."),
    Rule(
        "CNL002",
        "resource-not-closed-on-path",
        "A resource is closed on some paths but an exit (return, break, a branch, a loop that does not run) "
        "leaves it open.",
    ),
    Rule(
        "CNL003",
        "with-does-not-close",
        "The resource is used in a 'with' block whose context manager does not close it "
        "(it only ends a transaction).",
    ),
    Rule(
        "CNL004",
        "resource-overwritten-before-close",
        "The only reference to an open resource is overwritten or deleted before it is closed.",
    ),
    Rule(
        "CNL005",
        "pool-checkout-not-returned",
        "A connection checked out of a pool is not returned (putconn/release/close) on every path.",
    ),
    Rule(
        "CNL006",
        "async-close-not-awaited",
        "An async resource's close() is called without 'await', so it never runs.",
    ),
    Rule(
        "CNL007",
        "fixture-returns-resource",
        "A pytest fixture returns an open resource; pytest never closes it.",
    ),
    Rule(
        "CNL008",
        "class-never-releases-resource",
        "A class stores a resource it acquired on self, but no method releases it.",
    ),
    Rule(
        "CNL009",
        "flask-g-not-torn-down",
        "A resource stored on flask.g is not closed by any teardown_appcontext/teardown_request handler.",
    ),
    Rule(
        "CNL010",
        "scoped-session-not-removed",
        "A scoped_session registry is used by request handlers but nothing in the project calls its "
        "remove() at the end of a request.",
    ),
    Rule(
        "CNL011",
        "scoped-session-not-removed-in-thread",
        "A thread's target uses a scoped_session registry without calling its remove() in a 'finally'.",
    ),
    Rule(
        "CNL101",
        "resource-not-closed-on-exception",
        "A resource is closed on every normal path but not when a statement between acquisition "
        "and close raises.",
    ),
    Rule(
        "CNL102",
        "contextmanager-close-not-in-finally",
        "A generator context manager closes its resource after 'yield' outside 'finally', "
        "so it leaks when the 'with' body raises.",
    ),
    Rule(
        "CNL900",
        "analysis-skipped",
        "A function was too large or too deeply nested to analyse within the per-function budget; "
        "it was skipped.",
    ),
    Rule(
        "CNL901",
        "module-level-connection",
        "A connection or cursor is opened at module level and lives until the interpreter exits (opt-in).",
        default=False,
    ),
)

BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}
BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
DEFAULT_OFF: tuple[str, ...] = tuple(rule.code for rule in RULES if not rule.default)


def code_matches(code: str, selectors: tuple[str, ...] | list[str] | frozenset[str]) -> bool:
    """flake8 semantics: a selector matches a code it is a prefix of ("CNL" matches every rule)."""
    return any(code.startswith(sel) for sel in selectors)


def is_enabled(code: str, select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> bool:
    """Decide whether ``code`` is reported, with flake8's decision rules.

    ``select``/``ignore`` are what the user chose explicitly. Without a select every rule is
    implicitly selected; default-off rules are implicitly ignored (flake8's ``extend_default_ignore``).
    An explicit choice beats an implicit one; when both lists match explicitly (or both implicitly),
    the longer prefix wins and a tie is ignored.
    """
    sel_explicit = max((len(s) for s in select if code.startswith(s)), default=-1)
    ign_explicit = max((len(s) for s in ignore if code.startswith(s)), default=-1)
    if sel_explicit >= 0 and ign_explicit >= 0:
        return sel_explicit > ign_explicit
    if sel_explicit >= 0:
        return True
    if ign_explicit >= 0:
        return False
    if select:  # a selection was given and this code is not in it
        return False
    return code not in DEFAULT_OFF
