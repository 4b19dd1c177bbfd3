"""Goal functions: search (optuna), ablation, parameter importance and run reports.

Schneider et al. 2025 (arXiv:2412.02482), section 3 and appendices A.5, A.9 and A.10.  optuna and
matplotlib are imported only inside the functions that need them.
"""

from .space import GoalSpace

__all__ = ["GoalSpace"]
