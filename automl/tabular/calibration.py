"""Probability calibration for binary classifiers, fitted on validation rows, stored as plain JSON.

`platt` fits a logistic regression on the logit of the scores (scikit-learn); `isotonic` an isotonic
regression (scikit-learn), kept as its breakpoints and applied by linear interpolation. Both are saved in
`predictor.json`, so a loaded predictor returns the same calibrated probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The calibration methods every domain offers (`domain.options.calibration`).
CALIBRATION_METHODS = ("none", "platt", "isotonic")
_EPS = 1e-6


def _logit(p: "np.ndarray") -> "np.ndarray":
    import numpy as np

    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_calibration(y: "np.ndarray", p: "np.ndarray", method: str) -> dict[str, Any] | None:
    """Fit on (labels, scores); returns the JSON-able calibration or None for `none`."""
    import numpy as np

    if method == "none":
        return None
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6).fit(_logit(p).reshape(-1, 1), y)
        return {"method": "platt", "coef": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return {"method": "isotonic", "x": np.asarray(iso.X_thresholds_).tolist(),
                "y": np.asarray(iso.y_thresholds_).tolist()}
    raise ValueError(f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")


def apply_calibration(p: "np.ndarray", calibration: dict[str, Any] | None) -> "np.ndarray":
    import numpy as np

    if not calibration:
        return p
    if calibration["method"] == "platt":
        z = calibration["coef"] * _logit(p) + calibration["intercept"]
        return 1.0 / (1.0 + np.exp(-z))
    return np.interp(p, calibration["x"], calibration["y"])
