"""The Tombola POS app: Kivy screens over :class:`~pos_client.PosClient` (``tombola-pos app``).

:mod:`pos_client.app.viewmodels` holds the state and actions (testable without a window);
:mod:`pos_client.app.main` the Kivy ``App`` and its screens, one kv file each under ``kv/``.
Kivy is imported only by those modules, so the SDK and its CLI work without it.
"""

import os

# Kivy must leave the command line to the caller (click, pytest): set before Kivy is imported.
os.environ.setdefault("KIVY_NO_ARGS", "1")
