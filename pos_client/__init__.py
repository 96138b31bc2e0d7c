"""Tombola POS SDK: sell raffle tickets offline from signed number grants, sync later.

One SQLite file holds everything a device knows: its key, the server keys it pinned, its
grants, the raffles and its hash chain of sales and voids. :class:`PosClient` is the entry
point; ``tombola-pos`` (:mod:`pos_client.cli`) is the command line over it. See
``docs/pos-client.md`` for the storage schema, the time and lease rules and the sync policy.
"""

from pos_client.client import PosClient
from pos_client.clock import Clock, ManualClock, SystemClock
from pos_client.enroll import Enrollment
from pos_client.errors import (
    AlreadyEnrolled,
    AlreadyRejected,
    AlreadyVoided,
    BadAmount,
    BadInput,
    BadPayment,
    BadQuantity,
    ClockBackwards,
    DeviceRevoked,
    ExportFailed,
    LeaseExpired,
    NetworkError,
    NotAPosDatabase,
    NotEnrolled,
    NumbersExhausted,
    PosError,
    RaffleClosed,
    SaleRefused,
    SalesNotOpen,
    ServerError,
    ServerKeyNotPinned,
    ServerRefused,
    StoreError,
    SyncConflict,
    SyncFailed,
    UnknownRaffle,
    UnknownSale,
)
from pos_client.events import EVENT_TYPES, DeviceEvent
from pos_client.export import ExportResult
from pos_client.ledger import RejectedRecord
from pos_client.selling import Sale
from pos_client.status import RaffleStatus, Status
from pos_client.sync_engine import Rejection, SyncResult
from pos_client.transport import RetryPolicy
from pos_client.voids import Void
from pos_client.wallet import RefusedGrant

__all__ = [
    "EVENT_TYPES",
    "AlreadyEnrolled",
    "AlreadyRejected",
    "AlreadyVoided",
    "BadAmount",
    "BadInput",
    "BadPayment",
    "BadQuantity",
    "Clock",
    "ClockBackwards",
    "DeviceEvent",
    "DeviceRevoked",
    "Enrollment",
    "ExportFailed",
    "ExportResult",
    "LeaseExpired",
    "ManualClock",
    "NetworkError",
    "NotAPosDatabase",
    "NotEnrolled",
    "NumbersExhausted",
    "PosClient",
    "PosError",
    "RaffleClosed",
    "RaffleStatus",
    "RefusedGrant",
    "RejectedRecord",
    "Rejection",
    "RetryPolicy",
    "Sale",
    "SaleRefused",
    "SalesNotOpen",
    "ServerError",
    "ServerKeyNotPinned",
    "ServerRefused",
    "Status",
    "StoreError",
    "SyncConflict",
    "SyncFailed",
    "SyncResult",
    "SystemClock",
    "UnknownRaffle",
    "UnknownSale",
    "Void",
]
