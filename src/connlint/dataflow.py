"""Forward "may still be open" analysis over a function's control-flow graph.

The state at a program point says, for every name, which acquisition sites it may hold, and for every
site that may be open whether it got there on a normal path, after an exception, or both. The
transfer function applies the node's ownership events; exception edges carry the state before the
node's acquisitions (an acquiring call that raises acquires nothing) but after its releases. The
fixpoint is computed with a worklist in reverse post-order, so cost stays linear in the size of the
function for the usual nesting depths; no path is ever enumerated.
"""

from __future__ import annotations

import ast
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from connlint import cfg
from connlint.events import (
    ACQ,
    BIND,
    CM_EXIT,
    DEL,
    ESCAPE,
    FIXTURE_RETURN,
    METHOD,
    POOL,
    RELEASE,
    Event,
    EventBuilder,
    Site,
)

NORMAL = 1
EXC = 2
YIELD_EXC = 4  # raised into a generator context manager at its yield


@dataclass(frozen=True)
class State:
    pts: dict[str, frozenset[int]]
    open: dict[int, int]

    def join(self, other: State) -> State:
        if self is other:
            return self
        pts = _join_pts(self.pts, other.pts)
        opened = _join_open(self.open, other.open)
        if pts is self.pts and opened is self.open:
            return self
        return State(pts, opened)

    def same(self, other: State) -> bool:
        return (self.pts is other.pts or self.pts == other.pts) and (
            self.open is other.open or self.open == other.open)


# States are never changed once made, so a join or a transfer that changes nothing hands back the
# very dict it was given: the states of most nodes share their maps, and joining or comparing two
# shared maps costs nothing (a function with hundreds of connections would otherwise copy and compare
# hundreds of entries at every node).

def _join_pts(a: dict[str, frozenset[int]], b: dict[str, frozenset[int]]) -> dict[str, frozenset[int]]:
    if a is b or not b:
        return a
    if not a:
        return b
    out: dict[str, frozenset[int]] | None = None
    for var, sites in b.items():
        mine = a.get(var)
        if mine is sites or (mine is not None and sites <= mine):
            continue
        if out is None:
            out = dict(a)
        out[var] = sites if mine is None else mine | sites
    return a if out is None else out


def _join_open(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    if a is b or not b:
        return a
    if not a:
        return b
    out: dict[int, int] | None = None
    for site, flags in b.items():
        mine = a.get(site, 0)
        if mine | flags == mine:
            continue
        if out is None:
            out = dict(a)
        out[site] = mine | flags
    return a if out is None else out


EMPTY = State({}, {})


@dataclass
class Observations:
    """What happened to each site on some reachable path (gathered once the fixpoint is reached)."""

    released: set[int] = field(default_factory=set)  # killed by a release or a hand-off
    escaped: dict[int, set[str]] = field(default_factory=dict)  # site -> {"return", "store"}
    overwritten: dict[int, tuple[int, str]] = field(default_factory=dict)  # site -> (line, how)
    unawaited_close: dict[int, int] = field(default_factory=dict)  # site -> line of close()
    fixture_returned: set[int] = field(default_factory=set)


@dataclass
class Result:
    graph: cfg.Graph
    sites: list[Site]
    in_states: dict[int, State]
    obs: Observations
    normal_leaks: dict[int, State] = field(default_factory=dict)
    exc_leaks: set[int] = field(default_factory=set)


class Analysis:
    def __init__(self, graph: cfg.Graph, builder: EventBuilder, initial: Optional[list[Event]] = None) -> None:
        self.graph = graph
        self.builder = builder
        self.events: dict[int, list[Event]] = {n.id: builder.events(n) for n in graph.nodes}
        if initial:
            self.events[graph.entry.id] = initial + self.events[graph.entry.id]
        self.refine: dict[int, tuple[str, bool]] = {}
        for n in graph.nodes:
            if n.kind == cfg.TEST and n.ast_node is not None:
                r = EventBuilder.none_branch(n.ast_node.test)  # type: ignore[attr-defined]
                if r is not None:
                    self.refine[n.id] = r
        self.sites = builder.sites
        self._preds: dict[int, list[tuple[cfg.Node, bool]]] | None = None
        self._transfer_cache: dict[int, tuple[State, State]] = {}
        self._edge_cache: dict[tuple[int, int, bool], dict[int, int]] = {}  # open sites along an edge
        # branch conditions that stay true through the function (if own: ... if own: close())
        from connlint.conditions import condition_key, enclosing_conditions

        self.site_conditions: dict[int, frozenset[tuple[str, bool]]] = {}
        self.test_keys: dict[int, tuple[str, bool]] = {}
        if any(n.kind == cfg.TEST for n in graph.nodes) and self.sites:
            func = graph.entry.ast_node
            by_call = enclosing_conditions(func) if func is not None else {}
            for site in self.sites:
                conds = by_call.get(id(site.call))
                if conds:
                    self.site_conditions[site.id] = conds
            if self.site_conditions:
                keys = {k for conds in self.site_conditions.values() for k, _ in conds}
                for n in graph.nodes:
                    if n.kind == cfg.TEST and isinstance(n.ast_node, ast.If):
                        key = condition_key(n.ast_node.test)
                        if key is not None and key[0] in keys:
                            self.test_keys[n.id] = key
        self.children: dict[int, set[int]] = {}
        self.yield_nodes = {
            n.id for n in graph.nodes if n.ast_node is not None and _has_yield(n)
        } if builder.mode == "contextmanager" else set()

    # ------------------------------------------------------------------ transfer

    def _kill(self, opened: dict[int, int], site: int, obs: Observations | None, how: str | None) -> None:
        opened.pop(site, None)
        if obs is not None:
            obs.released.add(site)
            if how is not None:
                obs.escaped.setdefault(site, set()).add(how)
        for child in self.children.get(site, ()):
            opened.pop(child, None)

    def _lose(self, state_pts: dict[str, frozenset[int]], opened: dict[int, int], var: str,
              obs: Observations | None, line: int, how: str) -> None:
        """``var`` stops referring to what it held: a site no other name holds is lost while open."""
        held = state_pts.pop(var, frozenset())
        for site in held:
            if site not in opened:
                continue
            if any(site in other for other in state_pts.values()):
                continue
            if obs is not None and opened[site] & NORMAL:
                obs.overwritten.setdefault(site, (line, how))
            opened.pop(site, None)

    def transfer(self, node: cfg.Node, state: State, obs: Observations | None = None) -> tuple[State, State]:
        """(state after the node, state on its exception edge)."""
        events = self.events[node.id]
        if events and not any(_acts(ev, state.pts) for ev in events):
            events = []
        if not events:
            # nothing here touches what the state holds: share its maps
            out = state
            if node.kind == cfg.HANDLER and any(f != NORMAL for f in state.open.values()):
                out = State(state.pts, {site: NORMAL for site in state.open})
            if node.exc is None:
                return out, EMPTY
            flag = YIELD_EXC | EXC if node.id in self.yield_nodes else EXC
            return out, State(state.pts, {s: flag for s in state.open})
        pts = dict(state.pts)
        opened = dict(state.open)
        exc_open: dict[int, int] | None = dict(state.open) if node.exc is not None else None
        for ev in events:
            op = ev.op
            if op == ACQ:
                assert isinstance(ev.arg, int)
                site = ev.arg
                s = self.sites[site]
                parents = pts.get(s.receiver, frozenset()) - {site} if s.receiver is not None else frozenset()
                for parent in parents:
                    if site not in self.children.setdefault(parent, set()):
                        self.children[parent].add(site)
                        s.parents.add(parent)
                if parents and not any(p in opened for p in parents):
                    # derived from a resource that was handed off (stored, returned): it goes with it
                    if ev.var is not None:
                        self._lose(pts, opened, ev.var, obs, node.line, "overwritten")
                        pts[ev.var] = frozenset((site,))
                    continue
                if ev.var is not None:
                    self._lose(pts, opened, ev.var, obs, node.line, "overwritten")
                    pts[ev.var] = frozenset((site,))
                opened[site] = NORMAL
            elif op == BIND:
                assert ev.var is not None
                sources: tuple[str, ...] = ev.arg or ()  # type: ignore[assignment]
                new: frozenset[int] = frozenset()
                for source in sources:
                    new = new | pts.get(source, frozenset())
                lost = pts.get(ev.var, frozenset()) - new
                if lost:
                    # rebinding: what the name held is lost unless another name still holds it
                    pts[ev.var] = lost
                    self._lose(pts, opened, ev.var, obs, node.line, "overwritten")
                if new:
                    pts[ev.var] = new
                else:
                    pts.pop(ev.var, None)
            elif op == DEL:
                assert ev.var is not None
                self._lose(pts, opened, ev.var, obs, ev.line or node.line, "deleted")
            elif op in (METHOD, POOL, RELEASE, ESCAPE, CM_EXIT, FIXTURE_RETURN):
                if ev.var is None:
                    assert isinstance(ev.arg, int)
                    targets: Iterable[int] = (ev.arg,)
                else:
                    targets = pts.get(ev.var, ())
                for site in list(targets):
                    if site not in opened and (exc_open is None or site not in exc_open):
                        continue
                    api = self.sites[site].api
                    if op == METHOD:
                        if ev.arg not in api.release:
                            continue
                        if api.must_await(str(ev.arg)) and not ev.flag:
                            if obs is not None:
                                obs.unawaited_close.setdefault(site, ev.line)
                            continue
                        how = None
                    elif op == POOL:
                        if ev.arg not in api.pool_release:
                            continue
                        if api.must_await(str(ev.arg)) and not ev.flag:
                            if obs is not None:
                                obs.unawaited_close.setdefault(site, ev.line)
                            continue
                        how = None
                    elif op == CM_EXIT:
                        if not api.cm_releases:
                            continue
                        how = None
                    elif op == FIXTURE_RETURN:
                        if obs is not None and site in opened:
                            obs.fixture_returned.add(site)
                        continue
                    elif op == ESCAPE:
                        how = str(ev.arg)
                    else:
                        how = None
                    self._kill(opened, site, obs, how)
                    if exc_open is not None:
                        # a release or hand-off that raises still counts: no double report
                        self._kill(exc_open, site, None, None)
        if node.kind == cfg.HANDLER:
            # the exception is caught: from here on this is an ordinary path of the function
            opened = {site: NORMAL for site in opened}
        out = State(pts, opened)
        if exc_open is None:
            return out, EMPTY
        flag = YIELD_EXC | EXC if node.id in self.yield_nodes else EXC
        return out, State(state.pts, {s: flag for s in exc_open})

    def edge_state(self, node: cfg.Node, out: State, label: bool | None) -> State:
        key = self.test_keys.get(node.id)
        if key is not None and label is not None:
            # on this branch the condition is (key[0], key[1] == label): a site acquired under the
            # opposite value of the same condition was never acquired on this path
            holds = (key[0], key[1] == label)
            opposite = (holds[0], not holds[1])
            gone = [s for s in out.open if opposite in self.site_conditions.get(s, ())]
            if gone:
                out = State(out.pts, {s: f for s, f in out.open.items() if s not in gone})
        return self._refine_none(node, out, label)

    def _refine_none(self, node: cfg.Node, out: State, label: bool | None) -> State:
        ref = self.refine.get(node.id)
        if ref is None or label is None or ref[1] != label:
            return out
        var = ref[0]
        held = out.pts.get(var)
        if not held:
            return out
        pts = dict(out.pts)
        del pts[var]
        opened = {s: f for s, f in out.open.items() if s not in held or any(s in o for o in pts.values())}
        return State(pts, opened)

    # ------------------------------------------------------------------ fixpoint

    def run(self, max_steps: int | None = None) -> Result:
        """Reach the fixpoint. ``max_steps`` bounds the node visits (a function whose state keeps
        growing, e.g. thousands of acquisitions in deep loops, raises ``BudgetExceeded``)."""
        graph = self.graph
        if max_steps is None:
            max_steps = 50 * len(graph.nodes) + 10_000
        steps = 0
        order = _reverse_postorder(graph)
        rank = {node.id: i for i, node in enumerate(order)}
        by_id = {node.id: node for node in graph.nodes}
        in_states: dict[int, State] = {graph.entry.id: EMPTY}
        heap = [(rank[graph.entry.id], graph.entry.id)]
        queued = {graph.entry.id}
        while heap:
            _, nid = heapq.heappop(heap)
            queued.discard(nid)
            steps += 1
            if steps > max_steps:
                raise cfg.BudgetExceeded(f"dataflow did not settle within {max_steps} steps")
            node = by_id[nid]
            out, exc = self.transfer(node, in_states[nid])
            targets = [(t, self.edge_state(node, out, label)) for t, label in node.succ]
            if node.exc is not None:
                targets.append((node.exc, exc))
            for target, st in targets:
                old = in_states.get(target.id)
                new = st if old is None else old.join(st)
                if old is None or not new.same(old):
                    in_states[target.id] = new
                    if target.id not in queued and target.id in rank:
                        queued.add(target.id)
                        heapq.heappush(heap, (rank[target.id], target.id))
        obs = Observations()
        for node in order:
            if node.id in in_states:
                self.transfer(node, in_states[node.id], obs)
        result = Result(graph, self.sites, in_states, obs)
        ret = in_states.get(graph.return_exit.id, EMPTY)
        for site, flags in ret.open.items():
            if flags & NORMAL:
                result.normal_leaks[site] = ret
            else:
                result.exc_leaks.add(site)
        rai = in_states.get(graph.raise_exit.id, EMPTY)
        result.exc_leaks.update(s for s in rai.open if s not in result.normal_leaks)
        return result

    # ------------------------------------------------------------------ witnesses for messages

    def witness(self, result: Result, site: int, exceptional: bool) -> tuple[cfg.Node | None, bool]:
        """The node that best explains a leak of ``site``: the exit statement for a normal-path leak,
        the first statement that may raise for an exception-path one. The flag says whether the raise
        happened at a generator's yield."""
        graph = self.graph
        preds = self._preds
        if preds is None:
            preds = self._preds = graph.predecessors()
        starts = [graph.raise_exit, graph.return_exit] if exceptional else [graph.return_exit]
        want = EXC if exceptional else NORMAL
        seen: set[int] = set()
        stack = [n for n in starts if site in result.in_states.get(n.id, EMPTY).open]
        candidates: list[tuple[int, cfg.Node, bool]] = []
        cache = self._transfer_cache  # the final states do not change between witnesses
        edges = self._edge_cache
        while stack:
            node = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            for pred, via_exc in preds[node.id]:
                st_in = result.in_states.get(pred.id)
                if st_in is None:
                    continue
                edge = (pred.id, node.id, via_exc)
                opened = edges.get(edge)
                if opened is None:
                    if pred.id not in cache:
                        cache[pred.id] = self.transfer(pred, st_in)
                    out, exc = cache[pred.id]
                    opened = edges[edge] = (exc if via_exc else self.edge_state(pred, out, next(
                        (lab for t, lab in pred.succ if t is node), None))).open
                flags = opened.get(site, 0)
                if not flags:
                    continue
                if exceptional:
                    if via_exc and site in st_in.open:
                        candidates.append((pred.line, pred, bool(flags & YIELD_EXC)))
                        continue
                elif not flags & want:
                    continue
                elif pred.jump in ("return", "break", "continue") and pred.kind != cfg.WITH_EXIT:
                    candidates.append((0 if pred.kind != cfg.FALL_OFF else 1, pred, False))
                stack.append(pred)
        if not candidates:
            return None, False
        if exceptional:
            _, node, at_yield = min(candidates, key=lambda c: (c[0], c[1].id))
            return node, at_yield
        best = min(candidates, key=lambda c: (c[0], c[1].line))
        return best[1], False


def _acts(ev: Event, pts: dict[str, frozenset[int]]) -> bool:
    """Can this event change a state whose names hold ``pts``? (An event on a name that holds
    nothing, binding from names that hold nothing, changes nothing.)"""
    if ev.op == ACQ or ev.var is None or ev.var in pts:
        return True
    sources: tuple[str, ...] = ev.arg or ()  # type: ignore[assignment]
    return ev.op == BIND and any(source in pts for source in sources)


def _has_yield(node: cfg.Node) -> bool:
    for part in cfg.header_parts(node.ast_node):  # type: ignore[arg-type]
        for sub in cfg.walk_expr(part):
            if isinstance(sub, (ast.Yield, ast.YieldFrom)):
                return True
    return False


def _reverse_postorder(graph: cfg.Graph) -> list[cfg.Node]:
    seen: set[int] = set()
    post: list[cfg.Node] = []
    stack: list[tuple[cfg.Node, int]] = [(graph.entry, 0)]
    seen.add(graph.entry.id)
    while stack:
        node, i = stack.pop()
        succs = [t for t, _ in node.succ] + ([node.exc] if node.exc is not None else [])
        if i < len(succs):
            stack.append((node, i + 1))
            nxt = succs[i]
            if nxt.id not in seen:
                seen.add(nxt.id)
                stack.append((nxt, 0))
        else:
            post.append(node)
    post.reverse()
    return post
