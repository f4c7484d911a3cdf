"""Compiler: resolve a spec tree through catalogues and flatten it into a Plan."""

from mlops_nocode.compiler.compile import compile_plan
from mlops_nocode.compiler.plan import Binding, Plan, PlanStep

__all__ = ["Binding", "Plan", "PlanStep", "compile_plan"]
