"""Fix one module's text: check, plan a fix per finding, apply the plans that do not overlap, verify that
the result compiles and no longer reports what was fixed, and repeat until nothing more can be fixed.

Text in, text out: files are the writer's business.
"""

from __future__ import annotations

import ast
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst

from connlint.catalog import Catalog, default_catalog
from connlint.checker import Finding, Options
from connlint.fix import fix_applicability
from connlint.fix.forms import NeedsUnsafe, Plan, build, choose, describe, leading, merge_lines
from connlint.fix.imports import Closing, add_import, resolve_closing
from connlint.fix.regions import Regions
from connlint.fix.safety import Analyzer, NoSafeFix, Tree
from connlint.runner import check_text

MAX_PASSES = 10
Key = tuple[object, ...]


@dataclass(frozen=True)
class Fixed:
    finding: Finding  # as found in the text given to ``fix_text``
    description: str  # e.g. "with closing(sqlite3.connect(...)) as conn"
    applicability: str
    form: str = ""  # the key of ``forms.BUILDERS`` that was used


@dataclass(frozen=True)
class Unfixed:
    finding: Finding  # as reported in the fixed text
    reason: str
    original: Finding | None = None  # the same finding in the text given to ``fix_text``
    unsafe_available: bool = False


@dataclass(frozen=True)
class FixResult:
    source: str
    text: str
    fixed: tuple[Fixed, ...] = ()
    unfixed: tuple[Unfixed, ...] = ()
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.text != self.source


def fix_text(source: str, options: Options | None = None, *, unsafe: bool = False, path: str = "<unknown>",
             catalog: Catalog | None = None, max_passes: int = MAX_PASSES) -> FixResult:
    """Apply every fix that is safe (or also unsafe ones) to ``source``; never returns text that does not
    compile or that still reports a fixed finding."""
    options = options or Options()
    catalog = catalog or default_catalog()
    run = _Run(source, options, unsafe, path, catalog)
    # As in runner.check_text: the cyclic GC would walk the growing LibCST trees (kept alive by the cycles
    # of their scopes) again and again while they are built; measured on the corpus files that have
    # something to fix, it took 15% of their time, a fifth less with one collection after the file.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return run.fix(max_passes)
    finally:
        _AST_CACHE.clear()  # the trees of a large file are large
        if enabled:
            gc.enable()


def plan_text(source: str, findings: Iterable[Finding], unsafe: bool = False) -> dict[Finding, Plan | str]:
    """The exact answer for each finding: its plan, or why there is no (safe) fix. Costs a LibCST parse."""
    tree = Tree(source)
    analyzer = Analyzer(tree)
    out: dict[Finding, Plan | str] = {}
    for finding in findings:
        try:
            out[finding] = choose(analyzer.shape(finding), unsafe)
        except NoSafeFix as exc:
            out[finding] = exc.reason
    return out


class _Run:
    def __init__(self, source: str, options: Options, unsafe: bool, path: str, catalog: Catalog) -> None:
        self.source = source
        self.options = options
        self.unsafe = unsafe
        self.path = path
        self.catalog = catalog
        self.refused: dict[Key, tuple[str, bool]] = {}
        self.fixed: list[Fixed] = []
        self.closing: Closing | None = None
        self._compiles: bool | None = None

    @property
    def compiles(self) -> bool:
        """Does the original text compile? (Then the fixed text must too; else it must at least parse.)
        Asked only when a fix is tried: most files have nothing to fix."""
        if self._compiles is None:
            self._compiles = _compile_error(self.source, self.path) is None
        return self._compiles

    def fix(self, max_passes: int) -> FixResult:
        findings = self._check(self.source)
        if isinstance(findings, str):
            return FixResult(self.source, self.source, error=findings)
        self.findings = findings
        self._by_key: dict[Key, list[Finding]] | None = None
        current = self.source
        for _ in range(max_passes):
            candidates = [
                f for f in findings
                if fix_applicability(f) is not None and _key(f, current) not in self.refused
            ]
            if not candidates:
                break
            try:
                tree = Regions(current, _ast_of(current), [_function_line(f) for f in candidates])
                plans = self._plans(tree, candidates, current)
            except cst.ParserSyntaxError as exc:
                error = f"LibCST cannot parse the file: {exc.message}"
                return FixResult(self.source, self.source, error=error)
            if not plans:
                continue
            text = self._apply_verified(tree, plans, current)
            if text is None:
                continue
            current = text
            result = self._check(current)
            assert not isinstance(result, str)
            findings = result
        unfixed = [self._unfixed(f, current) for f in findings]
        return FixResult(self.source, current, tuple(self.fixed), tuple(unfixed))

    # ------------------------------------------------------------------ steps

    def _check(self, text: str) -> list[Finding] | str:
        result = check_text(self.path, text, self.options, self.catalog)
        if result.error is not None:
            return result.error
        return list(result.findings)

    def _plans(self, tree: Regions, candidates: Sequence[Finding], text: str) -> list[Plan]:
        release_helpers = getattr(self.options, "release_helpers", ())
        analyzers: dict[int, Analyzer] = {}
        plans: list[Plan] = []
        for finding in candidates:
            key = _key(finding, text)
            part = tree.tree_for(finding)
            analyzer = analyzers.get(id(part))
            if analyzer is None:
                analyzer = analyzers[id(part)] = Analyzer(part, release_helpers, tree.module_functions)
            try:
                plans.append(choose(analyzer.shape(finding), self.unsafe))
            except NeedsUnsafe as exc:
                self.refused[key] = (exc.reason, True)
            except NoSafeFix as exc:
                self.refused[key] = (exc.reason, False)
        if any(p.needs_closing for p in plans):
            try:
                self.closing = resolve_closing(tree.full())
            except NoSafeFix as exc:
                for plan in [p for p in plans if p.needs_closing]:
                    self.refused[_key(plan.shape.finding, text)] = (exc.reason, False)
                plans = [p for p in plans if not p.needs_closing]
        return plans

    def _apply_verified(self, tree: Regions, plans: list[Plan], text: str) -> str | None:
        """Apply as many non-overlapping plans as verify; the others are refused with the reason."""
        batch = _non_overlapping(plans)
        new, failures = self._try(tree, batch, text)
        if not failures:
            self._record(batch, text)
            return new
        good: list[Plan] = []
        for plan in batch:
            _, alone = self._try(tree, [plan], text)
            if alone:
                self.refused[_key(plan.shape.finding, text)] = (alone[plan], False)
            else:
                good.append(plan)
        while good:
            new, failures = self._try(tree, good, text)
            if not failures:
                self._record(good, text)
                return new
            good = good[:1] if len(good) > 1 else []
        return None

    def _try(self, tree: Regions, plans: list[Plan], text: str) -> tuple[str, dict[Plan, str]]:
        closing = self.closing if any(p.needs_closing for p in plans) else None
        try:
            new = apply(tree, plans, closing)
        except NoSafeFix as exc:
            return text, {p: exc.reason for p in plans}
        # the fixed code must compile if the original did, else at least parse
        error = _compile_error(new, self.path)
        if error is not None and not self.compiles:
            error = _parse_error(new, self.path)
        if error is not None:
            return text, {p: f"the fixed code would not compile ({error})" for p in plans}
        after = self._check(new)
        if isinstance(after, str):
            return text, {p: f"the fixed code cannot be checked ({after})" for p in plans}
        still = {_key(f, new): f for f in after}
        failures = {}
        for plan in plans:
            left = still.get(_key(plan.shape.finding, text))
            if left is not None:
                failures[plan] = f"connlint would still report it after the fix ({left.code})"
        return new, failures

    def _record(self, plans: list[Plan], text: str) -> None:
        closing = self.closing.spelling if self.closing is not None else None
        for plan in plans:
            key = _key(plan.shape.finding, text)
            finding = self._original(plan.shape.finding, text) or plan.shape.finding
            self.fixed.append(Fixed(finding, describe(plan, closing), plan.applicability, plan.form))
            self.refused[key] = ("already fixed once; the fixed code is reported again", False)

    def _original(self, finding: Finding, text: str) -> Finding | None:
        """The same finding in the text given to ``fix_text`` (a name bound twice shares a key: then
        the one with the same code, in the same order)."""
        if text == self.source:
            return finding
        if self._by_key is None:
            self._by_key = {}
            for found in self.findings:
                self._by_key.setdefault(_key(found, self.source), []).append(found)
        candidates = self._by_key.get(_key(finding, text), [])
        same_code = [f for f in candidates if f.code == finding.code]
        chosen = same_code or candidates
        return chosen[0] if chosen else None

    def _unfixed(self, finding: Finding, text: str) -> Unfixed:
        key = _key(finding, text) if self.refused else None
        original = self._original(finding, text)
        if key is not None and key in self.refused:
            reason, unsafe_available = self.refused[key]
            return Unfixed(finding, reason, original, unsafe_available)
        if fix_applicability(finding) is None:
            return Unfixed(finding, _why_no_form(finding), original)
        return Unfixed(finding, f"not fixed within {MAX_PASSES} passes", original)


# ---------------------------------------------------------------------------------------------- applying


def apply(tree: Tree | Regions, plans: Sequence[Plan], closing: Closing | None) -> str:
    """The module's code with the plans applied (and the ``closing`` import added when needed)."""
    expression = closing.expression() if closing is not None else None
    add = closing is not None and closing.add is not None and any(p.needs_closing for p in plans)

    def rewrite(module: cst.Module, mine: list[Plan]) -> cst.Module:
        new = module.visit(_Rewriter(mine, expression))
        assert isinstance(new, cst.Module)
        return new

    if isinstance(tree, Tree):
        module = rewrite(tree.module, list(plans))
    else:
        text = tree.rewrite(plans, lambda p: p.shape.tree, rewrite)  # type: ignore[arg-type, attr-defined]
        if not add:
            return text
        module = tree.reparse(text)
    if add:
        assert closing is not None and closing.add is not None
        module = add_import(module, closing.add)
    return module.code


class _Rewriter(cst.CSTTransformer):
    def __init__(self, plans: Sequence[Plan], closing: cst.BaseExpression | None) -> None:
        super().__init__()
        self.closing = closing
        self.by_owner: dict[cst.IndentedBlock, list[Plan]] = {}
        self.removals: set[cst.CSTNode] = set()
        for plan in plans:
            self.by_owner.setdefault(plan.shape.owner, []).append(plan)
            self.removals.update(plan.shape.removals)

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        plans = self.by_owner.get(original_node)
        if plans is None:
            body = _drop_removed(original_node.body, updated_node.body, self.removals)
            return updated_node.with_changes(body=body) if body is not None else updated_node
        body = list(updated_node.body)
        footer: list[cst.EmptyLine] = []
        for plan in sorted(plans, key=lambda p: p.shape.index, reverse=True):
            rewrite = build(plan, body, self.closing)
            tail = body[rewrite.stop:]
            if rewrite.carried:
                if tail:
                    lines = merge_lines(rewrite.carried, leading(tail[0]))
                    tail[0] = tail[0].with_changes(leading_lines=lines)
                else:
                    footer = merge_lines(rewrite.carried, footer)
            body = [*body[:rewrite.start], *rewrite.statements, *tail]
        return updated_node.with_changes(body=body, footer=merge_lines(footer, updated_node.footer))

    def leave_SimpleStatementSuite(self, original_node: cst.SimpleStatementSuite,
                                   updated_node: cst.SimpleStatementSuite) -> cst.SimpleStatementSuite:
        if not any(s in self.removals for s in original_node.body):
            return updated_node
        kept = [u for o, u in zip(original_node.body, updated_node.body) if o not in self.removals]
        return updated_node.with_changes(body=_last_without_semicolon(kept))


def _drop_removed(original: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement],
                  removals: set[cst.CSTNode]) -> list[cst.BaseStatement] | None:
    if not removals or not any(
        isinstance(o, cst.SimpleStatementLine) and any(s in removals for s in o.body) for o in original
    ):
        return None
    out: list[cst.BaseStatement] = []
    pending: list[cst.EmptyLine] = []
    for orig, stmt in zip(original, updated):
        if isinstance(orig, cst.SimpleStatementLine) and any(s in removals for s in orig.body):
            assert isinstance(stmt, cst.SimpleStatementLine)
            kept = [u for o, u in zip(orig.body, stmt.body) if o not in removals]
            if not kept:
                lines = list(stmt.leading_lines)
                if stmt.trailing_whitespace.comment is not None:
                    lines.append(cst.EmptyLine(indent=True, comment=stmt.trailing_whitespace.comment))
                pending = merge_lines(pending, lines)
                continue
            stmt = stmt.with_changes(body=_last_without_semicolon(kept))
        if pending:
            stmt = stmt.with_changes(leading_lines=merge_lines(pending, leading(stmt)))
            pending = []
        out.append(stmt)
    return out


def _last_without_semicolon(kept: Sequence[cst.BaseSmallStatement]) -> list[cst.BaseSmallStatement]:
    if not kept:
        return []
    return [*kept[:-1], kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]


def _non_overlapping(plans: list[Plan]) -> list[Plan]:
    """Plans whose rewritten statements do not contain or overlap each other (the rest wait a pass)."""
    chosen: list[Plan] = []
    for plan in sorted(plans, key=lambda p: (_tree(p).line_of(p.shape.owner.body[p.shape.index]), p.shape.index)):
        if not any(_overlap(plan, other) for other in chosen):
            chosen.append(plan)
    return chosen


def _tree(plan: Plan) -> Tree:
    assert plan.shape.tree is not None
    return plan.shape.tree


def _overlap(a: Plan, b: Plan) -> bool:
    sa, sb = a.shape, b.shape
    if sa.owner is sb.owner:
        return sa.index < sb.stop and sb.index < sa.stop
    tree = _tree(a)
    if _tree(b) is not tree:
        return False  # different functions, cut out apart: their lines do not meet
    region_a = sa.owner.body[sa.index:sa.stop]
    region_b = sb.owner.body[sb.index:sb.stop]
    return any(tree.contains(node, sb.owner) for node in region_a) or any(
        tree.contains(node, sa.owner) for node in region_b
    )


# ---------------------------------------------------------------------------------------------- identity


def _key(finding: Finding, text: str) -> Key:
    """What stays the same about a finding when a fix moves lines: function, variable and API."""
    leak = finding.leak
    if leak is None or leak.var is None:
        return ("line", finding.line, finding.col, finding.code)
    return (_qualnames(text).get(leak.function_line, str(leak.function_line)), leak.var, leak.api.api)


_QUALNAME_CACHE: dict[int, tuple[str, dict[int, str]]] = {}


def _qualnames(text: str) -> dict[int, str]:
    cached = _QUALNAME_CACHE.get(hash(text))
    if cached is not None and cached[0] == text:
        return cached[1]
    names: dict[int, str] = {}
    try:
        tree = _ast_of(text)
    except (SyntaxError, ValueError):
        return names

    def visit(node: ast.AST, prefix: str) -> None:
        # a def is a statement, so only statements (and the clauses that hold them) can hold one
        for child in _statements(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                names[child.lineno] = name
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    if len(_QUALNAME_CACHE) > 8:
        _QUALNAME_CACHE.clear()
    _QUALNAME_CACHE[hash(text)] = (text, names)
    return names


def _statements(node: ast.AST) -> Iterator[ast.AST]:
    """The statements, handlers and match cases directly inside ``node``, in order."""
    for name in ("body", "handlers", "orelse", "finalbody", "cases"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            yield from value


_AST_CACHE: list[tuple[str, ast.Module]] = []  # the last two texts: the current one and the one tried


def _ast_of(text: str) -> ast.Module:
    """``ast.parse(text)``, shared by the finding keys and the regions of one pass."""
    for cached, module in _AST_CACHE:
        if cached is text or cached == text:
            return module
    module = ast.parse(text)
    _AST_CACHE[:] = [*_AST_CACHE[-1:], (text, module)]
    return module


def _function_line(finding: Finding) -> int:
    assert finding.leak is not None
    return finding.leak.function_line


def _why_no_form(finding: Finding) -> str:
    leak = finding.leak
    if finding.code == "CNL901":
        return "a module-level connection has no block to close it in"
    if leak is None or not leak.var:
        return "the resource is not bound to a name"
    if leak.via_with:
        return f"'with {leak.api.api}()' needs a fix by hand"
    return f"the catalog has no fix form for {leak.api.api}()"


def _compile_error(text: str, path: str) -> str | None:
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _parse_error(text: str, path: str) -> str | None:
    try:
        ast.parse(text, path)
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


__all__ = ["MAX_PASSES", "FixResult", "Fixed", "Unfixed", "apply", "fix_text", "plan_text"]
