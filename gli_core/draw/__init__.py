"""The draw: verifiable winner determination (GLI-31), sans I/O.

* :mod:`.vrf` - RSA-FDH-VRF-SHA256 (RFC 9381 section 4); the private operation is injected
  (the HSM's raw RSA), so the key never leaves the token;
* :mod:`.selection` - winners from the VRF output: SHAKE-256 stream, rejection sampling,
  partial Fisher-Yates, prize tiers, 50/50 amounts, redraws;
* :mod:`.proof` - the draw proof document (:func:`build_proof`, :func:`load_proof`) and the
  encodings it fixes (ticket leaves, alpha);
* :mod:`.verify` - :func:`verify_proof`, which needs no server, database or HSM;
* :mod:`.state_machine` - the states of a raffle's draw.

``docs/draw-proof.md`` specifies all of it precisely enough to reimplement a verifier.
"""

from gli_core.draw.proof import (
    ALGORITHM,
    SCHEMA,
    ProofInvalid,
    alpha_bytes,
    build_proof,
    load_proof,
    nonce_commitment,
    redraw_alpha_bytes,
    ticket_leaves,
    ticket_root,
    tickets_file_bytes,
    tickets_file_name,
)
from gli_core.draw.selection import (
    DrawInputInvalid,
    DrawTicket,
    NotEnoughTickets,
    RedrawRequest,
    Selection,
    TicketList,
    redraw,
    select,
)
from gli_core.draw.verify import VerifiedDraw, verify_proof
from gli_core.draw.vrf import VrfInvalid, VrfPublicKey

__all__ = [
    "ALGORITHM",
    "SCHEMA",
    "DrawInputInvalid",
    "DrawTicket",
    "NotEnoughTickets",
    "ProofInvalid",
    "RedrawRequest",
    "Selection",
    "TicketList",
    "VerifiedDraw",
    "VrfInvalid",
    "VrfPublicKey",
    "alpha_bytes",
    "build_proof",
    "load_proof",
    "nonce_commitment",
    "redraw",
    "redraw_alpha_bytes",
    "select",
    "ticket_leaves",
    "ticket_root",
    "tickets_file_bytes",
    "tickets_file_name",
    "verify_proof",
]
