"""Tombola's server: enrollment, sync ingest, reconciliation and the business API.

It reaches the certified core only through :mod:`gli_core.api` (import-linter enforces it).
"""
