"""Rotate an endpoint's signing secret, with an overlap during which the old one still signs.

The new secret is generated here and returned once; the old one becomes `previous_secret` until
now + overlap, and every delivery in between carries both signatures (`sign.signed_headers`), so
a receiver can switch secrets whenever it likes within the overlap. Only one previous secret is
kept: rotating again during an overlap ends the older secret's overlap at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from billing.warehouse import connect
from billing.webhooks.errors import EndpointNotFound
from billing.webhooks.sign import new_secret
from billing.window import parse_duration

DEFAULT_OVERLAP = "24h"


@dataclass(frozen=True)
class Rotation:
    """The new secret (shown once: it is stored nowhere else), and until when the old one signs.

    previous_valid_until is None with a zero overlap (the old secret stops at once);
    ended_earlier_overlap says a previous rotation's old secret was still valid and is now not.
    """

    endpoint_id: str
    secret: str = field(repr=False)
    previous_valid_until: datetime | None
    ended_earlier_overlap: bool


def rotate_secret(endpoint_id: str, *, overlap: str = DEFAULT_OVERLAP) -> Rotation:
    """Give `endpoint_id` a new whsec_ secret; the current one stays valid for `overlap` (1h, 2d …).

    Raises ValueError for a malformed overlap, EndpointNotFound for an unknown endpoint.
    """
    interval = parse_duration(overlap)
    secret = new_secret()
    with connect() as connection:
        current = connection.execute(
            """
            select
                previous_secret is not null
                and coalesce(previous_secret_expires_at > now(), true)
            from raw.webhook_endpoints
            where endpoint_id = %s
            for update
            """,
            (endpoint_id,),
        ).fetchone()
        if current is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")
        (valid_until,) = connection.execute(
            """
            update raw.webhook_endpoints
            set
                previous_secret = case when %(overlap)s::interval > interval '0' then secret end,
                previous_secret_expires_at
                = case when %(overlap)s::interval > interval '0' then now() + %(overlap)s::interval end,
                secret = %(secret)s
            where endpoint_id = %(endpoint_id)s
            returning previous_secret_expires_at
            """,
            {"overlap": interval, "secret": secret, "endpoint_id": endpoint_id},
        ).fetchone()
    return Rotation(endpoint_id, secret, valid_until, ended_earlier_overlap=current[0])
