"""HTTP routes of accounts and access: ``/auth/*`` (logins, tokens, TOTP, password reset),
``/v1/users`` (accounts), ``/v1/break-glass`` and ``/v1/approvals`` (two-person requests) and the
extension cap and requests under ``/v1/admin``. Thin: :mod:`server.accounts.service` and
:mod:`server.accounts.approvals` hold the rules. ``docs/accounts.md`` specifies each route.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server.accounts import approvals, passwords, service
from server.accounts.tokens import looks_like_jwt
from server.auth import ROLES, Principal, authenticate, bearer
from server.deps import AppDep, PrincipalDep, _throttle, require_role
from server.errors import NotFound, Unauthorized
from sync_protocol.bounds import NO_NUL

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/v1", tags=["accounts"])

IdPath = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]
Email = Annotated[str, Field(min_length=3, max_length=service.EMAIL_MAX, pattern=NO_NUL)]
Password = Annotated[str, Field(min_length=1, max_length=passwords.MAX_LENGTH)]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
ROLE_PATTERN = "^(" + "|".join(sorted(ROLES)) + ")$"
Id32 = Annotated[str, Field(max_length=32, pattern=NO_NUL)]
Manager = Annotated[Principal, Depends(require_role("admin", "business_admin", tenant_scoped=True))]
SystemAdmin = Annotated[Principal, Depends(require_role("admin"))]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _login_rate(request: Request, app: AppDep) -> None:
    """429 ``rate_limited`` past ``TOMBOLA_LOGIN_RATE`` logins or reset requests per client address
    (every server process shares the count): password spraying across accounts, and mail floods,
    slow down; the per-account lockout stays the guard of each account."""
    check = functools.partial(
        app.limiter.check, f"auth{request.url.path}", app.settings.login_rate, _client(request), what="logins"
    )
    if app.limiter.in_memory:
        check()
    else:
        await run_in_threadpool(check)


LoginRate = Depends(_login_rate)


class LoginBody(BaseModel):
    email: Email
    password: Password
    totp: str | None = Field(default=None, max_length=10, pattern=r"^[0-9 ]*$")


class TokenAnswer(BaseModel):
    """A login: the access token (``Authorization: Bearer``), its lifetime, and the refresh token."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_at_ms: int
    user_id: str
    email: str
    role: str
    organisation_id: str | None
    venue_ids: list[str] | None
    #: whether this login was made with the second factor
    mfa: bool


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class MfaSetupAnswer(BaseModel):
    secret: str
    provisioning_uri: str
    digits: int
    period: int


class CodeBody(BaseModel):
    code: str = Field(min_length=1, max_length=10, pattern=r"^[0-9 ]*$")


class ResetBody(BaseModel):
    email: Email


class ResetConfirmBody(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: Password


class PasswordChangeBody(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class PasswordChanged(BaseModel):
    status: str
    sessions_ended: int = Field(description="the account's other logins, ended by the change")


class Status(BaseModel):
    status: str


class Me(BaseModel):
    id: str
    role: str
    organisation_id: str | None
    venue_ids: list[str] | None
    via: str


@auth_router.post("/login", response_model=TokenAnswer, dependencies=[LoginRate])
def login(body: LoginBody, request: Request, app: AppDep) -> dict[str, Any]:
    """Email, password (and ``totp`` when the account has a second factor) for a login."""
    return service.login(
        app,
        body.email,
        body.password,
        totp=body.totp.replace(" ", "") if body.totp else None,
        client=_client(request),
        throttle=_throttle(request),
    )


@auth_router.post("/refresh", response_model=TokenAnswer)
def refresh(body: RefreshBody, request: Request, app: AppDep) -> dict[str, Any]:
    """Trade a refresh token (once) for new tokens; a reused one ends its whole login."""
    return service.refresh(app, body.refresh_token, client=_client(request))


@auth_router.post("/logout", response_model=Status)
def logout(principal: PrincipalDep, app: AppDep) -> dict[str, str]:
    """End the caller's login: its access and refresh tokens stop working at once."""
    user_id, session_id = service.session_of(principal)
    service.logout(app, session_id, user_id=user_id)
    return {"status": "logged_out"}


@auth_router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> dict[str, Any]:
    """Who the caller is, as the server sees it now (role, organisation, venues)."""
    return {
        "id": principal.id,
        "role": principal.role,
        "organisation_id": principal.tenant,
        "venue_ids": sorted(principal.venues) if principal.venues is not None else None,
        "via": principal.via,
    }


async def _mfa_user(
    request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None
) -> tuple[str, bool]:
    """(user id, whether the call is a first login's set-up): an ``mfa_setup`` token or a user's
    access token."""
    given = bearer(authorization)
    if looks_like_jwt(given):
        try:
            return await run_in_threadpool(service.mfa_setup_user, app, given), True
        except Unauthorized:  # not a set-up token: an access token, below
            pass
    principal = await run_in_threadpool(
        authenticate, app, authorization, path=request.url.path, client=_client(request), throttle=_throttle(request)
    )
    return service.session_of(principal)[0], False


MfaUser = Annotated[tuple[str, bool], Depends(_mfa_user)]


@auth_router.post("/mfa/setup", response_model=MfaSetupAnswer)
def mfa_setup(who: MfaUser, app: AppDep) -> dict[str, Any]:
    """A new TOTP secret and its ``otpauth://`` URI; not in force until confirmed."""
    return service.mfa_setup(app, who[0])


@auth_router.post("/mfa/confirm")
def mfa_confirm(body: CodeBody, who: MfaUser, request: Request, app: AppDep) -> dict[str, Any]:
    """Turn TOTP on with a current code; after a first login's set-up the answer is a login."""
    user_id, first_login = who
    return service.mfa_confirm(
        app, user_id, body.code.replace(" ", ""), start_session=first_login, client=_client(request)
    )


@auth_router.post("/password/change", response_model=PasswordChanged, dependencies=[LoginRate])
def password_change(body: PasswordChangeBody, principal: PrincipalDep, request: Request, app: AppDep) -> dict[str, Any]:
    """Change the caller's own password, proving the current one; the caller's other logins end."""
    user_id, session_id = service.session_of(principal)
    return service.change_password(
        app, user_id, session_id, body.current_password, body.new_password, client=_client(request)
    )


@auth_router.post("/password/reset", status_code=202, response_model=Status, dependencies=[LoginRate])
def password_reset(body: ResetBody, request: Request, app: AppDep) -> dict[str, str]:
    """Mail a one-time reset token to the account of ``email``, if there is one; 202 either way."""
    service.request_password_reset(app, body.email, client=_client(request))
    return {"status": "accepted"}


@auth_router.post("/password/reset/confirm", response_model=Status)
def password_reset_confirm(body: ResetConfirmBody, app: AppDep) -> dict[str, str]:
    """Set a new password with a reset token; every login of the account ends."""
    service.confirm_password_reset(app, body.token, body.new_password)
    return {"status": "password_set"}


# --- accounts ------------------------------------------------------------------------------------


class UserCreateBody(BaseModel):
    email: Email
    password: Password
    role: str = Field(max_length=16, pattern=ROLE_PATTERN)
    organisation_id: Id32 = ""
    venue_ids: list[Id32] = Field(default_factory=list, max_length=100)
    seller_id: Id32 = ""


class RoleBody(BaseModel):
    role: str = Field(max_length=16, pattern=ROLE_PATTERN)
    organisation_id: Id32 = ""
    venue_ids: list[Id32] = Field(default_factory=list, max_length=100)


class ReasonBody(BaseModel):
    reason: Reason


class UserView(BaseModel):
    id: str
    email: str
    status: str
    role: str | None
    organisation_id: str | None
    venue_ids: list[str] | None
    break_glass_until_ms: int | None
    seller_id: str | None
    mfa: bool
    locked_until_ms: int | None
    created_at_ms: int
    created_by: str
    disabled_at_ms: int | None
    last_login_at_ms: int | None


async def _managed(user_id: IdPath, principal: Manager, app: AppDep) -> Principal:
    """The caller, when it may manage the user of the path; another tenant's user is ``not_found``.
    A dependency, so the rule is judged before the body is."""
    user = await run_in_threadpool(service.get_user, app, user_id)
    if principal.tenant is not None and user["organisation_id"] != principal.tenant:
        raise NotFound(f"no user {user_id}")
    service.check_may_manage(principal, user["role"] or "", user["organisation_id"] or "")
    return principal


UserManager = Annotated[Principal, Depends(_managed)]


@users_router.post("/users", status_code=201, response_model=UserView)
def create_user(body: UserCreateBody, principal: Manager, app: AppDep) -> dict[str, Any]:
    """Create an account (a system admin: any; a business admin: its organisation's staff)."""
    service.check_may_manage(principal, body.role, body.organisation_id)
    return service.create_user(
        app,
        email=body.email,
        password=body.password,
        role=body.role,
        organisation_id=body.organisation_id,
        venue_ids=body.venue_ids,
        seller_id=body.seller_id,
        created_by=principal.id,
    )


@users_router.get("/users", response_model=list[UserView])
def list_users(principal: Manager, app: AppDep) -> list[dict[str, Any]]:
    """Accounts: every one for a system admin, its organisation's for a business admin."""
    return service.list_users(app, organisation_id=principal.tenant)


@users_router.put("/users/{user_id}/role", response_model=UserView)
def set_role(user_id: IdPath, body: RoleBody, principal: UserManager, app: AppDep) -> dict[str, Any]:
    service.check_may_manage(principal, body.role, body.organisation_id)
    return service.set_role(
        app, user_id, role=body.role, organisation_id=body.organisation_id, venue_ids=body.venue_ids, by=principal.id
    )


@users_router.post("/users/{user_id}/disable", response_model=UserView)
def disable_user(user_id: IdPath, body: ReasonBody, principal: UserManager, app: AppDep) -> dict[str, Any]:
    return service.disable_user(app, user_id, reason=body.reason, by=principal.id)


@users_router.post("/users/{user_id}/mfa-reset", response_model=UserView)
def mfa_reset(user_id: IdPath, principal: UserManager, app: AppDep) -> dict[str, Any]:
    return service.mfa_reset(app, user_id, by=principal.id)


# --- two-person requests -------------------------------------------------------------------------


class BreakGlassBody(BaseModel):
    reason: Reason
    minutes: int = Field(default=60, ge=1, le=240)


class ApprovalView(BaseModel):
    id: str
    kind: str
    status: str
    organisation_id: str
    requested_by: str
    requested_at_ms: int
    reason: str
    subject: dict[str, Any]
    expires_at_ms: int
    decided_by: str
    decided_at_ms: int | None
    result: dict[str, Any]


class CapBody(BaseModel):
    cap: int | None = Field(ge=0, le=10_000_000)


class CapView(BaseModel):
    venue_id: str
    cap: int | None


class ExtensionRequestBody(BaseModel):
    raffle_id: Id32
    numbers: int = Field(ge=1, le=100_000)
    reason: Reason


class ExtensionAnswer(BaseModel):
    status: str
    grant: dict[str, Any] | None = None
    approval: ApprovalView | None = None


BreakGlassAsker = Annotated[Principal, Depends(require_role("admin", "business_admin", tenant_scoped=True))]


@users_router.post("/break-glass", status_code=201, response_model=ApprovalView)
def request_break_glass(body: BreakGlassBody, principal: BreakGlassAsker, app: AppDep) -> dict[str, Any]:
    """Ask for the system admin role for up to four hours; another admin approves."""
    return approvals.request_break_glass(app, principal, reason=body.reason, minutes=body.minutes)


@users_router.get("/approvals", response_model=list[ApprovalView])
def list_approvals(principal: SystemAdmin, app: AppDep) -> list[dict[str, Any]]:
    return approvals.list_approvals(app)


@users_router.post("/approvals/{approval_id}/approve", response_model=ApprovalView)
def approve(approval_id: IdPath, principal: SystemAdmin, app: AppDep) -> dict[str, Any]:
    """Approve another person's request (a system admin, logged in as a person)."""
    return approvals.approve(app, approval_id, principal)


@users_router.post("/approvals/{approval_id}/deny", response_model=ApprovalView)
def deny(approval_id: IdPath, body: ReasonBody, principal: SystemAdmin, app: AppDep) -> dict[str, Any]:
    return approvals.deny(app, approval_id, principal, reason=body.reason)


@users_router.put("/admin/venues/{venue_id}/extension-cap", response_model=CapView)
def set_extension_cap(venue_id: IdPath, body: CapBody, principal: SystemAdmin, app: AppDep) -> dict[str, Any]:
    """Set (or with null lift) the most numbers one extension at the venue holds without a second admin."""
    return approvals.set_extension_cap(app, venue_id, body.cap, by=principal.id)


@users_router.post("/admin/devices/{device_id}/extension-requests", status_code=201, response_model=ExtensionAnswer)
def request_extension(
    device_id: IdPath, body: ExtensionRequestBody, principal: SystemAdmin, app: AppDep
) -> dict[str, Any]:
    """An emergency extension: granted at once up to the venue's cap, else pending a second admin."""
    return approvals.request_extension(app, principal, device_id, body.raffle_id, body.numbers, body.reason)
