"""The Printer settings screen (``kv/printer.kv``), reached from Setup, over
:class:`~pos_client.app.printer_viewmodel.PrinterSettingsViewModel`; :func:`install` adds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen, ScreenManager

from pos_client.app.printer_viewmodel import KINDS, PrinterSettingsViewModel
from pos_client.app.viewmodels import PosViewModel

KV_FILE = Path(__file__).with_name("kv") / "printer.kv"


class PrinterScreen(Screen):  # type: ignore[misc]  # kivy has no type information
    """Shows only the fields of the kind chosen."""

    vm = ObjectProperty(None, rebind=True)
    pvm = ObjectProperty(None, rebind=True)

    def on_kv_post(self, _base: Any) -> None:
        self._groups = {kind: self.ids[f"fields_{kind}"] for kind in KINDS}
        self.pvm.bind(kind=self._show_fields)
        self._show_fields()

    def on_pre_enter(self, *_: Any) -> None:
        self.pvm.load()

    def _show_fields(self, *_: Any) -> None:
        holder = self.ids.fields
        holder.clear_widgets()
        holder.add_widget(self._groups[self.pvm.kind])


def install(manager: ScreenManager, vm: PosViewModel) -> None:
    """Load the kv file and add the printer settings screen (``printer``)."""
    Builder.unload_file(str(KV_FILE))  # a second app in one process (tests) loads it again
    Builder.load_file(str(KV_FILE))
    manager.add_widget(PrinterScreen(name="printer", vm=vm, pvm=PrinterSettingsViewModel(vm)))
