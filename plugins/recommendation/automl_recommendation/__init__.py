"""Recommendation domain for Vertical AutoML: top-K recommenders searched on interaction logs."""

__version__ = "0.1.0"
