"""Gate thresholds: configuration, not code (`BILLING_HOME/quality.yml`, or `BILLING_QUALITY_CONFIG`).

Every key is optional; what the file leaves out keeps the default below. Unknown keys are refused,
so a typo cannot silently switch a check back to its default. The file is read each time a gate
runs: edit it, then clear the failed task (or re-run the close) to apply it. The format is
documented in `data_contracts/README.md` ("Quality gate configuration").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import yaml

from billing.settings import billing_home
from billing.window import parse_duration

CONFIG_ENV = "BILLING_QUALITY_CONFIG"


class QualityConfigError(ValueError):
    """The quality configuration file is unreadable or has unknown keys or bad values."""


@dataclass(frozen=True)
class MeterBounds:
    """Per-meter overrides: the accepted `value` range and the volume band."""

    min_value: Decimal | None = None
    max_value: Decimal | None = None
    volume_min_ratio: Decimal | None = None
    volume_max_ratio: Decimal | None = None
    # the keys the file gave (a given null removes the default bound; an absent key keeps it)
    given: frozenset[str] = frozenset()

    def has(self, name: str) -> bool:
        return name in self.given


@dataclass(frozen=True)
class VolumeBand:
    """A meter's event rate in the closing periods against the same subscriptions' recent periods.

    rate = events per subscription-day; ratio = closing rate / rate over each subscription's last
    `history_periods` periods. The check fails when ratio < min_ratio or ratio > max_ratio (either
    may be null: no bound), and is skipped while the history holds fewer than
    `min_baseline_events` events of the meter.
    """

    history_periods: int = 3
    min_ratio: Decimal | None = Decimal("0.1")
    max_ratio: Decimal | None = Decimal("10")
    min_baseline_events: int = 100


@dataclass(frozen=True)
class ClosingEventsConfig:
    # Rejected share of the deduped events that occurred in the closing window; judged only once
    # the window holds at least `reject_rate_min_events` events (small samples are noise).
    max_reject_rate: Decimal = Decimal("0.05")
    reject_rate_min_events: int = 1000
    # An event may be this far past `now()` (clock skew) before it counts as in the future.
    future_tolerance: str = "5 minutes"
    # Default value bounds for every meter not listed in `meters` (weighted_sum has no minimum:
    # its values are deltas). Per-meter `min_value`/`max_value` replace these.
    min_value: Decimal | None = Decimal("0")
    max_value: Decimal | None = None
    volume: VolumeBand = field(default_factory=VolumeBand)
    meters: Mapping[str, MeterBounds] = field(default_factory=dict)

    def bounds_of(self, event_name: str) -> MeterBounds:
        return self.meters.get(event_name, MeterBounds())


@dataclass(frozen=True)
class QualityConfig:
    closing_events: ClosingEventsConfig = field(default_factory=ClosingEventsConfig)
    path: Path | None = None  # the file read, if any


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
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise QualityConfigError(f"{path}: cannot read as YAML: {error}") from None
    try:
        return QualityConfig(closing_events=_closing_events(_mapping(document, "", {"closing_events"})
                                                            .get("closing_events") or {}), path=path)
    except QualityConfigError as error:
        raise QualityConfigError(f"{path}: {error}") from None


def _closing_events(document: Any) -> ClosingEventsConfig:
    keys = {item.name for item in fields(ClosingEventsConfig)}
    values = dict(_mapping(document, "closing_events", keys))
    for name in ("max_reject_rate", "min_value", "max_value"):
        if name in values:
            values[name] = _number(values[name], f"closing_events.{name}", nullable=name != "max_reject_rate")
    if "reject_rate_min_events" in values:
        values["reject_rate_min_events"] = _integer(values["reject_rate_min_events"], "closing_events.reject_rate_min_events")
    if "future_tolerance" in values:
        try:
            values["future_tolerance"] = parse_duration(str(values["future_tolerance"]))
        except ValueError as error:
            raise QualityConfigError(f"closing_events.future_tolerance: {error}") from None
    if "volume" in values:
        values["volume"] = _volume(values["volume"] or {})
    if "meters" in values:
        values["meters"] = {
            str(name): _meter(bounds or {}, f"closing_events.meters.{name}")
            for name, bounds in _mapping(values["meters"] or {}, "closing_events.meters", None).items()
        }
    return ClosingEventsConfig(**values)


def _volume(document: Any) -> VolumeBand:
    keys = {item.name for item in fields(VolumeBand)}
    values = dict(_mapping(document, "closing_events.volume", keys))
    for name in ("history_periods", "min_baseline_events"):
        if name in values:
            values[name] = _integer(values[name], f"closing_events.volume.{name}")
    for name in ("min_ratio", "max_ratio"):
        if name in values:
            values[name] = _number(values[name], f"closing_events.volume.{name}", nullable=True)
    if values.get("history_periods", 1) < 1:
        raise QualityConfigError("closing_events.volume.history_periods: must be at least 1")
    return VolumeBand(**values)


def _meter(document: Any, where: str) -> MeterBounds:
    keys = {item.name for item in fields(MeterBounds)} - {"given"}
    values = _mapping(document, where, keys)
    return MeterBounds(
        **{name: _number(value, f"{where}.{name}", nullable=True) for name, value in values.items()},
        given=frozenset(values),
    )


def _mapping(document: Any, where: str, keys: set[str] | None) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise QualityConfigError(f"{where or 'the file'}: expected a mapping")
    if keys is not None:
        unknown = sorted(set(document) - keys)
        if unknown:
            raise QualityConfigError(
                f"{where or 'the file'}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(keys))})"
            )
    return document


def _number(value: Any, where: str, *, nullable: bool) -> Decimal | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise QualityConfigError(f"{where}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise QualityConfigError(f"{where}: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise QualityConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QualityConfigError(f"{where}: expected a whole number >= 0, got {value!r}")
    return value
