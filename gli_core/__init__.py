"""The certified core of Tombola (GLI-31): ticket registry, grant signing, and, with their
issues, the HSM, RNG, draw engine and audit log. The server uses :mod:`gli_core.api` only."""
