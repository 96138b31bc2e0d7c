"""Accounts and access: users, roles, logins (JWT), TOTP, lockout, password resets, two-person approvals.

See docs/accounts.md.
"""
