"""`domain.options` of the medical domain, typed (set them as `domain.options.<key>=...`)."""

from __future__ import annotations

from dataclasses import dataclass

from automl.api import CALIBRATION_METHODS, ConfigError

#: How the decision threshold is chosen on the validation predictions.
RULES = {
    "min_sensitivity": "highest specificity with the lower 95% bound of sensitivity >= target (a rule-out test: "
                       "miss few cases)",
    "min_specificity": "highest sensitivity with the lower 95% bound of specificity >= target (a rule-in test: "
                       "few false alarms)",
    "youden": "highest sensitivity + specificity - 1",
    "fixed": "the probability threshold given in domain.options.threshold",
}


@dataclass
class MedicalOptions:
    #: Operating point rule, one of `RULES`.
    operating_point: str = "min_sensitivity"
    #: The sensitivity (or specificity) the operating point must reach on the validation rows, by the lower
    #: bound of its 95% interval. A constraint of the search (search.constraints=[sensitivity>=0.95]) sets it.
    target: float = 0.90
    #: The threshold for `operating_point=fixed`.
    threshold: float = 0.5
    #: Probability calibration fitted on the validation rows before the threshold is chosen. Platt by default:
    #: early stopping on ROC AUC can keep an epoch whose ranking is perfect but whose probabilities are not.
    calibration: str = "platt"
    #: Bootstrap replicates of each 95% confidence interval (stratified, seeded).
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    #: Bins of the expected calibration error and of the calibration curve (equal width).
    ece_bins: int = 10
    #: Draw roc_curve.png and calibration_curve.png into the run directory.
    plots: bool = True

    def __post_init__(self) -> None:
        if self.operating_point not in RULES:
            raise ConfigError(f"domain.options.operating_point={self.operating_point!r} is not valid: use one of "
                              f"{', '.join(RULES)}")
        if not 0.0 < self.target <= 1.0:
            raise ConfigError(f"domain.options.target={self.target} must be a fraction in (0, 1], e.g. 0.90")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"domain.options.threshold={self.threshold} must be a probability in [0, 1]")
        if self.calibration not in CALIBRATION_METHODS:
            raise ConfigError(f"domain.options.calibration={self.calibration!r} is not valid: use one of "
                              f"{', '.join(CALIBRATION_METHODS)}")
        if self.bootstrap < 100:
            raise ConfigError(f"domain.options.bootstrap={self.bootstrap} is too few replicates for a 95% "
                              "interval: use at least 100 (default 1000)")
        if self.ece_bins < 2:
            raise ConfigError(f"domain.options.ece_bins={self.ece_bins} must be at least 2")
