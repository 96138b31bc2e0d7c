"""FastAPI dependencies: the application services, who is calling, and what they may do.

The dependencies that authenticate are ``async``: FastAPI runs them in the request's own task,
so the audit actor they set (:func:`gli_core.api.set_actor`) is inherited by the endpoint, which
FastAPI runs in a thread with a copy of that context. ``server/auth.py`` has the token rules.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from gli_core.api import set_actor
from gli_core.router import AuditScope
from server.auth import AUDIT_ROLES, ROLES, FailureThrottle, Principal, authenticate, check_role
from server.context import Tombola
from server.errors import Forbidden


def get_app(request: Request) -> Tombola:
    app: Tombola = request.app.state.tombola
    return app


AppDep = Annotated[Tombola, Depends(get_app)]


def _throttle(request: Request) -> FailureThrottle:
    """The app's limit on logged authentication failures (one per app, in memory)."""
    state = request.app.state
    throttle: FailureThrottle | None = getattr(state, "auth_throttle", None)
    if throttle is None:
        throttle = state.auth_throttle = FailureThrottle()
    return throttle


async def current_principal(
    request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of ``Authorization: Bearer <token>`` (401 ``unauthorized`` otherwise); its id
    becomes the audit actor of the request. Each principal may make ``TOMBOLA_USER_RATE`` calls
    (per person or token, counted in the store every server process shares; 429 ``rate_limited``
    with ``Retry-After`` past it), so one account or a leaked token cannot flood the server."""
    principal = await run_in_threadpool(
        authenticate,
        app,
        authorization,
        path=request.url.path,
        client=request.client.host if request.client else "unknown",
        throttle=_throttle(request),
    )
    count = functools.partial(app.limiter.check, "user", app.settings.user_rate, principal.id, what="calls")
    if app.limiter.in_memory:
        count()
    else:
        await run_in_threadpool(count)
    set_actor(principal.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: str, tenant_scoped: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting principals of ``roles``: installation-wide ones only, unless
    ``tenant_scoped`` (the route then confines itself to ``principal.tenant``). Others get 403
    ``forbidden``."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"require_role needs known roles, not {sorted(unknown) or 'none'}")

    async def dependency(principal: PrincipalDep) -> Principal:
        return check_role(principal, roles, tenant_scoped=tenant_scoped)

    return dependency


async def require_admin(principal: PrincipalDep) -> Principal:
    """Admin routes: the installation admin token, or an installation-wide ``admin`` API token
    (a system admin). A token bound to an organisation, or of another role, gets 403."""
    return check_role(principal, ("admin",))


AdminDep = Depends(require_admin)


async def audit_scope_of(principal: PrincipalDep) -> AuditScope:
    """The override of :func:`gli_core.router.audit_scope`: admins and auditors read the log,
    installation-wide ones every tenant's entries, others only their organisation's."""
    if principal.role not in AUDIT_ROLES:
        raise Forbidden(f"the {principal.role} role may not read the audit log")
    return AuditScope(principal=principal.id, tenant=principal.tenant)
