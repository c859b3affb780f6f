"""Gate thresholds: configuration, not code (`BILLING_HOME/quality.yml`, or `BILLING_QUALITY_CONFIG`).

Every key is optional; what the file leaves out keeps the default below. Unknown keys are refused,
so a typo cannot silently switch a check back to its default. The file is read each time a gate
runs: edit it, then clear the failed task (or re-run the close) to apply it. The format is
documented in `data_contracts/README.md` ("Quality gate configuration").
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from billing import documents
from billing.settings import billing_home
from billing.window import parse_duration

CONFIG_ENV = "BILLING_QUALITY_CONFIG"

# A finite number; `null` where the field allows it means "no bound".
Number = Annotated[Decimal, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
# A section given as null (`volume:`) keeps its defaults.
NullIsEmpty = BeforeValidator(lambda value: {} if value is None else value)


class QualityConfigError(ValueError):
    """The quality configuration file is unreadable or has unknown keys or bad values."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterBounds(_Section):
    """Per-meter overrides: the accepted `value` range and the volume band. A key the file gives
    replaces the default, null included (null removes the bound); an absent key keeps it."""

    min_value: Number | None = None
    max_value: Number | None = None
    volume_min_ratio: Number | None = None
    volume_max_ratio: Number | None = None

    def has(self, name: str) -> bool:
        return name in self.model_fields_set


class VolumeBand(_Section):
    """A meter's event rate in the closing periods against the same subscriptions' recent periods.

    rate = events per subscription-day; ratio = closing rate / rate over each subscription's last
    `history_periods` periods. The check fails when ratio < min_ratio or ratio > max_ratio (either
    may be null: no bound), and is skipped while the history holds fewer than
    `min_baseline_events` events of the meter.
    """

    history_periods: Annotated[int, Field(strict=True, ge=1)] = 3
    min_ratio: Number | None = Decimal("0.1")
    max_ratio: Number | None = Decimal("10")
    min_baseline_events: Count = 100


class ClosingEventsConfig(_Section):
    # Rejected share of the deduped events that occurred in the closing window; judged only once
    # the window holds at least `reject_rate_min_events` events (small samples are noise).
    max_reject_rate: Number = Decimal("0.05")
    reject_rate_min_events: Count = 1000
    # An event may be this far past `now()` (clock skew) before it counts as in the future.
    future_tolerance: Annotated[str, AfterValidator(parse_duration)] = "5 minutes"
    # Default value bounds for every meter not listed in `meters` (weighted_sum has no minimum:
    # its values are deltas). Per-meter `min_value`/`max_value` replace these.
    min_value: Number | None = Decimal("0")
    max_value: Number | None = None
    volume: Annotated[VolumeBand, NullIsEmpty] = VolumeBand()
    meters: Annotated[dict[str, Annotated[MeterBounds, NullIsEmpty]], NullIsEmpty] = {}

    def bounds_of(self, event_name: str) -> MeterBounds:
        return self.meters.get(event_name, MeterBounds())


class QualityConfig(_Section):
    closing_events: Annotated[ClosingEventsConfig, NullIsEmpty] = ClosingEventsConfig()
    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """The file read, if any."""
        return self._path


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or billing_home() / "quality.yml")


def load_quality_config(path: Path | None = None) -> QualityConfig:
    """The configuration in force: the file's values over the defaults (no file: all defaults)."""
    path = path or config_path()
    if not path.exists():
        if os.environ.get(CONFIG_ENV):
            raise QualityConfigError(f"{CONFIG_ENV} points at {path}, which does not exist")
        return QualityConfig()
    try:
        config = documents.validated(QualityConfig, documents.read(path))
    except documents.InvalidDocument as error:
        raise QualityConfigError(f"{path}: " + "; ".join(error.problems)) from None
    config._path = path
    return config
