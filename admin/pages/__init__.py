"""The portal's pages: one module per area, each with its ``router`` (prefix ``/admin``) and its
templates under ``admin/templates/<area>/``. A new area adds one line to :data:`ROUTERS`.

Paths must not shadow the JSON API under ``/admin`` (``/admin/raffles...``: raffle management):
tests/portal/test_foundation.py fails on a collision.
"""

from fastapi import APIRouter

from admin.pages import (
    audit,
    auth,
    dashboard,
    devices,
    draws,
    extensions,
    health,
    lost_devices,
    raffles,
    reports,
    users,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    dashboard.router,
    devices.router,
    extensions.router,
    lost_devices.router,
    raffles.router,
    draws.router,
    reports.router,
    users.router,
    audit.router,
    health.router,
]
