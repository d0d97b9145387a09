"""Lakelet: a serverless data lake that runs on one laptop and carries to the cloud."""

__version__ = "0.1.0"
