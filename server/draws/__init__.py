"""Published draw results for everyone: the public face of the core's draws (no login, no personal data)."""
