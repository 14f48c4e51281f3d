"""A ticket's state changes in one place, ``collector.tickets.transitions.move``, which checks
the lifecycle and logs the operation: an AST walk over the code base finds every write.

A write is an assignment to ``.state`` on an expression known to hold a ticket (a parameter
annotated ``Ticket``, a name bound from a query of ``Ticket`` or from a function returning one),
or of a ``TicketState``; ``setattr(ticket, "state", ...)``; ``Ticket(state=...)`` (a ticket
starts in the lifecycle's initial state, the model's default); an ``update(Ticket)`` or
``insert(Ticket)`` setting ``state``.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ONE_PLACE = ("collector/tickets/transitions.py", "move")
_TICKET = re.compile(r"\bTicket\b")
_SQL_WRITES = {"update", "insert"}


@dataclass(frozen=True)
class Write:
    """One write of a ticket's state: where, and the statement."""

    path: str
    function: str
    line: int
    source: str


def _python_files() -> Iterator[Path]:
    """Every first-party Python file (not the virtualenv, caches or build metadata)."""
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d != "__pycache__" and "egg-info" not in d
        )
        yield from (Path(folder, f) for f in sorted(files) if f.endswith(".py"))


@cache
def _module_ticket_functions(module: str) -> frozenset[str]:
    """``_ticket_functions`` of a first-party module, by its dotted name."""
    base = ROOT.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.is_file():
        return frozenset()
    return _ticket_functions(ast.parse(path.read_text(), str(path)))


def _ticket_functions(tree: ast.Module) -> frozenset[str]:
    """Module-level functions whose return annotation names ``Ticket``."""
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.returns is not None
        and _TICKET.search(ast.unparse(node.returns))
    )


class _Finder(ast.NodeVisitor):
    """Walks one module, scope by scope, tracking the names that hold tickets."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.imports: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
        self.local = _ticket_functions(tree)
        self.writes: list[Write] = []
        self.scope: list[str] = []
        self.bound: set[str] = set()

    # --- what holds a ticket ---

    def _dotted(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.imports.get(func.id)
        if isinstance(func, ast.Attribute):
            base = self._dotted(func.value)
            return f"{base}.{func.attr}" if base else None
        return None

    def _returns_ticket(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name) and func.id in self.local:
            return True
        dotted = self._dotted(func)
        if dotted is None or "." not in dotted:
            return False
        module, name = dotted.rsplit(".", 1)
        return name in _module_ticket_functions(module)

    def _mentions(self, node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Name) and (n.id == "Ticket" or n.id in self.bound)
            for n in ast.walk(node)
        )

    def holds_ticket(self, node: ast.expr) -> bool:
        """May this expression's value be a ticket (or tickets, or a query of them)?"""
        if isinstance(node, ast.Name):
            return node.id in self.bound
        if isinstance(node, ast.Call):
            if self._returns_ticket(node.func):
                return True
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(self._mentions(a) for a in args):
                return True
            return isinstance(node.func, ast.Attribute) and self.holds_ticket(node.func.value)
        if isinstance(node, ast.IfExp):
            return self.holds_ticket(node.body) or self.holds_ticket(node.orelse)
        if isinstance(node, ast.BoolOp):
            return any(self.holds_ticket(v) for v in node.values)
        if isinstance(node, ast.Subscript | ast.Starred | ast.Await | ast.NamedExpr):
            return self.holds_ticket(node.value)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return any(self.holds_ticket(e) for e in node.elts)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            return self.holds_ticket(node.elt)
        return False

    def _bind_scope(self, body: list[ast.stmt], params: list[ast.arg]) -> None:
        """The names of a scope that hold tickets (to a fixed point, flow-insensitive)."""
        for arg in params:
            if arg.annotation is not None and _TICKET.search(ast.unparse(arg.annotation)):
                self.bound.add(arg.arg)
        nodes = [n for stmt in body for n in _walk_scope(stmt)]
        while True:
            before = len(self.bound)
            for node in nodes:
                for target, value in _bindings(node):
                    if value is None or self.holds_ticket(value):
                        self.bound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if len(self.bound) == before:
                return

    # --- scopes ---

    def visit_Module(self, node: ast.Module) -> None:
        self._bind_scope(node.body, [])
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer = set(self.bound)
        self.scope.append(node.name)
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        self._bind_scope(node.body, params)
        self.generic_visit(node)
        self.scope.pop()
        self.bound = outer

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    # --- writes ---

    def _record(self, node: ast.AST) -> None:
        self.writes.append(
            Write(self.path, ".".join(self.scope), getattr(node, "lineno", 0), ast.unparse(node))
        )

    def _writes_state(self, target: ast.expr, value: ast.expr | None) -> bool:
        if isinstance(target, ast.Tuple | ast.List):
            return any(self._writes_state(t, None) for t in target.elts)
        if not (isinstance(target, ast.Attribute) and target.attr == "state"):
            return False
        names_state = value is not None and "TicketState" in ast.unparse(value)
        return names_state or self.holds_ticket(target.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(self._writes_state(t, node.value) for t in node.targets):
            self._record(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self._writes_state(node.target, node.value):
            self._record(node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None and self._writes_state(node.target, node.value):
            self._record(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if self._is_state_write(node):
            self._record(node)
        self.generic_visit(node)

    def _is_state_write(self, node: ast.Call) -> bool:
        func = node.func
        keywords = {k.arg for k in node.keywords}
        if isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) >= 2:
            name = node.args[1]
            is_state = isinstance(name, ast.Constant) and name.value == "state"
            return is_state and self.holds_ticket(node.args[0])
        if isinstance(func, ast.Name) and func.id == "Ticket":
            return "state" in keywords
        if isinstance(func, ast.Attribute) and func.attr == "values" and _sql_write(func.value):
            return "state" in keywords or any(_has_state_key(a) for a in node.args)
        if any(_sql_write(a) for a in node.args):
            return any(_has_state_key(a) for a in node.args)
        return False


def _sql_write(node: ast.AST) -> bool:
    """Is there an ``update(Ticket)`` or ``insert(Ticket)`` in this expression?"""
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in _SQL_WRITES
        and any(isinstance(a, ast.Name) and a.id == "Ticket" for a in n.args)
        for n in ast.walk(node)
    )


def _has_state_key(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Dict)
        and any(isinstance(k, ast.Constant) and k.value == "state" for k in n.keys)
        for n in ast.walk(node)
    )


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope, not those of the functions and classes nested in it."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from _walk_scope(child)


def _bindings(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    """(target, value) of each name binding; value None: annotated as a ticket."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield target, node.value
    elif isinstance(node, ast.AnnAssign):
        if _TICKET.search(ast.unparse(node.annotation)):
            yield node.target, None
        elif node.value is not None:
            yield node.target, node.value
    elif isinstance(node, ast.NamedExpr):
        yield node.target, node.value
    elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
        yield node.target, node.iter
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        yield node.optional_vars, node.context_expr


def state_writes(source: str, *, path: str = "<snippet>") -> list[Write]:
    """Every write of a ticket's state in one module's source."""
    tree = ast.parse(source, path)
    finder = _Finder(path, tree)
    finder.visit(tree)
    return finder.writes


def _project_writes() -> list[Write]:
    writes = []
    for path in _python_files():
        relative = path.relative_to(ROOT).as_posix()
        writes += state_writes(path.read_text(), path=relative)
    return writes


def test_a_ticket_state_changes_only_in_move() -> None:
    writes = _project_writes()
    assert [w for w in writes if (w.path, w.function) != ONE_PLACE] == []
    # ... and the walk does see the one place (it is not blind).
    assert [(w.path, w.function, w.source) for w in writes] == [
        (*ONE_PLACE, "ticket.state = to.value")
    ]


FOUND = {
    "parameter annotated": """
def close(ticket: Ticket) -> None:
    ticket.state = "closed"
""",
    "loop over a query": """
def close_all(session):
    for t in session.scalars(select(Ticket).where(Ticket.id > 0)):
        t.state = "closed"
""",
    "list of a query": """
def close_all(session):
    query = select(Ticket)
    due = list(session.scalars(query))
    for t in due:
        t.state = "closed"
""",
    "a TicketState on anything": """
def close(x):
    x.state = TicketState.CLOSED.value
""",
    "setattr": """
def close(session):
    t = session.get(Ticket, 1)
    setattr(t, "state", "closed")
""",
    "constructor": """
def make():
    return Ticket(title="t", state="closed")
""",
    "update statement": """
def close(session):
    session.execute(update(Ticket).values(state="closed"))
""",
    "update, executemany": """
def close(conn):
    conn.execute(update(Ticket), [{"id": 1, "state": "closed"}])
""",
    "local function returning a ticket": """
def pick(session) -> Ticket | None:
    return None

def close(session):
    ticket = pick(session)
    ticket.state = "closed"
""",
    "imported function returning a ticket": """
from collector.tickets.queries import get_ticket

def close(session, principal):
    t = get_ticket(session, ref="TKT-1", principal=principal)
    t.state = "closed"
""",
    "module function returning tickets and views": """
from collector.tickets import urgent

def close(session, principal, now):
    for ticket, _view in urgent.queue(session, principal=principal, now=now):
        ticket.state = "closed"
""",
}

NOT_FOUND = {
    "a problem's state": """
def move(problem: Problem, to: str) -> None:
    problem.state = to
""",
    "an alarm's state": """
def clear(alarm: Alarm) -> None:
    alarm.state = AlarmState.CLEARED.value
""",
    "an object's own state": """
class Link:
    def __init__(self) -> None:
        self.state = LinkStatus()
""",
    "reading a ticket's state": """
def closed(ticket: Ticket) -> bool:
    return ticket.state == "closed"
""",
}


@pytest.mark.parametrize("source", FOUND.values(), ids=FOUND.keys())
def test_the_walk_finds_a_state_write(source: str) -> None:
    assert len(state_writes(source)) == 1


@pytest.mark.parametrize("source", NOT_FOUND.values(), ids=NOT_FOUND.keys())
def test_the_walk_leaves_other_states_alone(source: str) -> None:
    assert state_writes(source) == []
