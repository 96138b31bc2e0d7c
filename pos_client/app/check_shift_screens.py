"""The ticket-check and end-of-shift screens (``kv/check.kv``, ``kv/shift.kv``) over
:mod:`pos_client.app.check_shift_viewmodels`; :func:`install` adds them to the app's ScreenManager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.properties import DictProperty, ObjectProperty
from kivy.uix.screenmanager import Screen, ScreenManager
from kivy.uix.togglebutton import ToggleButton

from pos_client.app.check_shift_viewmodels import ShiftViewModel, TicketCheckViewModel
from pos_client.app.viewmodels import PosViewModel

#: the kv files of these screens, loaded by :func:`install` (after the app's shared styles)
KV_DIR = Path(__file__).with_name("kv")
KV_FILES = ("check.kv", "shift.kv")
#: the colours of a check's answer panel, by the view-model's ``tone``
TONE_COLOURS = {
    "ok": (0.11, 0.45, 0.18, 1),
    "danger": (0.70, 0.11, 0.11, 1),
    "warn": (0.55, 0.40, 0.02, 1),
    "": (0, 0, 0, 0),
}


class CheckScreen(Screen):  # type: ignore[misc]  # kivy has no type information
    """Number and code typed, or the check URL scanned into its field; the answer in big text."""

    vm = ObjectProperty(None, rebind=True)
    cvm = ObjectProperty(None, rebind=True)
    #: raffle buttons made in code, by name for the window tests (``check_raffle_<id>``)
    dynamic = DictProperty({})

    def on_kv_post(self, _base: Any) -> None:
        self.cvm.bind(raffles=self._build_raffles, raffle_id=self._build_raffles)
        self._build_raffles()

    def tone_colour(self, tone: str) -> tuple[float, float, float, float]:
        return TONE_COLOURS.get(tone, TONE_COLOURS[""])

    def _build_raffles(self, *_: Any) -> None:
        row = self.ids.raffle_picker
        row.clear_widgets()
        dynamic = {}
        raffles = self.cvm.raffles
        for raffle in raffles if len(raffles) > 1 else []:
            button = ToggleButton(
                text=raffle["name"],
                group="check_raffle",
                state="down" if raffle["raffle_id"] == self.cvm.raffle_id else "normal",
                allow_no_selection=False,
            )
            button.bind(on_release=lambda _b, rid=raffle["raffle_id"]: self.cvm.select_raffle(rid))
            row.add_widget(button)
            dynamic[f"check_raffle_{raffle['raffle_id']}"] = button
        self.dynamic = dynamic


class ShiftScreen(Screen):  # type: ignore[misc]  # kivy has no type information
    """The opening float, the report as text, print it."""

    vm = ObjectProperty(None, rebind=True)
    svm = ObjectProperty(None, rebind=True)

    def on_pre_enter(self, *_: Any) -> None:
        self.svm.load()


def install(manager: ScreenManager, vm: PosViewModel) -> None:
    """Load their kv files and add the ticket-check (``check``) and end-of-shift (``shift``) screens."""
    for name in KV_FILES:
        path = str(KV_DIR / name)
        Builder.unload_file(path)  # a second app in one process (tests) loads them again
        Builder.load_file(path)
    manager.add_widget(CheckScreen(name="check", vm=vm, cvm=TicketCheckViewModel(vm)))
    manager.add_widget(ShiftScreen(name="shift", vm=vm, svm=ShiftViewModel(vm)))
