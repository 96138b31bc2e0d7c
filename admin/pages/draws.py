"""Draw pages of the portal: the reconciliation gate, initiate, execute (with a confirmation step
and progress), results, proof, redraw of an unclaimed prize, publish (``docs/portal.md``,
"Raffles and draws").

Each step calls what ``tombola draw ...`` calls (``server/cli/draws.py``): the core's public
interface on the application (``app.core.draw_status``, ``draw_initiate``, ``draw_publish``,
``draw_redraw``, ``draw_proof_bytes``) and :func:`server.raffles.service.execute_draw` (the RNG
draw after the jurisdiction's rules), :func:`server.raffles.service.cancel_raffle` for a cancel.
The gate's per-device facts come from :func:`server.reconcile.service.report` (``tombola report
reconciliation``).

Who: the draw is the core's API (``/core/draw/*``), which only an installation-wide system admin
may call (:func:`server.auth.check_role`, as the API's ``AdminDep``); the pages show the draw's
state, gate and results to every role that reads reports of the raffle (its tenant and venues),
and another tenant's raffle is 404.

Execute runs in a thread of this process; the page polls a status fragment (htmx) until the
core's draw state says DRAWN, so a long draw (millions of tickets) shows progress rather than a
request that hangs.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from admin.menu import MENU, MenuEntry
from admin.pages.raffles import Problems, visible_raffle
from admin.web import PORTAL, CheckedForm, Portal, Response303, app_of, redirect, render, require_portal_role
from server.auth import check_role
from server.context import Tombola
from server.raffles import service as raffles
from server.reconcile import service as reconcile
from server.reports.service import REPORT_ROLES
from sync_protocol.bounds import NO_NUL
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)

Reader = Annotated[Portal, Depends(require_portal_role(*REPORT_ROLES))]
RaffleId = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]
#: who runs the draw: the core's API rule (an installation-wide system admin)
DRAWERS = ("admin",)
STEPS = (
    ("SALES_CLOSED", "Sales closed"),
    ("RECONCILED", "Tickets frozen"),
    ("DRAWN", "Winners drawn"),
    ("PUBLISHED", "Published"),
)
ORDER = {"SCHEDULED": 0, "SALES_OPEN": 0, "SALES_CLOSED": 1, "RECONCILED": 2, "DRAWN": 3, "PUBLISHED": 4}
#: how often the pages poll (ms): the running draw, and the gate while devices block it
POLL_DRAW_MS = 1000
POLL_GATE_MS = 5000

MENU.append(MenuEntry("Draws", f"{PORTAL}/draws", REPORT_ROLES, order=12))


# --- the running draw (per process) ------------------------------------------------------------


@dataclass
class Job:
    """A draw this process executes in a thread: running, then done or failed (code, sentence)."""

    raffle_id: str
    started: float
    finished: float | None = None
    error: tuple[str, str] | None = None


_JOBS: dict[str, Job] = {}
_JOBS_LOCK = threading.Lock()


def _start_execute(app: Tombola, raffle_id: str) -> Job:
    """Run :func:`server.raffles.service.execute_draw` in a thread with this request's context (its
    audit actor); one at a time per raffle (a second start while one runs joins it)."""
    with _JOBS_LOCK:
        job = _JOBS.get(raffle_id)
        if job is not None and job.finished is None:
            return job
        job = _JOBS[raffle_id] = Job(raffle_id, time.monotonic())
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(raffles.execute_draw, app, raffle_id)
        except TombolaError as exc:
            job.error = (exc.code, exc.detail)
        except Exception as exc:  # shown to the operator; the core wrote nothing (one transaction)
            job.error = ("draw_failed", f"The draw stopped: {type(exc).__name__}. Nothing was drawn; try again.")
        finally:
            job.finished = time.monotonic()

    threading.Thread(target=run, name=f"draw-{raffle_id}", daemon=True).start()
    return job


def _running(raffle_id: str) -> Job | None:
    job = _JOBS.get(raffle_id)
    return job if job is not None and job.finished is None else None


def _take_finished(raffle_id: str) -> Job | None:
    with _JOBS_LOCK:
        job = _JOBS.get(raffle_id)
        if job is not None and job.finished is not None:
            return _JOBS.pop(raffle_id)
    return None


# --- what the pages show -----------------------------------------------------------------------


def _may_draw(portal: Portal) -> bool:
    try:
        check_role(portal.principal, DRAWERS)
    except TombolaError:
        return False
    return True


def _require_drawer(portal: Portal) -> None:
    check_role(portal.principal, DRAWERS)  # Forbidden (403 page), as the core's API answers


def gate(app: Tombola, raffle_id: str, status: dict[str, Any]) -> dict[str, Any]:
    """The reconciliation gate: each device that held numbers of the raffle, whether it blocks the
    draw and why, from the core's status (blocking devices) and the reconciliation report."""
    report = reconcile.report(app, raffle_id)
    blocking = {d["device_id"]: d for d in status.get("blocking_devices") or ()}
    close_at = raffles.get_raffle(app, raffle_id)["sales_close_at_ms"]
    devices = []
    for d in report["devices"]:
        if d["device_id"] == "online" or not d["ranges"]:
            continue
        active = [r for r in d["ranges"] if r["status"] == "active"]
        why = ""
        if d["device_id"] in blocking:
            last = blocking[d["device_id"]]["last_sync_ms"]
            why = (
                "Never synced: it holds numbers and none of its sales have reached the server."
                if last is None
                else "Last synced before sales closed: sales it made after that sync are not on the server yet."
            )
            if d["missing_sequences"]:
                gaps = ", ".join(f"{a} to {b}" for a, b in d["missing_sequences"])
                why += f" Records {gaps} are known to be missing."
        devices.append(
            d
            | {
                "blocks": d["device_id"] in blocking,
                "why": why,
                "active_numbers": sum(r["count"] for r in active),
            }
        )
    for device_id, b in blocking.items():  # a device the report does not list (no row here)
        if not any(x["device_id"] == device_id for x in devices):
            devices.append(
                {
                    "device_id": device_id,
                    "device_name": device_id,
                    "blocks": True,
                    "why": "Holds numbers and has not synced since sales closed.",
                    "last_sync_ms": b["last_sync_ms"],
                    "granted": 0,
                    "sold": 0,
                    "voided": 0,
                    "active_numbers": 0,
                    "missing_sequences": [],
                }
            )
    return {
        "devices": devices,
        "blocking": [d for d in devices if d["blocks"]],
        "close_at": close_at,
        "tickets_sold": report["tickets_sold"],
        "gross_cents": report["gross_sales_cents"],
        "currency": report["currency"],
    }


def _device_url(request: Request, device_id: str) -> str | None:
    """The device's portal page, when the devices pages serve one (``/admin/devices/{id}``)."""
    for route in request.app.router.routes:
        if getattr(route, "path", "") == f"{PORTAL}/devices/{{device_id}}":
            return f"{PORTAL}/devices/{device_id}"
    return None


def _context(request: Request, portal: Portal, raffle_id: str) -> dict[str, Any]:
    app = app_of(request)
    raffle = visible_raffle(request, portal, raffle_id)
    status = app.core.draw_status(raffle_id)
    state = status["state"]
    ctx: dict[str, Any] = {
        "r": raffle,
        "status": status,
        "state": state,
        "step": ORDER.get(state, -1),
        "steps": STEPS,
        "order": ORDER,
        "may_draw": _may_draw(portal),
        "may_cancel": portal.role in raffles_managers(),
        "job": _running(raffle_id),
        "poll_draw_ms": POLL_DRAW_MS,
        "poll_gate_ms": POLL_GATE_MS,
        "results": None,
        "gate": None,
        "published_url": f"/results/{raffle_id}" if state == "PUBLISHED" else None,
    }
    if state == "SALES_CLOSED":
        ctx["gate"] = gate(app, raffle_id, status)
        ctx["device_urls"] = {d["device_id"]: _device_url(request, d["device_id"]) for d in ctx["gate"]["devices"]}
    if state in ("DRAWN", "PUBLISHED"):
        ctx["results"] = app.core.draw_results(raffle_id)
    return ctx


def raffles_managers() -> tuple[str, ...]:
    from admin.pages.raffles import MANAGERS

    return MANAGERS


# --- pages -------------------------------------------------------------------------------------


@router.get("/draws", response_class=HTMLResponse, response_model=None)
def draw_list(request: Request, portal: Reader) -> HTMLResponse:
    """The raffles this person may see with their draw's state: closed ones first."""
    app = app_of(request)
    rows = []
    for r in raffles.list_visible_raffles(app, portal.principal):
        state = app.core.recorded_draw_state(r["id"]) or "—"
        rows.append(r | {"draw_state": state})
    rows.sort(key=lambda r: (r["status"] != "closed", r["draw_state"] == "PUBLISHED", -r["sales_close_at_ms"]))
    return render(request, "draws/list.html", title="Draws", raffles=rows)


@router.get("/draw/{raffle_id}", response_class=HTMLResponse, response_model=None)
def draw_page(request: Request, raffle_id: RaffleId, portal: Reader) -> HTMLResponse:
    """The raffle's draw: where it stands, the gate, the next step, the results."""
    ctx = _context(request, portal, raffle_id)
    finished = _take_finished(raffle_id)
    if finished is not None and finished.error:
        ctx["problem"] = finished.error
    return render(request, "draws/draw.html", title=f"Draw of {ctx['r']['name']}", **ctx)


@router.get("/draw/{raffle_id}/gate", response_class=HTMLResponse, response_model=None)
def gate_fragment(request: Request, raffle_id: RaffleId, portal: Reader) -> Response:
    """The gate alone (htmx polls it while devices block the draw); the whole page once the
    draw has moved on."""
    ctx = _context(request, portal, raffle_id)
    if ctx["state"] != "SALES_CLOSED":
        return HTMLResponse("", headers={"HX-Redirect": f"{PORTAL}/draw/{raffle_id}"})
    return render(request, "draws/_gate.html", **ctx)


@router.post("/draw/{raffle_id}/initiate", response_model=None)
def initiate(request: Request, raffle_id: RaffleId, _form: CheckedForm, portal: Reader) -> Response303:
    """Check the gate and freeze the ticket set (``tombola draw initiate``)."""
    visible_raffle(request, portal, raffle_id)
    _require_drawer(portal)
    out = app_of(request).core.draw_initiate(raffle_id)
    return redirect(
        request,
        f"{PORTAL}/draw/{raffle_id}",
        flash_text=f"The ticket set is frozen: {out.get('ticket_count') or 0:,} tickets. The draw can be executed.",
    )


@router.get("/draw/{raffle_id}/execute", response_class=HTMLResponse, response_model=None)
def execute_confirm(request: Request, raffle_id: RaffleId, portal: Reader) -> HTMLResponse | Response303:
    """The confirmation step before the draw: what will be drawn from, and that it runs once."""
    ctx = _context(request, portal, raffle_id)
    _require_drawer(portal)
    if ctx["state"] != "RECONCILED":
        return redirect(request, f"{PORTAL}/draw/{raffle_id}")
    return render(request, "draws/execute.html", title=f"Execute the draw of {ctx['r']['name']}", problems={}, **ctx)


@router.post("/draw/{raffle_id}/execute", response_model=None)
def execute(request: Request, raffle_id: RaffleId, form: CheckedForm, portal: Reader) -> Response:
    """Start the draw (``tombola draw execute``) once confirmed; the draw page shows its progress."""
    visible_raffle(request, portal, raffle_id)
    _require_drawer(portal)
    if form.get("confirm") != "yes":
        ctx = _context(request, portal, raffle_id)
        problems = Problems()
        problems.add(
            "confirm", "confirmation_needed", "Tick the box to confirm: a draw runs once and cannot be undone."
        )
        return render(
            request,
            "draws/execute.html",
            status_code=422,
            title=f"Execute the draw of {ctx['r']['name']}",
            problems=problems.by_field,
            **ctx,
        )
    _start_execute(app_of(request), raffle_id)
    return redirect(request, f"{PORTAL}/draw/{raffle_id}")


@router.get("/draw/{raffle_id}/progress", response_class=HTMLResponse, response_model=None)
def progress(request: Request, raffle_id: RaffleId, portal: Reader) -> Response:
    """The running draw's progress (htmx polls it); when it has ended, the draw page again."""
    visible_raffle(request, portal, raffle_id)
    job = _running(raffle_id)
    if job is not None:
        elapsed = int(time.monotonic() - job.started)
        return render(request, "draws/_progress.html", r={"id": raffle_id}, elapsed=elapsed, poll_draw_ms=POLL_DRAW_MS)
    finished = _take_finished(raffle_id)
    url = f"{PORTAL}/draw/{raffle_id}"
    if finished is not None and finished.error:
        return redirect(
            request, url, flash_text=f"The draw did not run: {finished.error[1]} ({finished.error[0]})", kind="error"
        )
    return redirect(request, url, flash_text="The winners are drawn. Check them, then publish the results.")


@router.post("/draw/{raffle_id}/publish", response_model=None)
def publish(request: Request, raffle_id: RaffleId, _form: CheckedForm, portal: Reader) -> Response303:
    """Make the results public (``tombola draw publish``): the public page and the proof download."""
    visible_raffle(request, portal, raffle_id)
    _require_drawer(portal)
    app_of(request).core.draw_publish(raffle_id)
    return redirect(request, f"{PORTAL}/draw/{raffle_id}", flash_text="The results are public.")


@router.get("/draw/{raffle_id}/proof", response_model=None)
def proof(request: Request, raffle_id: RaffleId, portal: Reader) -> Response:
    """The proof file as the core stores it (``tombola draw proof``), for staff before and after
    publication; the public page serves it once published."""
    visible_raffle(request, portal, raffle_id)
    body = app_of(request).core.draw_proof_bytes(raffle_id)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="draw-proof-{raffle_id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/draw/{raffle_id}/redraw", response_class=HTMLResponse, response_model=None)
def redraw_form(request: Request, raffle_id: RaffleId, portal: Reader, ticket: int | None = None) -> Response:
    ctx = _context(request, portal, raffle_id)
    _require_drawer(portal)
    if ctx["state"] not in ("DRAWN", "PUBLISHED"):
        return redirect(request, f"{PORTAL}/draw/{raffle_id}")
    return render(
        request,
        "draws/redraw.html",
        title=f"Redraw a prize of {ctx['r']['name']}",
        problems={},
        chosen=ticket,
        reason="",
        **ctx,
    )


@router.post("/draw/{raffle_id}/redraw", response_class=HTMLResponse, response_model=None)
def redraw(request: Request, raffle_id: RaffleId, form: CheckedForm, portal: Reader) -> Response:
    """Redraw one declined or unclaimed prize with a reason (``tombola draw redraw``)."""
    ctx = _context(request, portal, raffle_id)
    _require_drawer(portal)
    problems = Problems()
    choice = form.get("prize")
    reason = str(form.get("reason") or "")[:500].strip()
    holders = {f"{h['tier']}|{h['ticket_number']}": h for h in (ctx["results"] or {}).get("holders", [])}
    held = holders.get(choice) if isinstance(choice, str) else None
    if held is None:
        problems.add("prize", "invalid_request", "Choose the prize to redraw.")
    if not reason:
        problems.add("reason", "invalid_request", "Give the reason (declined, unclaimed by the deadline...).")
    if form.get("confirm") != "yes":
        problems.add("confirm", "confirmation_needed", "Tick the box to confirm the redraw.")
    if not problems and held is not None:
        try:
            out = app_of(request).core.draw_redraw(raffle_id, held["tier"], int(held["ticket_number"]), reason)
        except TombolaError as exc:
            problems.add("", exc.code, exc.detail[:1].upper() + exc.detail[1:])
        else:
            new = out["redraws"][-1]
            return redirect(
                request,
                f"{PORTAL}/draw/{raffle_id}",
                flash_text=f"{new['tier']}: ticket {new['replaced_ticket_number']} is replaced by "
                f"ticket {new['ticket_number']}.",
            )
    return render(
        request,
        "draws/redraw.html",
        status_code=422,
        title=f"Redraw a prize of {ctx['r']['name']}",
        problems=problems.by_field,
        chosen=held["ticket_number"] if held else None,
        reason=reason,
        **ctx,
    )
