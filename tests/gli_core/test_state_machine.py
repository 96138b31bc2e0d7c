"""The draw state machine as a hypothesis rule-based model: any sequence of events keeps the
machine on the documented path, DRAWN happens at most once, and CANCELLED is final."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gli_core.draw.state_machine import CANCELLABLE, DrawEvent, DrawState, InvalidTransition, decide

ORDER = [
    DrawState.SCHEDULED,
    DrawState.SALES_OPEN,
    DrawState.SALES_CLOSED,
    DrawState.RECONCILED,
    DrawState.DRAWN,
    DrawState.PUBLISHED,
]


class Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = DrawState.SCHEDULED
        self.history: list[DrawState] = [self.state]
        self.draws = 0

    @rule(event=st.sampled_from(list(DrawEvent)), reason=st.sampled_from(["", "venue flooded"]))
    def apply(self, event: DrawEvent, reason: str) -> None:
        try:
            t = decide(self.state, event, reason=reason)
        except InvalidTransition:
            expected_ok = (event is DrawEvent.CANCEL and self.state in CANCELLABLE and reason) or (
                event is not DrawEvent.CANCEL
                and self.state in ORDER[:-1]
                and ORDER[ORDER.index(self.state) + 1] == _target(event)
            )
            assert not expected_ok, f"{event} refused from {self.state}"
            return
        assert t.before == self.state
        if t.after is DrawState.DRAWN:
            self.draws += 1
        self.state = t.after
        self.history.append(self.state)

    @invariant()
    def on_the_path(self) -> None:
        states = [s for s in self.history if s is not DrawState.CANCELLED]
        assert states == ORDER[: len(states)]
        assert self.draws <= 1
        if DrawState.CANCELLED in self.history:
            assert self.history[-1] is DrawState.CANCELLED and DrawState.DRAWN not in self.history


def _target(event: DrawEvent) -> DrawState:
    return {
        DrawEvent.OPEN: DrawState.SALES_OPEN,
        DrawEvent.CLOSE: DrawState.SALES_CLOSED,
        DrawEvent.RECONCILE: DrawState.RECONCILED,
        DrawEvent.EXECUTE: DrawState.DRAWN,
        DrawEvent.PUBLISH: DrawState.PUBLISHED,
    }.get(event, DrawState.CANCELLED)


TestDrawStateMachine = Machine.TestCase


def test_cancel_needs_a_reason_and_is_refused_after_the_draw() -> None:
    with pytest.raises(InvalidTransition, match="reason"):
        decide(DrawState.SALES_OPEN, DrawEvent.CANCEL)
    with pytest.raises(InvalidTransition):
        decide(DrawState.DRAWN, DrawEvent.CANCEL, reason="too late")
