"""The raffle setting ``offline_sales``: a raffle that may not be sold while the device is offline.

Ontario AGCO POS 1.1.5 lets a regulator require that a terminal stop selling as soon as it loses
its connection to the central system. A raffle created with ``--no-offline-sales`` carries
``RaffleInfo.offline_sales = false``; for it the device sells only while the server answered
recently: :func:`check_offline_sales` refuses a sale (``offline_sales_not_allowed``, nothing
written) when the app reported the server unreachable, or when the last answer from the server
(a sync, an enrollment or :meth:`~pos_client.client.PosClient.check_server`) is older than
:data:`ONLINE_WINDOW_MS`.

This rule lives on the device, not in :mod:`sync_protocol.rules`: it judges the device's
connectivity at the moment of the sale, which no record carries, so the server cannot apply it
to a synced sale (a record made in the window and synced later is a good sale).
"""

from __future__ import annotations

from pos_client.errors import OfflineSalesNotAllowed
from sync_protocol.messages import RaffleInfo

__all__ = ["ONLINE_WINDOW_MS", "check_offline_sales"]

#: how recent the server's last answer must be for a sale of a raffle without offline sales;
#: the app pings (``PosClient.check_server``) or syncs more often than this while selling
ONLINE_WINDOW_MS = 60_000


def check_offline_sales(
    raffle: RaffleInfo | None, *, reachable: bool | None, last_contact_ms: int | None, now_ms: int
) -> None:
    """Refuse a sale of ``raffle`` when it may not be sold offline and the device is not online.

    Args:
        raffle: the raffle as the server last sent it (``None``: unknown, judged elsewhere).
        reachable: what the app (or the last sync or ping) last found: ``False`` = the server did
            not answer; ``None`` = nothing reported.
        last_contact_ms: the wall-clock time of the server's last answer (``None``: never).
        now_ms: the wall clock now.

    Raises:
        OfflineSalesNotAllowed: the raffle sells only online and the server is not reachable now.
    """
    if raffle is None or raffle.offline_sales is not False:
        return
    fresh = last_contact_ms is not None and 0 <= now_ms - last_contact_ms <= ONLINE_WINDOW_MS
    if reachable is False or not fresh:
        since = "never" if last_contact_ms is None else f"{max(0, now_ms - last_contact_ms) // 1000} s ago"
        raise OfflineSalesNotAllowed(
            f"raffle {raffle.raffle_id} may not be sold offline and the server is not reachable "
            f"(last answer: {since}): restore the connection, then sell again",
            raffle_id=raffle.raffle_id,
        )
