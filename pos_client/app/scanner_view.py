"""The scan view (``kv/scan.kv``) over :class:`pos_client.app.scanner.ScanViewModel`, and the Scan buttons.

:func:`install` makes the one :class:`ScanView` of the app (``PosApp.scan``). A :class:`ScanButton`
(setup: ``enroll``, ticket check: ``ticket``) shows only while :attr:`ScanView.available`; it opens
the view over the current screen, which opens the camera. What the scan reads goes where typing
would have put it: an enrollment link fills the setup form
(:meth:`PosViewModel.use_enrollment_link`); a ticket-check URL runs the check
(:meth:`TicketCheckViewModel.use_url`). The view closes, and the camera with it, on Cancel, on a
code read, and whenever the screen under it changes (the idle lock, the nav bar).
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.image import Image
from kivy.uix.modalview import ModalView
from kivy.uix.screenmanager import ScreenManager

from pos_client.app.scanner import Frame, ScanService, ScanViewModel
from pos_client.app.viewmodels import Callback, PosViewModel
from sync_protocol.enrollment_link import EnrollmentLink

#: the screens that have a Scan button (the camera is looked for again when one shows)
SCAN_SCREENS = ("setup", "check")


def _post_to_ui(callback: Callback) -> None:
    Clock.schedule_once(lambda _dt: callback(), 0)


class ScanButton(Button):  # type: ignore[misc]  # kivy has no type information
    """``Scan``, beside a code field; hidden (no width, transparent) when the app cannot scan."""

    purpose = StringProperty("enroll")

    def on_release(self) -> None:
        app = App.get_running_app()
        scan = getattr(app, "scan", None)
        if scan is not None:
            scan.scan(self.purpose)


class ScanView(ModalView):  # type: ignore[misc]  # kivy has no type information
    """The camera, a sentence and Cancel, over the screen that asked for a scan."""

    svm = ObjectProperty(None, rebind=True)
    #: a camera is there and zbar decodes: the Scan buttons show
    available = BooleanProperty(False)

    def __init__(self, manager: ScreenManager, vm: PosViewModel, service: ScanService, **kwargs: Any) -> None:
        self.manager = manager
        self.vm = vm
        self.service = service
        self._image = Image(fit_mode="contain")
        self._texture: Texture | None = None
        svm = ScanViewModel(
            service, post=_post_to_ui, on_enrollment=self._enrollment_read, on_ticket_url=self._ticket_read
        )
        super().__init__(svm=svm, **kwargs)
        svm.listen_frames(self._show_frame)
        manager.bind(current=self._screen_changed)
        self.refresh_available()

    def refresh_available(self) -> bool:
        """Look for a camera again (until one is found); the Scan buttons follow."""
        self.available = self.service.available()
        return bool(self.available)

    def scan(self, purpose: str) -> bool:
        """Open the view and the camera for ``purpose``; the view stays with a sentence when the camera fails."""
        self.ids.preview.clear_widgets()
        self._texture = None
        self._image.texture = None
        self.open(animation=False)
        started = self.svm.start(purpose)
        source = self.svm.source
        live = source.preview() if source is not None else None
        self.ids.preview.add_widget(live if live is not None else self._image)
        return bool(started)

    def on_dismiss(self) -> None:
        self.svm.stop()
        self.ids.preview.clear_widgets()

    def _screen_changed(self, _manager: ScreenManager, name: str) -> None:
        if self._window is not None:  # open: its screen went away
            self.dismiss(animation=False)
        if name in SCAN_SCREENS and not self.available:
            self.refresh_available()

    def _show_frame(self, frame: Frame) -> None:
        if self._image.parent is None:
            return
        size = (frame.width, frame.height)
        texture = self._texture
        if texture is None or tuple(texture.size) != size:
            texture = self._texture = Texture.create(size=size, colorfmt="rgba")
            texture.flip_vertical()  # frames are top row first, GL textures bottom row first
        texture.blit_buffer(frame.pixels, colorfmt="rgba", bufferfmt="ubyte")
        self._image.texture = texture
        self._image.canvas.ask_update()

    def _enrollment_read(self, link: EnrollmentLink) -> None:
        self.dismiss(animation=False)
        self.vm.use_enrollment_link(link)

    def _ticket_read(self, url: str) -> None:
        self.dismiss(animation=False)
        if self.manager.has_screen("check"):
            self.manager.get_screen("check").cvm.use_url(url)


def install(manager: ScreenManager, vm: PosViewModel, service: ScanService) -> ScanView:
    """The app's scan view (``kv/scan.kv`` is loaded with the app's other kv files, before the screens)."""
    return ScanView(manager, vm, service)
