"""The admin web portal and public results pages (server-rendered; built in a later issue).

It uses :mod:`server` services only, never :mod:`gli_core` internals (import-linter enforces it).
"""
