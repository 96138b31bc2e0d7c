"""The portal's menu: one :class:`MenuEntry` per page, with the roles that see it.

A page module adds its entry with one line, e.g.
``MENU.append(MenuEntry("Devices", "/admin/devices", ("admin", "business_admin", "venue_manager"), order=20))``
(or a str_replace of the list below). The menu only hides what a role cannot use: every page
checks the role and the tenant itself (:func:`admin.web.require_portal_role`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: every role that may sign in to the portal (customers and salespersons use the shop and the POS)
STAFF = ("admin", "business_admin", "venue_manager", "auditor")


@dataclass(frozen=True)
class MenuEntry:
    label: str
    path: str
    roles: tuple[str, ...]
    #: position in the menu (lower first)
    order: int = 50


MENU: list[MenuEntry] = [
    MenuEntry("Dashboard", "/admin/", STAFF, order=0),
    MenuEntry("Account", "/admin/account", STAFF, order=90),
]


def menu_for(role: str | None) -> list[MenuEntry]:
    """The entries ``role`` sees, in order (none when signed out)."""
    if role is None:
        return []
    return sorted((e for e in MENU if role in e.roles), key=lambda e: (e.order, e.label))
