"""Carrying an app to AWS: the SAM template it maps to, and the plan of what it creates."""

from lakelet.functions.deploy.plan import PlanItem, plan
from lakelet.functions.deploy.sam import SamExport, export_sam, render

__all__ = ["PlanItem", "SamExport", "export_sam", "plan", "render"]
