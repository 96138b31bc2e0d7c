"""The draw state machine of a raffle (sans I/O): states, events and the one decider.

    SCHEDULED -> SALES_OPEN -> SALES_CLOSED -> RECONCILED -> DRAWN -> PUBLISHED
    CANCELLED from any state before DRAWN (with a reason; tickets stay on record for refunds)

:func:`decide` takes the current state and an event and returns the next state or raises
:class:`InvalidTransition`; it never reads a clock or a database. The draw service applies the
decision with a compare-and-set (``UPDATE ... WHERE state = <expected>``) inside the
transaction that does the work, so two concurrent requests give exactly one transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gli_core.errors import CoreError


class DrawState(StrEnum):
    SCHEDULED = "SCHEDULED"
    SALES_OPEN = "SALES_OPEN"
    SALES_CLOSED = "SALES_CLOSED"
    RECONCILED = "RECONCILED"
    DRAWN = "DRAWN"
    PUBLISHED = "PUBLISHED"
    CANCELLED = "CANCELLED"


class DrawEvent(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    RECONCILE = "reconcile"
    EXECUTE = "execute"
    PUBLISH = "publish"
    CANCEL = "cancel"


class InvalidTransition(CoreError):
    code = "invalid_draw_transition"
    status = 409


_NEXT: dict[tuple[DrawState, DrawEvent], DrawState] = {
    (DrawState.SCHEDULED, DrawEvent.OPEN): DrawState.SALES_OPEN,
    (DrawState.SALES_OPEN, DrawEvent.CLOSE): DrawState.SALES_CLOSED,
    (DrawState.SALES_CLOSED, DrawEvent.RECONCILE): DrawState.RECONCILED,
    (DrawState.RECONCILED, DrawEvent.EXECUTE): DrawState.DRAWN,
    (DrawState.DRAWN, DrawEvent.PUBLISH): DrawState.PUBLISHED,
}
CANCELLABLE = frozenset({DrawState.SCHEDULED, DrawState.SALES_OPEN, DrawState.SALES_CLOSED, DrawState.RECONCILED})
#: states in which the raffle's ticket set is frozen for the draw: nothing is recorded or voided
FROZEN = (DrawState.RECONCILED, DrawState.DRAWN, DrawState.PUBLISHED)


@dataclass(frozen=True)
class Transition:
    before: DrawState
    event: DrawEvent
    after: DrawState


def decide(state: DrawState, event: DrawEvent, *, reason: str = "") -> Transition:
    """The transition ``event`` causes from ``state``; :class:`InvalidTransition` if none."""
    if event is DrawEvent.CANCEL:
        if state not in CANCELLABLE:
            raise InvalidTransition(f"a raffle in state {state} can no longer be cancelled")
        if not reason.strip():
            raise InvalidTransition("cancelling a raffle needs a reason")
        return Transition(state, event, DrawState.CANCELLED)
    after = _NEXT.get((state, event))
    if after is None:
        raise InvalidTransition(f"{event} is not allowed in state {state}")
    return Transition(state, event, after)
