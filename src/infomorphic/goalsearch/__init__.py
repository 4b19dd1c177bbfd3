"""Goal functions: search (optuna), ablation, parameter importance and run reports.

Schneider et al. 2025 (seeds/003), sections 3-4 and appendix A.10.  optuna and matplotlib are
imported only inside the functions that need them.
"""

from .space import GoalSpace

__all__ = ["GoalSpace"]
