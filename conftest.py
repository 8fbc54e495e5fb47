"""The whole suite (tests/ and every plugin's tests): runs write no report.html unless a test asks for it
(`report=true`): the end-of-run report costs seconds per run, and only the report's own tests need one."""

import os

os.environ.setdefault("AUTOML_REPORT", "false")
