"""Medical domain for Vertical AutoML: diagnosis and prognosis networks with clinically meaningful, honest
evaluation (cross-validated trial scores on small data, an operating point chosen on validation rows,
test metrics with 95% bootstrap intervals, ROC and calibration pictures).

Installing the distribution `automl-medical` registers, through the entry point `automl` -> `medical`:
the domain `medical`, the datasets `breast_biopsy`, `breast_diagnostic`, `flchain_mortality` and
`parkinsons_speech`, the model families `snn` and `gated_mlp`, and the metric `ece`.
"""

__version__ = "0.1.0"
