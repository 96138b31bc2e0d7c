"""The wire objects of the sync protocol, one module each."""

from sync_protocol.messages.enrollment import EnrollmentRequest, EnrollmentResponse
from sync_protocol.messages.events import EVENT_TYPES, EventRecord
from sync_protocol.messages.export import ExportHeader, ExportTrailer
from sync_protocol.messages.grant import RangeGrant
from sync_protocol.messages.records import GENESIS_HASH, Payment, SaleRecord, VoidRecord, parse_record
from sync_protocol.messages.sellers import SellerInfo
from sync_protocol.messages.sync_ack import PricePoint, RaffleInfo, RejectedRecord, SyncAck
from sync_protocol.messages.sync_batch import MAX_BATCH_RECORDS, RejectionAck, SyncBatch

__all__ = [
    "EVENT_TYPES",
    "GENESIS_HASH",
    "MAX_BATCH_RECORDS",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EventRecord",
    "ExportHeader",
    "ExportTrailer",
    "Payment",
    "PricePoint",
    "RaffleInfo",
    "RangeGrant",
    "RejectedRecord",
    "RejectionAck",
    "SaleRecord",
    "SellerInfo",
    "SyncAck",
    "SyncBatch",
    "VoidRecord",
    "parse_record",
]
