"""The ``lakelet`` command line."""
