"""Credit-risk domain plugin for Vertical AutoML (distribution `automl-finance-risk`).

Install it next to `vertical-automl` (`pip install plugins/finance_risk`) and run
`automl domain=finance_risk dataset=credit_data`. The hooks live in `automl_finance_risk.plugin`.
"""

__version__ = "0.1.0"
