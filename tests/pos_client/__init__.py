"""Tests of the POS SDK and the ``tombola-pos`` CLI, against an in-memory fake server."""
