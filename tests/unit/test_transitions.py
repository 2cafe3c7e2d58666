"""The transitions table: complete, closed under its own moves, and as the spec draws it."""

from __future__ import annotations

import re
from pathlib import Path

from gigco.lifecycle.schedule import STEP_FOR_STATUS, Step
from gigco.lifecycle.transitions import CANCELLABLE, TERMINAL, TRANSITIONS
from gigco.models import JobStatus as S


def test_the_transitions_table_matches_the_spec() -> None:
    reachable = {to for moves in TRANSITIONS.values() for to in moves} | {S.DRAFT}
    assert reachable == set(S)
    assert {s for s, moves in TRANSITIONS.items() if not moves} == {
        S.CLOSED,
        S.REJECTED,
        S.EXPIRED,
        S.CANCELLED,
        S.NO_WORKER,
    }
    assert {S.DRAFT, S.PRICED, S.OFFERED, S.ACCEPTED, S.WORKER_ASSIGNED, S.SCHEDULED} == CANCELLABLE


def test_every_status_has_an_entry_and_moves_only_to_statuses() -> None:
    assert set(TRANSITIONS) == set(S)
    assert all(moves <= set(S) for moves in TRANSITIONS.values())
    assert all(status not in moves for status, moves in TRANSITIONS.items())  # no self-loops


def _readme_diagram() -> tuple[set[tuple[S, S]], set[S]]:
    """The README's lifecycle diagram: its moves between statuses, and the statuses it ends."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    diagram = readme.split("stateDiagram-v2", 1)[1].split("```", 1)[0]
    arrows = re.findall(r"^\s*(\S+) --> (\S+?)(?::|$)", diagram, flags=re.MULTILINE)
    moves = {(S(a), S(b)) for a, b in arrows if "[*]" not in (a, b)}
    ends = {S(a) for a, b in arrows if b == "[*]"}
    return moves, ends


def test_the_table_allows_exactly_the_moves_the_readme_draws() -> None:
    drawn, ends = _readme_diagram()
    allowed = {(status, to) for status, moves in TRANSITIONS.items() for to in moves}
    assert allowed == drawn, {"not drawn": allowed - drawn, "not allowed": drawn - allowed}
    assert {S.CLOSED, S.REJECTED, S.EXPIRED, S.CANCELLED, S.NO_WORKER} == TERMINAL == ends


def _reachable_from(start: S) -> set[S]:
    seen, todo = {start}, [start]
    while todo:
        for to in TRANSITIONS[todo.pop()] - seen:
            seen.add(to)
            todo.append(to)
    return seen


def test_every_status_is_reachable_from_draft() -> None:
    assert _reachable_from(S.DRAFT) == set(S)


def test_every_non_terminal_status_can_still_end() -> None:
    for status in set(S) - TERMINAL:
        assert _reachable_from(status) & TERMINAL, status


def test_the_system_steps_wait_only_in_non_terminal_states() -> None:
    # But one: a cancelled job may still owe its late-cancellation fee, whose charge keeps
    # the job's deadline columns (the sweeps' own) and never moves it (a terminal status).
    assert set(STEP_FOR_STATUS) & TERMINAL == {S.CANCELLED}
    assert STEP_FOR_STATUS[S.CANCELLED] == Step.LATE_CANCEL_FEE
    assert S.CANCELLED not in TRANSITIONS[S.IN_PROGRESS]  # work started: no cancelling
