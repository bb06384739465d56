"""Fuzz connlint with generated Python programs (hypothesmith) for as long as you like.

Each example is a syntactically valid program from hypothesmith; connlint checks it as it is (with
``import sqlite3`` on top so that the prefilter lets it through), and again with a sqlite3 connection
spliced into a statement list of its code wrapped in a function: at the start of the body, inside one of
its loops, ``try`` or ``with`` blocks, optionally with a ``close()`` spliced somewhere else. The analysis
must never raise, and a file it has findings for must pass the text prefilter (which would otherwise have
skipped it). A failure is shrunk by hypothesis to a minimal program and printed.

    python benchmarks/fuzz.py                       # 2,000 examples per strategy
    python benchmarks/fuzz.py --examples 20000 --strategy node
    python benchmarks/fuzz.py --seconds 3600        # stop after an hour

tests/test_fuzz.py runs the same properties with a few examples in the normal suite.
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
import time
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from connlint.catalog import default_catalog
from connlint.checker import Options, check_tree
from connlint.runner import check_text, prefilter

ALL_CODES = Options(select=("CNL",), ignore=())
ACQUIRE = "conn = sqlite3.connect(path)"
RELEASE = "conn.close()"


def strategy(kind: str) -> st.SearchStrategy[str]:
    import hypothesmith

    if kind == "grammar":
        return hypothesmith.from_grammar()
    if kind == "node":
        return hypothesmith.from_node()
    return st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node())


def statement_lists(tree: ast.AST) -> list[list[ast.stmt]]:
    """Every statement list in the tree (bodies, else and finally blocks, handlers), outermost first,
    not descending into classes (a class body is not the function's flow)."""
    found: list[list[ast.stmt]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop(0)
        for field in ("body", "orelse", "finalbody"):
            value = getattr(node, field, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                found.append(value)
                stack.extend(s for s in value if not isinstance(s, ast.ClassDef))
        for handler in getattr(node, "handlers", ()) or ():
            found.append(handler.body)
            stack.extend(handler.body)
        for case in getattr(node, "cases", ()) or ():
            found.append(case.body)
            stack.extend(case.body)
    return found


def splice(program: str, where: int, at: int, release: int | None) -> str | None:
    """``program`` inside ``def work(path):`` with ``conn = sqlite3.connect(path)`` inserted into its
    ``where``-th statement list at index ``at`` (and ``conn.close()`` into the ``release``-th list).
    Existing functions of the program count as statement lists too. None if the result does not compile
    (e.g. ``from m import *`` inside a function)."""
    try:
        module = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    func = ast.parse("def work(path):\n    pass\n").body[0]
    assert isinstance(func, ast.FunctionDef)
    func.body = copy.deepcopy(module.body) or [ast.Pass()]
    lists = [func.body, *(lst for lst in statement_lists(func) if lst is not func.body)]
    target = lists[where % len(lists)]
    target.insert(at % (len(target) + 1), ast.parse(ACQUIRE).body[0])
    if release is not None:
        other = lists[release % len(lists)]
        other.insert(release % (len(other) + 1), ast.parse(RELEASE).body[0])
    new = ast.Module(body=[*ast.parse("import sqlite3").body, func], type_ignores=[])
    try:
        text = ast.unparse(ast.fix_missing_locations(new))
        compile(text, "<spliced>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return text


def check_never_raises(text: str) -> None:
    """The property: the checker (CLI path, prefilter included) never raises; what it finds passes the
    prefilter; the analysis without the prefilter agrees."""
    catalog = default_catalog()
    result = check_text("<fuzz>", text, ALL_CODES, catalog)
    assert result.error is None or "nested too deeply" in result.error or "cannot parse" in result.error, result.error
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    try:
        findings = check_tree(tree, ALL_CODES, catalog)
    except RecursionError:
        return  # reported as "nested too deeply" above, never a traceback on the CLI
    if findings:
        assert prefilter(catalog).may_acquire(text), f"the prefilter would skip a file with {findings[0]}"


def as_is(program: str) -> str:
    return "import sqlite3\n" + program


def run(kind: str, examples: int, seconds: float | None) -> None:
    deadline = time.monotonic() + seconds if seconds else None
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy(kind), st.integers(0, 50), st.integers(0, 50), st.none() | st.integers(0, 50))
    def fuzz(program: str, where: int, at: int, release: int | None) -> None:
        if deadline is not None and time.monotonic() > deadline:
            return
        count[0] += 1
        check_never_raises(as_is(program))
        spliced = splice(program, where, at, release)
        if spliced is not None:
            check_never_raises(spliced)

    start = time.monotonic()
    fuzz()
    print(f"{kind}: {count[0]} programs in {time.monotonic() - start:.0f} s, no failure", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per strategy")
    parser.add_argument("--strategy", choices=("grammar", "node", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=None, help="stop each strategy after this long")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=SyntaxWarning)  # generated code says things like 1()
    kinds = ("grammar", "node") if args.strategy == "both" else (args.strategy,)
    for kind in kinds:
        run(kind, args.examples, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
