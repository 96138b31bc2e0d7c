"""A lost or broken device: void its unsynced remainder, or ingest its export file.

* ``POST /admin/devices/{id}/void-remainder`` (raffle, reason): ``server.enrollment.service.
  void_remainder``, the one such void of ``tombola draw void-remainder`` and
  ``POST /v1/admin/devices/{id}/void-remainder``: the device's unsold numbers of that raffle are
  voided so the draw can go ahead;
* ``POST /admin/devices/{id}/ingest`` (an upload of the device's NDJSON export file, as
  ``tombola-pos export`` wrote it): ``server.reconcile.service.ingest_file``, the one ingest of
  ``tombola ingest`` and ``POST /v1/ingest``, run in a background thread. The browser goes to
  ``/admin/devices/{id}/ingest/{job}``, whose progress bar is an htmx fragment (``.../status``)
  polled every second until the ingest ends. Progress is the share of the file's bytes read: the
  service reads the file twice (first the whole chain and the trailer's signature, nothing
  written; then it applies the records), so the first half of the bar is the check and the
  second the records applied.

A file of another device is refused before anything is read (``invalid_request``). Jobs live in
the memory of the server process that runs them (at most :data:`MAX_JOBS`, the oldest finished
ones dropped); with several server processes behind a load balancer, the status page needs the
same process (sticky sessions) or shows ``not_found`` (the ingest itself still completes, and its
outcome is on the device's page and in the reports).
"""

from __future__ import annotations

import contextvars
import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PosixPath
from types import TracebackType
from typing import IO, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from admin.pages import fleet
from admin.pages.devices import Floor, device_page, text_field
from admin.web import PORTAL, CheckedForm, Portal, app_of, redirect, render
from server.context import Tombola, new_id
from server.enrollment import service as enrollment
from server.errors import InvalidRequest, NotFound
from server.reconcile import service as reconcile
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
#: the largest export file the portal takes (a device holds at most a night's sales)
MAX_UPLOAD = 256 * 1024 * 1024
#: ingest jobs kept in memory
MAX_JOBS = 200
#: the status fragment is polled this often while an ingest runs
POLL_S = 1


@dataclass
class IngestJob:
    """One ingest of an uploaded export file: what was read so far, then the outcome."""

    id: str
    device_id: str
    owner: str
    file_name: str
    size: int
    started_ms: int
    read: int = 0
    state: str = "running"  # running, done, failed
    result: dict[str, Any] | None = None
    error: TombolaError | None = None
    finished_ms: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, n: int) -> None:
        with self.lock:
            self.read += n

    @property
    def percent(self) -> int:
        """0..100: the share of the two passes' bytes read (100 only once done)."""
        if self.state != "running":
            return 100
        total = max(1, 2 * self.size)
        return min(99, self.read * 100 // total)

    @property
    def phase(self) -> str:
        if self.state == "done":
            return "Done"
        if self.state == "failed":
            return "Refused"
        return "Checking the chain and the signature" if self.read < self.size else "Applying the records"


_JOBS: dict[str, IngestJob] = {}
_JOBS_LOCK = threading.Lock()


def _keep(job: IngestJob) -> None:
    with _JOBS_LOCK:
        _JOBS[job.id] = job
        if len(_JOBS) > MAX_JOBS:
            finished = [j for j in _JOBS.values() if j.state != "running"]
            for old in sorted(finished, key=lambda j: j.started_ms)[: len(_JOBS) - MAX_JOBS]:
                _JOBS.pop(old.id, None)


class _CountingFile:
    """A binary file read line by line whose bytes are counted into a job."""

    def __init__(self, fh: IO[bytes], job: IngestJob) -> None:
        self._fh = fh
        self._job = job

    def __enter__(self) -> _CountingFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._fh.close()

    def __iter__(self) -> Iterator[bytes]:
        for line in self._fh:
            self._job.add(len(line))
            yield line


class _ProgressPath(PosixPath):
    """The uploaded file's path, whose ``open`` counts what the ingest service reads."""

    job: IngestJob

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return _CountingFile(super().open(*args, **kwargs), self.job)


def _run(app: Tombola, job: IngestJob, path: Path) -> None:
    counted = _ProgressPath(path)
    counted.job = job
    try:
        result = reconcile.ingest_file(app, counted, progress=False)
    except TombolaError as exc:
        job.error, job.state = exc, "failed"
    except Exception as exc:  # a bug must still end the progress bar, with a sentence
        job.error = InvalidRequest(f"the ingest stopped: {type(exc).__name__}")
        job.state = "failed"
    else:
        job.result, job.state = result, "done"
    finally:
        job.finished_ms = app.now_ms()
        path.unlink(missing_ok=True)


async def _save_upload(upload: UploadFile) -> tuple[Path, int, dict[str, Any]]:
    """The upload in a temporary file (at most :data:`MAX_UPLOAD` bytes), its size and its first
    line (the export header) parsed."""
    size = 0
    with tempfile.NamedTemporaryFile(suffix=".ndjson", prefix="portal-ingest-", delete=False) as fh:
        path = Path(fh.name)
        try:
            while chunk := await upload.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise InvalidRequest(f"an export file is at most {MAX_UPLOAD // (1024 * 1024)} MiB", field="file")
                fh.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    try:
        with path.open("rb") as check:
            first = check.readline(64 * 1024)
        header = json.loads(first) if first.strip() else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        path.unlink(missing_ok=True)
        raise InvalidRequest(
            "this is not a device's export file: it does not start with an export header", field="file"
        )
    return path, size, header


@router.post("/devices/{device_id}/ingest", response_class=HTMLResponse, response_model=None)
async def ingest(request: Request, device_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    await run_in_threadpool(fleet.visible_device, app, portal.principal, device_id)
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidRequest("choose the device's export file (.ndjson) to upload", field="file")
        path, size, header = await _save_upload(upload)
        if header.get("device_id") != device_id:
            path.unlink(missing_ok=True)
            raise InvalidRequest(
                f"this file is the export of device {str(header.get('device_id'))[:64]}, not of this device",
                field="file",
            )
    except TombolaError as exc:
        return await run_in_threadpool(
            partial(device_page, request, portal, device_id, status_code=exc.status, errors={"ingest": exc})
        )
    job = IngestJob(
        id=new_id("ij"),
        device_id=device_id,
        owner=portal.principal.id,
        file_name=(upload.filename or "export.ndjson")[:200],
        size=size,
        started_ms=app.now_ms(),
    )
    _keep(job)
    context = contextvars.copy_context()  # the audit actor of this request goes with the work
    threading.Thread(target=context.run, args=(_run, app, job, path), name=f"ingest-{job.id}", daemon=True).start()
    return redirect(request, f"/admin/devices/{device_id}/ingest/{job.id}")


def _job(app: Tombola, portal: Portal, device_id: str, job_id: str) -> tuple[IngestJob, fleet.DeviceView]:
    device, venue = fleet.visible_device(app, portal.principal, device_id)
    with _JOBS_LOCK:
        job = _JOBS.get(job_id)
    if job is None or job.device_id != device_id:
        raise NotFound(f"no ingest {job_id} of device {device_id} in this server process")
    return job, fleet.view(app, device, venue)


@router.get("/devices/{device_id}/ingest/{job_id}", response_class=HTMLResponse)
def ingest_page(request: Request, device_id: str, job_id: str, portal: Portal = Floor) -> HTMLResponse:
    job, dv = _job(app_of(request), portal, device_id, job_id)
    return render(request, "devices/ingest.html", title="Ingest an export file", job=job, d=dv, poll_s=POLL_S)


@router.get("/devices/{device_id}/ingest/{job_id}/status", response_class=HTMLResponse)
def ingest_status(request: Request, device_id: str, job_id: str, portal: Portal = Floor) -> HTMLResponse:
    job, dv = _job(app_of(request), portal, device_id, job_id)
    return render(request, "devices/_ingest_status.html", job=job, d=dv, poll_s=POLL_S)


@router.post("/devices/{device_id}/void-remainder", response_class=HTMLResponse, response_model=None)
async def void_remainder(request: Request, device_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    await run_in_threadpool(fleet.visible_device, app, portal.principal, device_id)
    raffle_id = text_field(form, "raffle_id", 64)
    reason = text_field(form, "reason")
    values = {"void_raffle_id": raffle_id, "void_reason": reason}
    try:
        held = {g.grant.raffle_id for g in await run_in_threadpool(app.core.grants, device_id=device_id)}
        if raffle_id not in held:
            raise InvalidRequest("choose a raffle the device holds numbers of", field="raffle_id")
        done = await run_in_threadpool(enrollment.void_remainder, app, device_id, raffle_id, reason)
    except TombolaError as exc:
        return await run_in_threadpool(
            partial(
                device_page, request, portal, device_id, status_code=exc.status, errors={"void": exc}, values=values
            )
        )
    text = f"Unsynced remainder voided ({done['grants_voided']} grant(s)): the draw no longer waits for this device."
    return redirect(request, f"/admin/devices/{device_id}", flash_text=text)
