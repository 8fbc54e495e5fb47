"""`domain.options` of the finance_risk domain, typed and checked before any data is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from automl.api import CALIBRATION_METHODS, ConfigError

#: Used when neither target is given. An approval rate is attainable on every book, whereas the right bad-rate
#: cap depends on the book's base rate (3% to 28% on the shipped datasets) and may be out of reach.
DEFAULT_APPROVAL_RATE = 0.8


@dataclass
class FinanceRiskOptions:
    #: Calibration of P(bad) fitted on the validation rows: none | platt | isotonic.
    calibration: str = "platt"
    #: Decision target, one of the two: approve this share of applicants (the lowest-risk ones) ...
    target_approval_rate: Optional[float] = None
    #: ... or approve as many as possible while the bad rate among the approved stays at most this.
    max_bad_rate: Optional[float] = None
    #: Fairness differences compare groups with at least this many test rows (smaller ones are listed only).
    min_group_size: int = 30

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise ConfigError(f"domain.options.calibration={self.calibration!r} is not valid: use one of "
                              f"{', '.join(CALIBRATION_METHODS)}")
        if self.target_approval_rate is not None and self.max_bad_rate is not None:
            raise ConfigError("domain.options.target_approval_rate and domain.options.max_bad_rate are both set: "
                              "the threshold is chosen for one target, set the other to null")
        for key in ("target_approval_rate", "max_bad_rate"):
            value = getattr(self, key)
            if value is not None and not 0.0 < value < 1.0:
                raise ConfigError(f"domain.options.{key}={value} must be a fraction strictly between 0 and 1")
        if self.min_group_size < 1:
            raise ConfigError(f"domain.options.min_group_size={self.min_group_size} must be at least 1")

    @property
    def approval_rate(self) -> Optional[float]:
        """The approval-rate target in force (the default when no target is given), or None for a bad-rate cap."""
        if self.max_bad_rate is not None:
            return None
        return self.target_approval_rate if self.target_approval_rate is not None else DEFAULT_APPROVAL_RATE
