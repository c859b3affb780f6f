"""The closing window of a cycle-close run: its logical time (`as_of`) and the grace period.

A period is closed once `as_of >= period_end + grace` (SPEC §3). Both come from the command line or
the DAG run, so they are parsed strictly here and passed to dbt and SQL only in normalised form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from billing.settings import DEFAULT_GRACE

_UNITS = {
    "s": "seconds", "sec": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class ClosingWindow:
    as_of: datetime
    grace: str = DEFAULT_GRACE

    @classmethod
    def parse(cls, as_of: str | datetime, grace: str = DEFAULT_GRACE) -> "ClosingWindow":
        moment = as_of if isinstance(as_of, datetime) else parse_timestamp(as_of)
        return cls(as_of=_as_utc(moment), grace=parse_duration(grace))

    @classmethod
    def of_dag_run(cls, context) -> "ClosingWindow":
        """A DAG run's window: the `as_of` param, else the run's logical date, else now (a manual
        trigger has no logical date); the `grace` param."""
        params = context["params"]
        as_of = params["as_of"] or context.get("logical_date") or datetime.now(timezone.utc)
        return cls.parse(as_of, params["grace"])

    def as_dict(self) -> dict[str, str]:
        return {"as_of": self.as_of.isoformat(), "grace": self.grace}


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 timestamp (e.g. 2026-07-01T00:00:00Z)") from None
    return _as_utc(moment)


def parse_duration(text: str) -> str:
    """'1h', '30 minutes', '2d' … as a PostgreSQL interval literal ('1 hours')."""
    match = _DURATION.match(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"'{text}' is not a duration (e.g. 1h, 30m, 2d, 90 seconds)")
    return f"{int(match.group(1))} {_UNITS[match.group(2)]}"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
