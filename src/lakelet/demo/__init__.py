"""The reference scenario: vending-machine sales through lake, catalog, jobs and warehouse."""

from lakelet.demo.generate import Dataset, GeneratedFile, Malformation, generate
from lakelet.demo.scenario import DemoOptions, DemoResult, run_demo, run_scenario

__all__ = [
    "Dataset",
    "DemoOptions",
    "DemoResult",
    "GeneratedFile",
    "Malformation",
    "generate",
    "run_demo",
    "run_scenario",
]
