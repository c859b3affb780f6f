"""The closing window of a run: its logical time (`as_of`) and the grace period.

A period is closed once `as_of >= period_end + grace` (SPEC §3). Both come from the command line or
the DAG run, so they are parsed strictly here and passed to dbt and SQL only in normalised form.
`as_of` may be any past instant, however old, and never later than now + 5 minutes (SPEC §10):
every window is checked here, so a run for the future is refused before anything is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing.settings import DEFAULT_GRACE

_UNITS = {
    "s": "seconds", "sec": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
}
# SPEC §10: how far ahead of the wall clock a run's as_of may be (clock skew between machines).
FUTURE_TOLERANCE = timedelta(minutes=5)
# The DAGs' start_date: earlier than any as_of a run may have, so Airflow runs every task of a run
# for any past logical date (a migration replays years of history).
EARLIEST_AS_OF = datetime(1970, 1, 1, tzinfo=UTC)

_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class ClosingWindow:
    as_of: datetime
    grace: str = DEFAULT_GRACE

    def __post_init__(self) -> None:
        refuse_future(self.as_of)

    @classmethod
    def parse(cls, as_of: str | datetime, grace: str = DEFAULT_GRACE) -> ClosingWindow:
        moment = as_of if isinstance(as_of, datetime) else parse_timestamp(as_of)
        return cls(as_of=_as_utc(moment), grace=parse_duration(grace))

    @classmethod
    def of_dag_run(cls, context) -> ClosingWindow:
        """A DAG run's window: the `as_of` param, else the run's logical date, else now (a manual
        trigger has no logical date); the `grace` param."""
        params = context["params"]
        as_of = params.get("as_of") or context.get("logical_date") or datetime.now(UTC)
        return cls.parse(as_of, params.get("grace") or DEFAULT_GRACE)

    def as_dict(self) -> dict[str, str]:
        return {"as_of": self.as_of.isoformat(), "grace": self.grace}


class FutureAsOf(ValueError):
    """A run's as_of is later than now + 5 minutes: nothing may be closed for a period not yet ended."""


def refuse_future(as_of: datetime) -> datetime:
    """`as_of` itself, or FutureAsOf when it is later than now + FUTURE_TOLERANCE (SPEC §10)."""
    now = datetime.now(UTC)
    if as_of > now + FUTURE_TOLERANCE:
        raise FutureAsOf(
            f"as_of {as_of.isoformat()} is in the future (now is {now.isoformat(timespec='seconds')}):"
            f" a run may close only what has ended; nothing was run"
        )
    return as_of


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


def duration(text: str) -> timedelta:
    """A duration `parse_duration` accepts, as a timedelta."""
    amount, unit = parse_duration(text).split()
    return timedelta(**{unit: int(amount)})


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
