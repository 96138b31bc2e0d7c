"""Camera QR scanning without a window: real QR images as frames (tests/app/scan_frames.py; the
camera is the one fake), decoded by zbar on the scan's worker thread at its rate; a code of the
wrong kind is a sentence and the scan goes on; the right one fills the setup form or hands the
ticket URL on, and closes the camera. The scanned enrollment link then enrolls against the real
server app (SQLite and PostgreSQL), its pinned key honoured."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from pos_client.app.scanner import Frame, ScanService, ScanViewModel, decode_qr
from pos_client.app.viewmodels import Callback
from sync_protocol.codes import ticket_check_url
from sync_protocol.enrollment_link import EnrollmentLink, enrollment_link
from tests.app.scan_frames import FrameList, blank_scene, frame_of, qr_scene
from tests.app.test_viewmodels import URL, drain_until, make_vm
from tests.app.test_viewmodels import world as world  # the fixture

LINK = enrollment_link("https://tombola.example", "ABCD-EFGH-JKMN")
TICKET = ticket_check_url("https://tombola.example/check", "rf_1", 42, "7K3M-Q9TX")
OTHER = "https://example.com/menu?table=4"
FAST = 0.02


def scanner(
    frames: list[Frame], *, loop: bool = False, fail: str | None = None
) -> tuple[ScanViewModel, FrameList, Queue[Callback], dict[str, list[object]]]:
    source = FrameList(frames, loop=loop, fail=fail)
    posted: Queue[Callback] = Queue()
    got: dict[str, list[object]] = {"enroll": [], "ticket": [], "messages": []}
    svm = ScanViewModel(
        ScanService(source_factory=lambda: source),
        post=posted.put,
        on_enrollment=got["enroll"].append,
        on_ticket_url=got["ticket"].append,
        interval_s=FAST,
    )
    svm.bind(message=lambda _vm, text: got["messages"].append(text))
    return svm, source, posted, got


def run_until(posted: Queue[Callback], done: object, timeout: float = 20) -> None:
    """Run on this (the "UI") thread what the scan's worker posted, until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        try:
            posted.get(timeout=max(0.05, deadline - time.monotonic()))()
        except Empty:
            raise AssertionError("the scan did not get there in time") from None


def test_zbar_reads_a_real_code_and_nothing_from_a_blank_blurred_or_cut_one() -> None:
    assert decode_qr(frame_of(qr_scene(LINK))) == [LINK]
    assert decode_qr(frame_of(qr_scene(LINK, blur=1.5))) == [LINK]  # a little out of focus still reads
    assert decode_qr(frame_of(blank_scene())) == []
    assert decode_qr(frame_of(qr_scene(LINK, blur=6))) == []
    assert decode_qr(frame_of(qr_scene(LINK, keep=0.5))) == []


def test_a_frame_is_rgba_of_its_size() -> None:
    with pytest.raises(ValueError, match="needs 16 bytes"):
        Frame(b"\0" * 15, 2, 2)


def test_enrollment_scan_says_what_a_wrong_code_is_keeps_scanning_then_fills_the_form() -> None:
    frames = [
        frame_of(blank_scene()),
        frame_of(qr_scene(LINK, blur=6)),
        frame_of(qr_scene(LINK, keep=0.5)),
        frame_of(qr_scene(OTHER)),
        frame_of(qr_scene(TICKET)),
        frame_of(qr_scene(LINK)),
    ]
    svm, source, posted, got = scanner(frames)
    assert svm.start("enroll") and source.opened and svm.scanning
    assert svm.message.startswith("Hold the enrollment QR code") and not svm.warning
    run_until(posted, lambda: got["enroll"])
    assert got["enroll"] == [EnrollmentLink("https://tombola.example", "ABCD-EFGH-JKMN")]
    wrong = [m for m in got["messages"] if str(m).startswith("That QR code")]
    assert wrong == [
        "That QR code is not a Tombola enrollment code: it reads \u201chttps://example.com/menu?table=4\u201d "
        "(bad_enrollment_link). Still scanning: show the enrollment QR code.",
        "That QR code is not a Tombola enrollment code: it reads "
        "\u201chttps://tombola.example/check?raffle=rf_1&num...\u201d (bad_enrollment_link). "
        "Still scanning: show the enrollment QR code.",
    ]
    assert svm.frames == 6  # every frame was looked at, none skipped, none after the code was read
    assert not svm.scanning and source.closed and not svm.warning
    assert svm.message == "Read: server https://tombola.example, code ABCD-EFGH-JKMN."


def test_ticket_scan_hands_the_check_url_on_and_refuses_an_enrollment_code() -> None:
    svm, source, posted, got = scanner([frame_of(qr_scene(LINK)), frame_of(qr_scene(TICKET))])
    assert svm.start("ticket")
    run_until(posted, lambda: got["ticket"])
    assert got["ticket"] == [TICKET] and got["enroll"] == []
    assert any("not a Tombola ticket" in str(m) and "(bad_check_url)" in str(m) for m in got["messages"])
    assert source.closed and not svm.scanning


def test_frames_are_decoded_on_a_worker_at_the_scan_rate_and_stop_with_the_scan() -> None:
    threads: set[str] = set()
    svm, source, posted, got = scanner([frame_of(blank_scene())], loop=True)
    real = svm.service.decoder
    svm.service.decoder = lambda frame: threads.add(threading.current_thread().name) or real(frame)  # type: ignore[func-returns-value]
    svm.interval_s = 0.1
    assert svm.start("enroll")
    time.sleep(1.0)
    svm.stop()
    reads = source.reads
    assert 5 <= reads <= 11, reads  # about 10 a second at 0.1 s, never as fast as frames come
    assert threads == {"pos-scan"}
    assert source.closed and not svm.scanning
    time.sleep(0.3)
    assert source.reads == reads and source.reads_after_close == 0  # the worker stopped with the scan
    while not posted.empty():
        posted.get()()  # frames posted before the stop are dropped, not shown or read
    assert got["enroll"] == []


def test_a_camera_that_does_not_open_is_a_sentence_not_a_crash() -> None:
    svm, source, _posted, _got = scanner([], fail="The camera could not be opened: type the code instead.")
    assert svm.start("ticket") is False
    assert svm.message == "The camera could not be opened: type the code instead."
    assert svm.warning and not svm.scanning and not source.opened
    svm.stop()  # harmless


def test_availability_is_asked_again_until_a_camera_is_there() -> None:
    answers = iter([False, True])
    asked: list[int] = []

    def present() -> bool:
        asked.append(1)
        return next(answers)

    service = ScanService(source_factory=lambda: FrameList([]), camera_present=present)
    assert service.available() is False
    assert service.available() is True
    assert service.available() is True and len(asked) == 2  # a yes is kept


def test_a_scanned_link_fills_the_setup_form_and_enrolls_with_its_pinned_key(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from server.cli.setup import _grant_key
    from server.enrollment import service as enrollment
    from tests.support.app import seed

    app, http, clock, _server_clock = world
    seeded = seed(app)
    grant_key = _grant_key(app)["key_id"]  # what `tombola init` prints for devices to pin
    vm, posted = make_vm(tmp_path, http, clock)
    # a key the server does not hold: the enrollment is refused and nothing is written
    vm.use_enrollment_link(EnrollmentLink(URL, seeded.code, "ed25519:0000000000000000"))
    assert (vm.setup_server_url, vm.setup_code, vm.setup_server_key) == (URL, seeded.code, "ed25519:0000000000000000")
    assert vm.setup_message.startswith("Scanned the enrollment code")
    vm.enroll(vm.setup_server_url, vm.setup_code)
    drain_until(posted, lambda: not vm.busy)
    assert not vm.enrolled and "(server_key_not_pinned)" in vm.setup_message
    # (the code is spent on a genuine server: sync-protocol.md section 8; the operator makes another)
    code = enrollment.create_enrollment_code(app, seeded.venue_id)["code"]
    # a handheld scanner types the whole link into the code field: it is read, its key pinned
    vm.enroll("", enrollment_link(URL, code, grant_key))
    assert (vm.setup_server_url, vm.setup_code, vm.setup_server_key) == (URL, code, grant_key)
    drain_until(posted, lambda: vm.enrolled and not vm.busy)


def test_a_typed_link_that_is_not_an_enrollment_link_is_refused_with_its_code(tmp_path: Path) -> None:
    from pos_client.app.viewmodels import PosViewModel

    vm = PosViewModel(tmp_path / "pos.db", post=lambda c: c(), sync_interval_s=3600)
    vm.enroll("", TICKET)
    assert vm.setup_message.startswith("That is not an enrollment code: ")
    assert vm.setup_message.endswith("(bad_enrollment_link)") and not vm.busy
    vm.stop()
