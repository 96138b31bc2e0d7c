"""Common base of the wire objects: pydantic models that keep unknown fields.

Unknown fields are kept (``extra="allow"``) and re-encoded, so a record or grant written by a
newer minor version hashes and verifies byte-identically here. ``None`` fields are omitted
from the wire form and from canonical bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from sync_protocol.errors import Malformed
from sync_protocol.version import check_version


class Message(BaseModel):
    """Base of every wire object."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The wire form (JSON-ready dict, ``None`` fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a wire dict; raise :class:`Malformed` naming the first bad field."""
        if not isinstance(data, Mapping):
            raise Malformed(f"{cls.__name__} must be a JSON object")
        # The version comes first: a message of another major version may have another shape,
        # and its sender must learn "unsupported_version", not which field looked wrong.
        version = data.get("protocol_version")
        if isinstance(version, str):
            check_version(version)
        try:
            obj = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or cls.__name__
            raise Malformed(f"{cls.__name__}.{where}: {err['msg']}", field=where) from exc
        return obj
