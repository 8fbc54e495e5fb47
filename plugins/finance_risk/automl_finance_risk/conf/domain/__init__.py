# Hydra config folder of the finance_risk plugin, reached as pkg://automl_finance_risk.conf
