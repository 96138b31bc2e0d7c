"""Shared helpers and fixtures for the Tombola test suite.

Fixtures live in modules here and are imported into ``tests/conftest.py``; plain helpers
(such as :func:`tests.support.postgres.create_pg_database`) can be imported by tests directly.
"""
