"""The Printer settings screen (``kv/printer.kv``), reached from Setup, over
:class:`~pos_client.app.printer_viewmodel.PrinterSettingsViewModel`; :func:`install` adds it.

Once the device is enrolled the screen shows only to a signed-in seller (the app's seller guard,
:mod:`pos_client.app.seller_screens`; the SDK refuses a change without one too). The paired
Bluetooth devices are big buttons made here from the view-model's ``paired`` list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.properties import DictProperty, ObjectProperty
from kivy.uix.screenmanager import Screen, ScreenManager
from kivy.uix.togglebutton import ToggleButton

from pos_client.app.printer_viewmodel import KINDS, PrinterSettingsViewModel
from pos_client.app.viewmodels import PosViewModel

KV_FILE = Path(__file__).with_name("kv") / "printer.kv"


class PrinterScreen(Screen):  # type: ignore[misc]  # kivy has no type information
    """Shows only the fields of the kind chosen."""

    vm = ObjectProperty(None, rebind=True)
    pvm = ObjectProperty(None, rebind=True)
    #: the paired-device buttons, by name for the window tests (``bt_66_22_B3_0C_1A_7F``)
    dynamic = DictProperty({})

    def on_kv_post(self, _base: Any) -> None:
        self._groups = {kind: self.ids[f"fields_{kind}"] for kind in KINDS}
        self.pvm.bind(kind=self._show_fields)
        self.pvm.bind(paired=self._build_paired, mac=self._show_picked)
        self._show_fields()
        self._build_paired()

    def on_pre_enter(self, *_: Any) -> None:
        self.pvm.load()

    def _show_fields(self, *_: Any) -> None:
        holder = self.ids.fields
        holder.clear_widgets()
        holder.add_widget(self._groups[self.pvm.kind])

    def _build_paired(self, *_: Any) -> None:
        grid = self.ids.paired
        grid.clear_widgets()
        dynamic = {}
        for device in self.pvm.paired:
            button = ToggleButton(
                text=f"{device['name']}\n[size=15sp]{device['mac']}[/size]",
                markup=True,
                group="bt_device",
                font_size="20sp",
                state="down" if device["mac"] == self.pvm.mac.strip().upper() else "normal",
            )
            button.bind(on_release=lambda _b, mac=device["mac"]: self.pvm.pick(mac))
            grid.add_widget(button)
            dynamic["bt_" + device["mac"].replace(":", "_")] = button
        self.dynamic = dynamic

    def _show_picked(self, *_: Any) -> None:
        mac = self.pvm.mac.strip().upper()
        for name, button in self.dynamic.items():
            button.state = "down" if name == "bt_" + mac.replace(":", "_") else "normal"


def install(manager: ScreenManager, vm: PosViewModel) -> None:
    """Load the kv file and add the printer settings screen (``printer``)."""
    Builder.unload_file(str(KV_FILE))  # a second app in one process (tests) loads it again
    Builder.load_file(str(KV_FILE))
    manager.add_widget(PrinterScreen(name="printer", vm=vm, pvm=PrinterSettingsViewModel(vm)))
