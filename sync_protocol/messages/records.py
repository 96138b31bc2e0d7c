"""Chain records: a device's sales and voids, one gapless hash chain per device.

Each record carries ``seq`` (1, 2, 3... per device, no gaps), ``prev_hash`` (the ``hash`` of the
record before it, or :data:`GENESIS_HASH` for seq 1) and ``hash`` =
hex(SHA-256(``domain_bytes("record", record_without_hash)``)). A void is a record of the same
chain that names the sale it voids.

Time: ``device_time_ms`` is the device's wall clock (informative); ``anchor_ms`` is the server
time of the last sync response the device received and ``elapsed_ms`` the monotonic time since
it, so the server judges a sale by ``anchor_ms + elapsed_ms``, an anchor it issued itself.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from sync_protocol.bounds import INT32_MAX, Millis, Text64, Text128, Text500, TicketNumber
from sync_protocol.canonical import canonical_bytes, domain_bytes
from sync_protocol.errors import Malformed
from sync_protocol.messages._base import Message

GENESIS_HASH = "0" * 64
_RECORD_DOMAIN = domain_bytes("record", None)[: -len(b"null")]  # the tag, up to its NUL byte
#: a C1 control character (U+0080-U+009F) in UTF-8, which JCS and orjson might spell otherwise
_C1 = re.compile(rb"\xc2[\x80-\x9f]")


class Payment(Message):
    """How a sale was paid: ``cash``, or ``card`` with the terminal's reference."""

    method: Literal["cash", "card"]
    reference: Text128 | None = None


class _RecordBase(Message):
    sale_id: Text64 = Field(min_length=1, description="UUIDv7 of this record")
    device_id: Text64
    seq: int = Field(ge=1, le=INT32_MAX)
    raffle_id: Text64
    seller_id: Text64 = ""
    device_time_ms: Millis
    anchor_ms: Millis
    elapsed_ms: Millis
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    def compute_hash(self) -> str:
        if self.__pydantic_extra__ or (isinstance(self, SaleRecord) and self.payment.__pydantic_extra__):
            body = self.to_dict()
            body.pop("hash", None)
            return hashlib.sha256(domain_bytes("record", body)).hexdigest()
        # Only declared fields (str, int, list[int], literals, the payment): the instance's own
        # ``__dict__`` is the Python-mode dump (``exclude_none`` done by hand, and the payment's
        # dict in place of the model) at a fifth of model_dump's cost; the keys are ASCII and no
        # value is a float. So orjson's sorted output is the RFC 8785 form unless an integer is
        # beyond 2**53 - 1 (STRICT_INTEGER raises) or a string needs an escape (a backslash in
        # the bytes) or holds DEL or a C1 control: then the definition, canonical_bytes, decides.
        body = {k: v for k, v in self.__dict__.items() if v is not None}
        del body["hash"]
        payment = body.get("payment")
        if payment is not None:
            body["payment"] = {k: v for k, v in payment.__dict__.items() if v is not None}
        try:
            data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
            plain = b"\\" not in data and b"\x7f" not in data and (b"\xc2" not in data or not _C1.search(data))
        except TypeError:
            plain = False
        if not plain:
            data = canonical_bytes(body)
        return hashlib.sha256(_RECORD_DOMAIN + data).hexdigest()

    def sealed(self) -> Any:
        """A copy with ``hash`` filled in."""
        return self.model_copy(update={"hash": self.compute_hash()})

    @property
    def anchored_time_ms(self) -> int:
        """When the sale happened, on the server's clock."""
        return self.anchor_ms + self.elapsed_ms


class SaleRecord(_RecordBase):
    """A sale of one or more ticket numbers of one raffle, each inside one of the device's grants."""

    kind: Literal["sale"] = "sale"
    numbers: list[TicketNumber] = Field(min_length=1, max_length=1000)
    amount_cents: int = Field(ge=0, le=INT32_MAX)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code (upper case recommended)")
    payment: Payment


class VoidRecord(_RecordBase):
    """Cancels an earlier sale of the same device; its tickets leave the draw."""

    kind: Literal["void"] = "void"
    voids: Text64 = Field(description="sale_id of the sale voided")
    reason: Text500 = Field(min_length=1)


ChainRecord = Annotated[SaleRecord | VoidRecord, Field(discriminator="kind")]
_RECORD_ADAPTER: TypeAdapter[SaleRecord | VoidRecord] = TypeAdapter(ChainRecord)


def parse_record(data: Any) -> SaleRecord | VoidRecord:
    """Parse one record dict (sale or void); :class:`Malformed` names the bad field."""
    try:
        return _RECORD_ADAPTER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        seq = data.get("seq") if isinstance(data, dict) else None
        raise Malformed(f"record {where}: {err['msg']}", field=where, seq=seq) from exc
