"""Camera QR scanning: frames from a :class:`FrameSource`, decoded by zbar on a worker thread.

Two screens scan: setup (an enrollment link, ``docs/sync-protocol.md`` section 8.1, fills the
server address and the code) and ticket check (a receipt's check URL, section 7, runs the check).
What a QR code says is read by the protocol's one reader of each
(:func:`sync_protocol.enrollment_link.parse_enrollment_link`,
:func:`sync_protocol.codes.parse_ticket_check_url`); this module only gets the text off the camera.

- A :class:`FrameSource` gives the latest camera frame as RGBA bytes and its size. On a phone and
  on a desktop with a webcam that is :class:`KivyCameraSource`, over Kivy's camera provider
  (``camera_android`` on Android, OpenCV or GStreamer on a desktop); tests inject their own.
- :class:`ScanViewModel` runs one scan: it opens the source, and a worker thread reads a frame
  every :data:`SCAN_INTERVAL_S` (a few a second, never on the UI thread), decodes it with
  :func:`decode_qr` (pyzbar over Debian's / python-for-android's libzbar) and posts what it
  found back to the UI thread. A code that is not what the screen wants is said in a sentence
  and the scan goes on; the right one stops the scan (the camera is closed) and is handed to the
  screen. Closing the scan, or leaving its screen, stops the camera too.
- No camera (no provider loads, none opens) or no zbar: :meth:`ScanService.available` is false,
  the screens hide their Scan buttons, and typing works as before. A camera that fails when the
  scan opens it (Android permission refused) is a sentence on the scan view, never a crash.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, StringProperty

from pos_client.app.viewmodels import Callback, run_now
from sync_protocol.codes import parse_ticket_check_url
from sync_protocol.enrollment_link import EnrollmentLink, parse_enrollment_link
from sync_protocol.errors import TombolaError

log = logging.getLogger("tombola.pos.scanner")

#: seconds between two frames decoded (4 a second: quick enough for a hand, light on a phone's CPU)
SCAN_INTERVAL_S = 0.25
#: what a scan is for: an enrollment link (setup) or a ticket-check URL (ticket check)
PURPOSES = ("enroll", "ticket")
#: the camera resolution asked for (providers may give another); QR codes need no more
CAMERA_RESOLUTION = (640, 480)

HINTS = {
    "enroll": "Hold the enrollment QR code from your supervisor inside the frame, about 20 cm away.",
    "ticket": "Hold the QR code printed on the ticket inside the frame, about 15 cm away.",
}
WRONG = {
    "enroll": "That QR code is not a Tombola enrollment code: it reads \u201c{shown}\u201d ({code}). "
    "Still scanning: show the enrollment QR code.",
    "ticket": "That QR code is not a Tombola ticket: it reads \u201c{shown}\u201d ({code}). "
    "Still scanning: show the QR code printed on the ticket.",
}
#: how much of a wrong code's text the sentence shows
SHOWN_CHARS = 48


@dataclass(frozen=True)
class Frame:
    """One camera image: ``width`` x ``height`` pixels, 4 bytes each (R, G, B, A), row after row."""

    pixels: bytes
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or len(self.pixels) != 4 * self.width * self.height:
            raise ValueError(f"an RGBA frame of {self.width}x{self.height} needs {4 * self.width * self.height} bytes")


class CameraUnavailable(Exception):
    """The camera could not be opened; the message is a sentence for the person holding the device."""


class FrameSource(Protocol):
    """Where frames come from. ``open`` and ``close`` run on the UI thread, ``read`` on the scan's worker."""

    def open(self) -> None:
        """Start the camera; raise :class:`CameraUnavailable` when it cannot."""

    def read(self) -> Frame | None:
        """The newest frame not read yet, or ``None`` (none new since the last read). Thread-safe."""

    def close(self) -> None:
        """Stop the camera and let it go (another app may want it). Harmless when not open."""

    def preview(self) -> Any:
        """A widget that shows the camera live, or ``None`` (the scan view then shows the frames read)."""


Decoder = Callable[[Frame], list[str]]


def zbar_loads() -> bool:
    """Whether pyzbar and its native libzbar load here (Debian's libzbar0; the libzbar recipe on Android)."""
    try:
        from pyzbar import pyzbar  # noqa: F401  # loads libzbar through ctypes
    except (ImportError, OSError):
        return False
    return True


def decode_qr(frame: Frame) -> list[str]:
    """The texts of the QR codes in ``frame`` (zbar on its green channel as grey; empty when none)."""
    from pyzbar.pyzbar import ZBarSymbol, decode

    grey = frame.pixels[1::4]
    found = decode((grey, frame.width, frame.height), symbols=[ZBarSymbol.QRCODE])
    return [symbol.data.decode("utf-8", errors="replace") for symbol in found]


class KivyCameraSource:
    """Frames of Kivy's camera (``kivy.uix.camera.Camera``, the platform's provider under it).

    The widget is the live preview; a ``Clock`` interval on the UI thread copies its texture's
    pixels (the GL read-back must happen there) into a one-frame slot at the scan rate, which the
    worker takes with :meth:`read`. The rows come bottom-up from the texture; zbar reads a QR
    code either way up.
    """

    def __init__(self, index: int = 0, interval_s: float = SCAN_INTERVAL_S) -> None:
        self.index = index
        self.interval_s = interval_s
        self._camera: Any = None
        self._event: Any = None
        self._latest: Frame | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        from kivy.clock import Clock
        from kivy.core.camera import Camera as CoreCamera

        if CoreCamera is None:
            raise CameraUnavailable("This device has no camera Tombola can use: type the code instead.")
        from kivy.uix.camera import Camera

        try:
            self._camera = Camera(index=self.index, resolution=CAMERA_RESOLUTION, play=True, allow_stretch=True)
        except Exception as exc:  # a provider raises what its platform raises (permission, busy)
            log.warning("camera %s did not open: %s", self.index, exc)
            self._camera = None
            raise CameraUnavailable(
                "The camera could not be opened (is camera access allowed for Tombola POS in the phone's "
                "settings?): type the code instead."
            ) from exc
        self._event = Clock.schedule_interval(self._grab, self.interval_s)

    def _grab(self, _dt: float) -> None:
        texture = self._camera.texture if self._camera is not None else None
        if texture is None:
            return
        width, height = texture.size
        frame = Frame(bytes(texture.pixels), int(width), int(height))
        with self._lock:
            self._latest = frame

    def read(self) -> Frame | None:
        with self._lock:
            frame, self._latest = self._latest, None
        return frame

    def close(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.play = False
            release_camera(getattr(camera, "_camera", None))

    def preview(self) -> Any:
        return self._camera


def release_camera(core: Any) -> None:
    """Stop a Kivy core camera and give the device back (the providers name that step differently)."""
    if core is None:
        return
    try:
        core.stop()
        release = getattr(core, "_release_camera", None)  # camera_android: Camera.release()
        if release is not None:
            release()
        device = getattr(core, "_device", None)  # camera_opencv: VideoCapture.release()
        if device is not None and hasattr(device, "release"):
            device.release()
    except Exception as exc:  # closing must never take the app down
        log.warning("the camera did not close cleanly: %s", exc)


def kivy_camera_present(index: int = 0) -> bool:
    """Whether Kivy's camera provider loads and its camera ``index`` opens (then closed at once)."""
    from kivy.core.camera import Camera as CoreCamera

    if CoreCamera is None:
        return False
    try:
        core = CoreCamera(index=index, resolution=CAMERA_RESOLUTION, stopped=True)
    except Exception as exc:
        log.info("no camera %s: %s", index, exc)
        return False
    release_camera(core)
    return True


class ScanService:
    """Which frame source the app scans with, and whether it can scan at all.

    Args:
        source_factory: a new :class:`FrameSource` for each scan (default :class:`KivyCameraSource`).
        camera_present: whether a camera is there (default :func:`kivy_camera_present`); asked
            again until it says yes (on Android the permission may be granted after the first ask).
        decoder: frame to texts (default :func:`decode_qr`, which needs zbar).
    """

    def __init__(
        self,
        source_factory: Callable[[], FrameSource] | None = None,
        camera_present: Callable[[], bool] | None = None,
        decoder: Decoder | None = None,
    ) -> None:
        self.source_factory: Callable[[], FrameSource] = source_factory or KivyCameraSource
        self._camera_present = camera_present or (kivy_camera_present if source_factory is None else lambda: True)
        self.decoder: Decoder = decoder or decode_qr
        self._available: bool | None = None

    def available(self) -> bool:
        """True when a camera is there and QR codes decode (the answer yes is kept; no is asked again)."""
        if not self._available:
            self._available = (self.decoder is not decode_qr or zbar_loads()) and self._camera_present()
        return bool(self._available)


class ScanViewModel(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """One scan at a time, for ``purpose`` ``enroll`` or ``ticket``; plain pytest drives it without a window.

    Args:
        service: the frame source and decoder.
        post: runs a callable on the UI thread (the app's ``Clock.schedule_once``; tests run it at once).
        on_enrollment: called with the :class:`EnrollmentLink` read (then the scan has stopped).
        on_ticket_url: called with the ticket-check URL read (it parsed; the screen runs the check).
        interval_s: seconds between two frames decoded.
    """

    purpose = StringProperty("")
    scanning = BooleanProperty(False)
    title = StringProperty("")
    message = StringProperty("")
    #: the sentence is a problem (a code of the wrong kind, no camera), not a hint
    warning = BooleanProperty(False)
    frames = 0  # frames decoded in this scan (tests, and the log)

    def __init__(
        self,
        service: ScanService,
        *,
        post: Callable[[Callback], None] = run_now,
        on_enrollment: Callable[[EnrollmentLink], None] | None = None,
        on_ticket_url: Callable[[str], None] | None = None,
        interval_s: float = SCAN_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.post = post
        self.on_enrollment = on_enrollment
        self.on_ticket_url = on_ticket_url
        self.interval_s = interval_s
        self.source: FrameSource | None = None
        self._stop: threading.Event | None = None
        self._frame_listeners: list[Callable[[Frame], None]] = []

    def listen_frames(self, listener: Callable[[Frame], None]) -> None:
        """Also hand each frame read to ``listener`` on the UI thread (the view's preview)."""
        self._frame_listeners.append(listener)

    def start(self, purpose: str) -> bool:
        """Open the camera and scan for ``purpose``; ``False`` (and a sentence) when the camera does not open."""
        if purpose not in PURPOSES:
            raise ValueError(f"scan purpose {purpose!r} is not one of {PURPOSES}")
        self.stop()
        self.purpose = purpose
        self.title = "Scan the enrollment QR code" if purpose == "enroll" else "Scan the ticket's QR code"
        self.warning = False
        self.frames = 0
        source = self.service.source_factory()
        try:
            source.open()
        except CameraUnavailable as exc:
            self.message, self.warning = str(exc), True
            return False
        self.source = source
        self.message = HINTS[purpose]
        self.scanning = True
        stop = self._stop = threading.Event()
        threading.Thread(target=self._work, args=(source, stop), name="pos-scan", daemon=True).start()
        return True

    def stop(self) -> None:
        """Stop scanning and close the camera (harmless when not scanning)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        source, self.source = self.source, None
        if source is not None:
            source.close()
        self.scanning = False

    def _work(self, source: FrameSource, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                frame = source.read()
                texts = self.service.decoder(frame) if frame is not None else []
            except Exception as exc:  # a bad frame or a decoder error must not end the scan thread silently
                log.warning("a frame could not be decoded: %s", exc)
                continue
            if frame is not None:
                self.post(functools.partial(self._seen, stop, frame, texts))

    def _seen(self, stop: threading.Event, frame: Frame, texts: list[str]) -> None:
        if stop.is_set() or stop is not self._stop:
            return  # a frame of a scan already stopped
        self.frames += 1
        for listener in self._frame_listeners:
            listener(frame)
        for text in texts:
            if self._accept(text):
                return

    def _accept(self, text: str) -> bool:
        """Use ``text`` if it is what this scan looks for; else say what it is not and go on."""
        try:
            if self.purpose == "enroll":
                link = parse_enrollment_link(text)
            else:
                parse_ticket_check_url(text)
        except TombolaError as exc:
            log.info("scanned %s, not for %s: %s", exc.code, self.purpose, exc.detail)
            self.message, self.warning = WRONG[self.purpose].format(shown=_shown(text), code=exc.code), True
            return False
        self.stop()
        self.warning = False
        if self.purpose == "enroll":
            self.message = f"Read: server {link.server_url}, code {link.code}."
            if self.on_enrollment is not None:
                self.on_enrollment(link)
        else:
            self.message = "Read the ticket's QR code."
            if self.on_ticket_url is not None:
                self.on_ticket_url(text)
        return True


def _shown(text: str) -> str:
    """The start of a scanned text, on one line, for a sentence."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN_CHARS else flat[: SHOWN_CHARS - 3] + "..."
