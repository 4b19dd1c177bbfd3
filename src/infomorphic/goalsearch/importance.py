"""Parameter importance of a finished goal search: optuna's fANOVA and mean decrease in impurity.

Both fit a random forest to (gamma vector -> validation accuracy) over the completed trials
(Hutter et al. 2014 for fANOVA); importances of all parameters sum to 1.  Schneider et al. 2025
(arXiv:2412.02482), appendix A.10 and Fig. 6, report the mean decrease in impurity of their
1000-trial searches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runs import write_json

__all__ = ["EVALUATORS", "param_importances", "write_importances"]

EVALUATORS = ("fanova", "mdi")


def param_importances(
    study: Any, evaluator: str = "fanova", seed: int = 0, n_trees: int = 64
) -> dict[str, float]:
    """Importance of each searched gamma (sums to 1), most important first.

    Raises
    ------
    ValueError
        For an unknown evaluator or a study with fewer than two completed trials.
    """
    import optuna
    from optuna.trial import TrialState

    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        raise ValueError(f"parameter importance needs at least 2 completed trials, the study has {len(done)}")
    cls = {
        "fanova": optuna.importance.FanovaImportanceEvaluator,
        "mdi": optuna.importance.MeanDecreaseImpurityImportanceEvaluator,
    }[evaluator]
    values = optuna.importance.get_param_importances(study, evaluator=cls(seed=seed, n_trees=n_trees))
    return {k: float(v) for k, v in sorted(values.items(), key=lambda kv: -kv[1])}


def write_importances(study: Any, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Both evaluators into ``importance.json`` and ``importance.png``; returns the record."""
    from optuna.trial import TrialState

    from .plots import importance_figure, save

    record: dict[str, Any] = {
        "study": study.study_name,
        "completed_trials": len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
        "seed": seed,
        **{name: param_importances(study, name, seed) for name in EVALUATORS},
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "importance.json", record)
    save(importance_figure(record), out_dir / "importance.png")
    return record
