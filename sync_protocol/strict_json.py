"""Parsing I-JSON (RFC 7493): the one JSON loader for what crosses a trust boundary.

``docs/sync-protocol.md`` section 4 makes every protocol message I-JSON: UTF-8, no lone
surrogates, no duplicate member names (RFC 7493 section 2.3). A plain JSON parser keeps the
last of two members of the same name, so ``{"device_id": "a", "device_id": "b"}`` would mean
``b`` to one reader and ``a`` to another: :func:`loads_strict` refuses it as ``malformed``.
The server parses request bodies with it, the device the server's answers, and
``tombola verify-draw`` a draw proof.

Speed (the sync endpoint is hot): ``orjson`` parses and checks UTF-8, surrogates and the
grammar. ``orjson.dumps`` of what it parsed never repeats a member; when those bytes equal the
body, the body has no duplicate either, which is what a compact body written by ``orjson``
(the POS SDK, the server) always gives. Any other body (indented, other escapes or key
spacing) is checked member by member by the standard library's parser, exactly and slower.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from sync_protocol.errors import Malformed

__all__ = ["loads_strict"]


class _DuplicateMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateMember(name)
            seen.add(name)
    return obj


def loads_strict(data: bytes | bytearray | memoryview | str, what: str = "the body") -> Any:
    """Parse I-JSON; raise :class:`~sync_protocol.errors.Malformed` for anything else.

    Refused: invalid JSON or UTF-8, a lone surrogate, ``NaN``/``Infinity``, and an object with
    two members of the same name (``field`` names the member).

    Args:
        data: the JSON text (bytes in UTF-8, or str).
        what: how the error names the document ("the body", "the proof"...).
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"{what} is not JSON: {exc}") from None
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if isinstance(value, (dict, list)) and orjson.dumps(value) != raw:
        try:
            json.loads(raw, object_pairs_hook=_no_duplicates)
        except _DuplicateMember as exc:
            raise Malformed(
                f"{what} has two members named {exc.name!r} (I-JSON, RFC 7493 section 2.3)", field=exc.name
            ) from None
        except (ValueError, RecursionError) as exc:  # what orjson took and the check cannot read
            raise Malformed(f"{what} is not JSON: {exc}") from None
    return value
