"""Bounds of the protocol's values: every member a server stores fits its column on every backend.

``docs/sync-protocol.md`` section 4: an INTEGER column holds up to 2**31 - 1, a BIGINT column what
I-JSON allows (+-(2**53 - 1), which canonical bytes demand anyway), a VARCHAR(n) column n
characters, and PostgreSQL text holds no U+0000. The wire models (and the server's request
models) are typed with these, so a value out of bounds is ``malformed`` on the server, cannot be
built on the device, and ``/openapi.json`` shows the bound.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

#: the largest value of a 32-bit INTEGER column (seq, ticket numbers, amounts)
INT32_MAX = 2**31 - 1
#: the largest integer I-JSON (RFC 7493 section 2.2) carries exactly; BIGINT columns hold it
SAFE_INT_MAX = 2**53 - 1
#: a string without U+0000 (which PostgreSQL text cannot hold)
NO_NUL = r"^[^\x00]*$"

#: a count or sequence number stored in an INTEGER column
Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
#: a ticket number (INTEGER column), >= 1
TicketNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: a point in time or a duration in milliseconds (BIGINT column)
Millis = Annotated[int, Field(ge=0, le=SAFE_INT_MAX)]
#: strings of at most n characters without U+0000 (VARCHAR(n) columns)
Text32 = Annotated[str, StringConstraints(max_length=32, pattern=NO_NUL)]
Text64 = Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)]
Text100 = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
Text128 = Annotated[str, StringConstraints(max_length=128, pattern=NO_NUL)]
Text500 = Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)]
