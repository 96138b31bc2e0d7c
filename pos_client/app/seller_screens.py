"""The seller sign-in and void screens, the PIN pad they share, and the guard that keeps the
selling screens behind a signed-in seller.

:class:`SellerGuard` watches the screen shown and the app view-model's ``signed_in``: a screen
that is not public (:data:`PUBLIC_SCREENS`) is shown only while a seller is signed in; otherwise
the sign-in screen is, and after the sign-in the screen the seller was on comes back as it was
(the sale being made, the receipt: the view-models keep them). The 5-minute idle lock is the
SDK's (:meth:`PosClient.session_expired`, read by the view-model's refresh every second); every
touch and key press counts as activity (:meth:`PosClient.note_activity`).
"""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, DictProperty, ObjectProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen, ScreenManager
from kivy.uix.togglebutton import ToggleButton

from pos_client.app.seller_viewmodels import SignInViewModel, VoidViewModel
from pos_client.app.viewmodels import PosViewModel

#: screens shown without a signed-in seller
PUBLIC_SCREENS = frozenset({"setup", "signin", "about"})
#: screens public only until the device is enrolled (nothing sells yet, no roster has come):
#: once enrolled, where receipts print changes only for a signed-in seller
SETUP_SCREENS = frozenset({"printer"})
SIGN_IN = "signin"
PAD_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "ok")


class PinPad(GridLayout):  # type: ignore[misc]  # kivy has no type information
    """Digits, Clear and OK (its text and state set by the screen); types into ``entry``."""

    entry = ObjectProperty(None, rebind=True)
    ok_text = StringProperty("OK")
    ok_disabled = BooleanProperty(False)
    __events__ = ("on_ok",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys: dict[str, Button] = {}
        for key in PAD_KEYS:
            button = Button(text={"clear": "Clear", "ok": self.ok_text}.get(key, key))
            if key.isdigit():
                button.font_size = "30sp"
                button.bind(on_release=lambda _b, k=key: self.entry.press(k) if self.entry else None)
            elif key == "clear":
                button.bind(on_release=lambda _b: self.entry.clear_pin() if self.entry else None)
            else:
                button.bind(on_release=lambda _b: self.dispatch("on_ok"))
            self.keys[key] = button
            self.add_widget(button)
        self.bind(ok_text=self._update_ok, ok_disabled=self._update_ok)
        self._update_ok()

    def _update_ok(self, *_: Any) -> None:
        ok = self.keys["ok"]
        ok.text = self.ok_text
        ok.disabled = self.ok_disabled

    def on_ok(self) -> None:
        pass


class SignInScreen(Screen):  # type: ignore[misc]
    """Who is selling: the roster as big buttons, then the PIN pad."""

    vm = ObjectProperty(None, rebind=True)
    svm = ObjectProperty(None, rebind=True)
    #: widgets made in code, by name for the window tests (``seller_<id>``, ``pin_<key>``)
    dynamic = DictProperty({})

    def on_kv_post(self, _base: Any) -> None:
        svm: SignInViewModel = self.svm
        svm.bind(roster=self._build_roster, seller_id=self._build_roster)
        pad: PinPad = self.ids.pad
        pad.bind(on_ok=lambda _p: self.svm.sign_in())
        self._build_roster()

    def on_pre_enter(self, *_: Any) -> None:
        self.svm.load_roster()

    def _build_roster(self, *_: Any) -> None:
        grid = self.ids.roster
        grid.clear_widgets()
        dynamic = {f"pin_{k}": b for k, b in self.ids.pad.keys.items()}
        for seller in self.svm.roster:
            button = ToggleButton(
                text=seller["name"],
                group="seller",
                state="down" if seller["seller_id"] == self.svm.seller_id else "normal",
                allow_no_selection=False,
            )
            button.bind(on_release=lambda _b, sid=seller["seller_id"]: self.svm.select(sid))
            grid.add_widget(button)
            dynamic[f"seller_{seller['seller_id']}"] = button
        self.dynamic = dynamic


class VoidScreen(Screen):  # type: ignore[misc]
    """Void a sale: the last one or one found by ticket number, a reason, a supervisor's PIN."""

    vm = ObjectProperty(None, rebind=True)
    vvm = ObjectProperty(None, rebind=True)
    dynamic = DictProperty({})

    def on_kv_post(self, _base: Any) -> None:
        pad: PinPad = self.ids.pad
        pad.bind(on_ok=lambda _p: self.vvm.confirm())
        self.vvm.bind(reason_choice=self._build_reasons)
        self._build_reasons()

    def on_pre_enter(self, *_: Any) -> None:
        # Back from the sign-in (the idle lock fell mid-void): keep the sale and reason, not the PIN.
        # Otherwise start afresh with the last sale (a sale shown earlier may no longer be the last).
        came_from = getattr(self.manager.transition.screen_out, "name", None)
        if came_from == SIGN_IN:
            self.vvm.clear_pin()
        else:
            self.vvm.reset()

    def _build_reasons(self, *_: Any) -> None:
        grid = self.ids.reasons
        grid.clear_widgets()
        dynamic = {f"pin_{k}": b for k, b in self.ids.pad.keys.items()}
        for index, reason in enumerate(self.vvm.reasons):
            button = ToggleButton(
                text=reason,
                group="void_reason",
                font_size="18sp",
                state="down" if reason == self.vvm.reason_choice else "normal",
            )
            button.bind(on_release=lambda _b, r=reason: self.vvm.choose_reason(r))
            grid.add_widget(button)
            dynamic[f"reason_{index}"] = button
        self.dynamic = dynamic

    def numbers_text(self, sale: dict[str, Any]) -> str:
        numbers = sale.get("numbers", [])
        return ", ".join(str(n) for n in numbers)


class SellerGuard:
    """Shows the sign-in screen whenever a screen that needs a seller would show without one."""

    def __init__(self, manager: ScreenManager, vm: PosViewModel) -> None:
        self.manager = manager
        self.vm = vm
        #: the screen to return to after the sign-in
        self.resume = "sell"
        manager.bind(current=self._on_current)
        vm.bind(signed_in=self._on_signed_in, needs_seller=self._on_signed_in, enrolled=self._on_signed_in)

    def needs_sign_in(self, name: str) -> bool:
        if name in PUBLIC_SCREENS or (name in SETUP_SCREENS and not self.vm.enrolled):
            return False
        return bool(self.vm.needs_seller) and not self.vm.signed_in

    def _on_current(self, manager: ScreenManager, name: str) -> None:
        if self.needs_sign_in(name):
            self.resume = name
            manager.current = SIGN_IN

    def _on_signed_in(self, *_: Any) -> None:
        current = self.manager.current
        if self.vm.signed_in:
            if current == SIGN_IN:
                self.manager.current = self.resume
        elif self.needs_sign_in(current):
            self.resume = current
            self.manager.current = SIGN_IN


def install(manager: ScreenManager, vm: PosViewModel) -> SellerGuard:
    """Add the sign-in and void screens to ``manager``, guard the others, count touches as activity.

    Keep the guard returned: Kivy holds bound methods weakly, so a dropped guard stops guarding.
    """
    from kivy.core.window import Window

    manager.add_widget(SignInScreen(name=SIGN_IN, vm=vm, svm=SignInViewModel(vm)))
    manager.add_widget(VoidScreen(name="void", vm=vm, vvm=VoidViewModel(vm)))
    guard = SellerGuard(manager, vm)
    # Every touch or key keeps the seller's session alive (returns None: the event goes on).
    Window.bind(on_touch_down=lambda *_a: vm.note_activity(), on_key_down=lambda *_a: vm.note_activity())
    return guard
