"""CFG unit tests: nodes are selected by their source line, edges checked by where they lead."""

from __future__ import annotations

import ast
import textwrap

from connlint import cfg


def graph(src: str) -> tuple[cfg.Graph, list[str]]:
    src = textwrap.dedent(src)
    func = ast.parse(src).body[0]
    assert isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
    return cfg.build(func), src.splitlines()


def line_of(lines: list[str], text: str) -> int:
    matches = [i for i, line in enumerate(lines, 1) if line.strip() == text]
    assert len(matches) == 1, (text, matches)
    return matches[0]


def stmt(g: cfg.Graph, lines: list[str], text: str) -> cfg.Node:
    skip = (cfg.JOIN, cfg.ENTRY, cfg.RETURN_EXIT, cfg.RAISE_EXIT, cfg.FALL_OFF)
    nodes = [n for n in g.find(line_of(lines, text)) if n.kind not in skip]
    assert nodes, text
    return nodes[0]


def reaches(start: cfg.Node, goal: cfg.Node, *, via_exc: bool = True) -> bool:
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n is goal:
            return True
        if n.id in seen:
            continue
        seen.add(n.id)
        stack.extend(t for t, _ in n.succ)
        if via_exc and n.exc is not None:
            stack.append(n.exc)
    return False


def normal_successor_lines(node: cfg.Node) -> set[int]:
    """Lines of the first non-join nodes after ``node`` on normal edges."""
    out, stack, seen = set(), [t for t, _ in node.succ], set()
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        if n.kind == cfg.JOIN:
            stack.extend(t for t, _ in n.succ)
        else:
            out.add(n.line)
    return out


def test_return_goes_through_finally_before_exit() -> None:
    g, lines = graph(
        """
        def f(conn):
            try:
                return conn.query()
            finally:
                conn.close()
            after()
        """
    )
    ret = stmt(g, lines, "return conn.query()")
    assert ret.jump == "return"
    assert normal_successor_lines(ret) == {line_of(lines, "conn.close()")}
    # the finally copy reached by 'return' goes to the function's return exit, never to after()
    closes = [n for n in g.find(line_of(lines, "conn.close()")) if n.kind == cfg.STMT]
    # one copy per continuation that reaches it: return and exception (the body never falls through)
    assert len(closes) == 2
    after_node = stmt(g, lines, "after()")
    copy_after_return = next(n for n in closes if reaches(ret, n, via_exc=False))
    assert not reaches(copy_after_return, after_node, via_exc=False)
    assert reaches(copy_after_return, g.return_exit, via_exc=False)


def test_exception_in_try_body_goes_to_handler_then_past_try() -> None:
    g, lines = graph(
        """
        def f():
            try:
                work()
            except ValueError:
                handle()
            done()
        """
    )
    work = stmt(g, lines, "work()")
    assert work.exc is not None and work.exc.kind == cfg.DISPATCH
    handler_lines = normal_successor_lines(work.exc)
    assert line_of(lines, "except ValueError:") in handler_lines
    # a typed handler does not catch everything: the dispatch can also re-raise to the raise exit
    assert any(t is g.raise_exit for t, _ in work.exc.succ)
    assert reaches(stmt(g, lines, "handle()"), stmt(g, lines, "done()"), via_exc=False)


def test_catch_all_handler_does_not_reraise() -> None:
    g, lines = graph(
        """
        def f():
            try:
                work()
            except Exception:
                pass
        """
    )
    dispatch = stmt(g, lines, "work()").exc
    assert dispatch is not None
    assert all(t is not g.raise_exit for t, _ in dispatch.succ)


def test_break_and_continue_targets() -> None:
    g, lines = graph(
        """
        def f(items):
            for x in items:
                if x:
                    break
                continue
            else:
                exhausted()
            after()
        """
    )
    brk = stmt(g, lines, "break")
    cont = stmt(g, lines, "continue")
    header = stmt(g, lines, "for x in items:")
    assert header.kind == cfg.FOR
    assert reaches(cont, header, via_exc=False) and normal_successor_lines(cont) == {header.line}
    assert normal_successor_lines(brk) == {line_of(lines, "after()")}  # break skips the else
    assert reaches(header, stmt(g, lines, "exhausted()"), via_exc=False)


def test_while_true_has_no_exit_but_break() -> None:
    g, lines = graph(
        """
        def f():
            while True:
                step()
            unreachable()
        """
    )
    test = stmt(g, lines, "while True:")
    assert all(label is not False for _, label in test.succ)
    assert not reaches(g.entry, stmt(g, lines, "unreachable()"), via_exc=False)


def test_with_exit_runs_on_exception_and_on_return() -> None:
    g, lines = graph(
        """
        def f(p):
            with open(p) as fh:
                if fh:
                    return 1
                read(fh)
            after()
        """
    )
    exits = [n for n in g.nodes if n.kind == cfg.WITH_EXIT]
    assert {n.jump for n in exits} == {"normal", "return", "raise"}
    ret = stmt(g, lines, "return 1")
    assert all(t.kind == cfg.WITH_EXIT for t, _ in ret.succ)


def test_statements_that_cannot_raise_have_no_exception_edge() -> None:
    g, lines = graph(
        """
        def f(conn):
            x = 1
            y = conn
            z = conn.cursor()
            assert y
        """
    )
    assert stmt(g, lines, "x = 1").exc is None
    assert stmt(g, lines, "y = conn").exc is None
    assert stmt(g, lines, "z = conn.cursor()").exc is not None
    assert stmt(g, lines, "assert y").exc is not None


def test_yield_raises_except_in_fixtures() -> None:
    src = "def f(conn):\n    yield conn\n    conn.close()\n"
    func = ast.parse(src).body[0]
    assert isinstance(func, ast.FunctionDef)
    assert cfg.build(func).find(2)[0].exc is not None
    assert cfg.build(func, yield_raises=False).find(2)[0].exc is None


def test_match_without_wildcard_can_fall_through() -> None:
    g, lines = graph(
        """
        def f(cmd):
            match cmd:
                case "a":
                    a()
                case _:
                    other()
            after()
        """
    )
    subject = stmt(g, lines, "match cmd:")
    # a wildcard case: the subject node does not jump straight past the match
    assert normal_successor_lines(subject) == {line_of(lines, 'case "a":'), line_of(lines, "case _:")}


def test_nested_finally_is_linear_in_size() -> None:
    depth = 60
    body = "    work()\n"
    for i in range(depth):
        indented = "\n".join("    " + line for line in body.splitlines())
        body = "    try:\n" + indented + f"\n    finally:\n        cleanup{i}()\n"
    src = "def f():\n" + body
    func = ast.parse(src).body[0]
    assert isinstance(func, ast.FunctionDef)
    g = cfg.build(func)
    # each finally body is copied once per continuation that passes through it (here 2)
    assert len(g.nodes) < 20 * depth
