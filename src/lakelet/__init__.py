"""Lakelet: a serverless data lake that runs on one laptop and carries to the cloud."""

from lakelet.functions.model import App

__version__ = "0.1.0"

__all__ = ["App", "__version__"]
