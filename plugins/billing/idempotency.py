"""Idempotency keys: versioned digests of what an operation is about.

The same parts always give the same key, so a re-run or a resumed crash presents the same key to
the gateway, the outbox or a unique index, and the second write is refused there.
"""

from __future__ import annotations

import hashlib

# NOTE: changing the version changes every key: in-flight charges would be sent again. Don't.
KEY_VERSION = "v1"


def idempotency_key(prefix: str, *parts: object) -> str:
    """`prefix` + the digest of the parts in order, e.g. `ch_3f…` for ("ch", invoice_id, 1)."""
    material = "|".join([KEY_VERSION, *map(str, parts)])
    return f"{prefix}_{hashlib.sha256(material.encode()).hexdigest()[:32]}"
