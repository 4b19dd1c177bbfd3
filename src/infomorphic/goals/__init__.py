"""Local goals of infomorphic neurons: weighted sums of PID atoms, in bits.

Each neuron maximises its own goal

    G = sum_alpha gamma_alpha * Pi_alpha + gamma_res * H_res

over the partial information decomposition (I^sx) of its output Y with its input classes as
sources, where ``H_res = H(Y | sources)``.  A goal is always *maximised*; only the training loop
turns it into a loss (``loss = -G``).

References: Makkeh et al., "A general framework for interpretable neural learning based on local
information-theoretic goal functions", PNAS 2025, arXiv:2306.02149 (bivariate neurons), and
Schneider et al., "What should a neuron aim for? Designing local objective functions based on
information theory", ICLR 2025, arXiv:2412.02482 (trivariate neurons, optimised goals).

Goals are keyed by atom *name* (``"{F}{C}"``, ``"{FC}{FL}"``, ...; see
:mod:`infomorphic.pid.lattice`) plus the reserved name ``H_res``.  Ways to build one:

- ``Goal(("F", "C", "L"), {"{F}{C}": 1.0})`` or :meth:`Goal.from_dict` (configs);
- :meth:`Goal.parse` of a readable expression, ``"0.33*{F}{C}{L} + {F}{C} - {F}{L}"``;
- :meth:`Goal.from_vector` of a raw vector in the papers' order;
- :meth:`Goal.preset` / :data:`PRESETS` for the published goals;
- :meth:`Goal.resolve`, which accepts any of the three textual forms.

Four-source neurons (e.g. F, C, L and feedback B) weigh the 166 atoms of the four-source
lattice: ``Goal.parse("{F}{C}{L}{B} + {F}{B} - {FB}", "FCLB")``, a vector of 166 (167 with
``H_res``) values in the lattice's canonical order, or a published trivariate goal embedded
with every atom involving B at 0: ``Goal.resolve("trivariate-mnist-tpe", "FCLB")``, the same
as ``Goal.preset("trivariate-mnist-tpe").embed("FCLB")`` (see :meth:`Goal.embed`).  With a
silent B (zero weights and bias) such a neuron learns exactly as the trivariate one.
"""

from .atoms import H_RES, paper_order
from .goal import Goal
from .meanings import ATOM_MEANINGS, atom_meaning
from .presets import PRESETS, Preset

__all__ = [
    "Goal",
    "Preset",
    "PRESETS",
    "ATOM_MEANINGS",
    "H_RES",
    "atom_meaning",
    "paper_order",
]
