"""pytest plugin shipped with automl (fixtures for plugin authors); filled in by automl.testing.contract."""
