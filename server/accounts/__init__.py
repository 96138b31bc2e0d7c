"""Accounts and access: users, roles, logins (JWT), TOTP, lockout, password resets, two-person approvals.

Importing the package lets :func:`server.auth.authenticate` accept persons' access tokens
(:func:`server.accounts.tokens.principal_of`). See docs/accounts.md.
"""

from server.accounts.tokens import principal_of
from server.auth import set_user_token_reader

set_user_token_reader(principal_of)
