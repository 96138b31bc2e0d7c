"""The Kivy app: a status bar, a ``ScreenManager`` of screens (one kv file each) and a nav bar.

Start it with ``tombola-pos --db FILE app`` or :func:`run`. Every screen binds to the one
:class:`~pos_client.app.viewmodels.PosViewModel`; the background sync thread hands its results
to the UI thread through ``Clock.schedule_once``, and a one-second ``Clock`` interval refreshes
the countdowns (lease, sales close) from :meth:`PosClient.status`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import DictProperty, ObjectProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager
from kivy.uix.togglebutton import ToggleButton

from pos_client.app import check_shift_screens, printer_screen, scanner_view, seller_screens
from pos_client.app.identity import Identity, identity
from pos_client.app.scanner import ScanService
from pos_client.app.viewmodels import DEFAULT_SYNC_INTERVAL_S, Callback, PosViewModel, record_event
from pos_client.clock import Clock as DeviceClock

KV_DIR = Path(__file__).with_name("kv")
#: kv files in load order: the shared styles first, then the status bar and one per screen
KV_FILES = (
    "theme.kv",
    "statusbar.kv",
    "pinpad.kv",
    "scan.kv",
    "setup.kv",
    "sell.kv",
    "receipt.kv",
    "signin.kv",
    "void.kv",
    "about.kv",
    "root.kv",
)
BACKGROUND = (0.07, 0.08, 0.09, 1)


def post_to_ui(callback: Callback) -> None:
    """Run ``callback`` on the UI thread at the next frame (safe to call from any thread)."""
    Clock.schedule_once(lambda _dt: callback(), 0)


class VmScreen(Screen):  # type: ignore[misc]
    vm = ObjectProperty(None, rebind=True)


class SetupScreen(VmScreen):
    pass


class SellScreen(VmScreen):
    """The sale: raffle picker, one button per price point, singles stepper, payment, confirm."""

    #: buttons made from the view-model's lists, by name (``price_5``, ``raffle_<id>``)
    dynamic = DictProperty({})

    def on_kv_post(self, _base: Any) -> None:
        vm: PosViewModel = self.vm
        vm.bind(price_points=self._build_prices, raffles=self._build_raffles, raffle_id=self._build_raffles)
        self._build_prices()
        self._build_raffles()

    def _build_prices(self, *_: Any) -> None:
        grid = self.ids.prices
        grid.clear_widgets()
        dynamic = {k: v for k, v in self.dynamic.items() if not k.startswith("price_")}
        for point in self.vm.price_points:
            button = Button(text=point["label"])
            button.bind(on_release=lambda _b, q=point["quantity"]: self.vm.choose(q))
            grid.add_widget(button)
            dynamic[f"price_{point['quantity']}"] = button
        self.dynamic = dynamic

    def _build_raffles(self, *_: Any) -> None:
        row = self.ids.raffle_picker
        row.clear_widgets()
        dynamic = {k: v for k, v in self.dynamic.items() if not k.startswith("raffle_")}
        raffles = self.vm.raffles
        for raffle in raffles if len(raffles) > 1 else []:
            button = ToggleButton(
                text=raffle["name"],
                group="raffle",
                state="down" if raffle["raffle_id"] == self.vm.raffle_id else "normal",
                allow_no_selection=False,
            )
            button.bind(on_release=lambda _b, rid=raffle["raffle_id"]: self.vm.select_raffle(rid))
            row.add_widget(button)
            dynamic[f"raffle_{raffle['raffle_id']}"] = button
        self.dynamic = dynamic

    def confirm(self) -> None:
        if self.vm.confirm():
            self.manager.current = "receipt"


class ReceiptScreen(VmScreen):
    def numbers_markup(self, receipt: dict[str, Any]) -> str:
        rows = [
            f"[size=40sp][b]{number}[/b][/size]   [size=18sp]code {code}[/size]"
            for number, code in zip(receipt.get("numbers", []), receipt.get("codes", []), strict=False)
        ]
        return "\n".join(rows)


class AboutScreen(VmScreen):
    info = ObjectProperty(None, rebind=True)


class StatusBar(BoxLayout):  # type: ignore[misc]
    vm = ObjectProperty(None, rebind=True)


class Root(BoxLayout):  # type: ignore[misc]
    vm = ObjectProperty(None, rebind=True)

    def go(self, name: str) -> None:
        if name == "receipt":
            self.vm.show_last_sale()
        self.ids.screens.current = name


class PosApp(App):  # type: ignore[misc]
    """The POS app over the device database ``db_path``.

    Args:
        db_path: the device database (``tombola-pos --db``).
        clock: the device's time source (tests pass one they can move on).
        sync_interval_s: seconds between background syncs (a sale wakes the sync at once).
        scan_service: the camera QR scanner's frame source (default: Kivy's camera, when there is
            one; tests inject frames).
    """

    title = "Tombola POS"
    #: the camera QR scan view (pos_client/app/scanner_view.py); kv shows Scan buttons through it
    scan = ObjectProperty(None, allownone=True)

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: DeviceClock | None = None,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        scan_service: ScanService | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scan_service = scan_service
        self.db_path = Path(db_path)
        self.clock = clock
        self.sync_interval_s = sync_interval_s
        self.vm: PosViewModel | None = None
        self._stopped = False
        self.identity: Identity = identity()

    def build(self) -> Root:
        from kivy.core.window import Window  # made here: callers size it through Config first

        Window.clearcolor = BACKGROUND
        for name in KV_FILES:
            Builder.load_file(str(KV_DIR / name))
        self.vm = PosViewModel(self.db_path, post=post_to_ui, clock=self.clock, sync_interval_s=self.sync_interval_s)
        root = Root(vm=self.vm)
        manager: ScreenManager = root.ids.screens
        manager.transition = NoTransition()
        for screen in (
            SetupScreen(name="setup", vm=self.vm),
            SellScreen(name="sell", vm=self.vm),
            ReceiptScreen(name="receipt", vm=self.vm),
            AboutScreen(name="about", vm=self.vm, info=self.identity),
        ):
            manager.add_widget(screen)
        # sign-in and void screens; the others that sell show only while a seller is signed in
        # (the guard is kept here: Kivy holds bound methods weakly)
        self.seller_guard = seller_screens.install(manager, self.vm)
        check_shift_screens.install(manager, self.vm)  # ticket check and end of shift
        printer_screen.install(manager, self.vm)  # printer settings, from Setup
        self.scan = scanner_view.install(manager, self.vm, self.scan_service or ScanService())  # camera QR
        manager.current = "sell" if self.vm.enrolled else "setup"
        Clock.schedule_interval(lambda _dt: self.vm.refresh() if self.vm else None, 1.0)
        return root

    def on_start(self) -> None:
        assert self.vm is not None
        record_event(self.vm.client, "app.start", {"version": self.identity.version})
        self.vm.start_sync()

    def on_stop(self) -> None:
        # Kivy's App.run() calls stop() again after the window closed: record and close once.
        if self.vm is not None and not self._stopped:
            self._stopped = True
            if self.scan is not None:
                self.scan.svm.stop()  # the camera is let go
            record_event(self.vm.client, "app.stop", None)
            self.vm.stop()


def run(db_path: str | Path, *, sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S) -> None:
    """Run the app on the desktop until its window closes."""
    PosApp(db_path, sync_interval_s=sync_interval_s).run()
