"""Gate decisions: is an evaluation good enough to move ``champion``?

Two kinds of check, each recorded with the numbers it saw:

* ``baseline:<name>`` for every regression baseline scoped to the evaluation's eval set: the
  baseline's metric must not worsen by more than its ``max_drop``, and at most its
  ``max_right_to_wrong`` items that the baseline's evaluation got right may be lost;
* ``champion``: the same against the evaluation of the version that holds ``champion`` now,
  on ``primary_score`` with the ``GatePolicy`` thresholds. With no champion yet the check
  passes (the first version to pass its baselines becomes champion). A champion measured on
  another eval set cannot be compared item by item, so the check fails and says so.

An evaluation with nothing scored fails every check: there is no evidence it is not worse.

A decision's id is sha256 of everything it was decided on (evaluation, model name, champion
version, the baselines' values and thresholds, the policy): deciding the same question again
returns the stored row; when the champion or a baseline changes, it is a new question.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa

from tunix_rt_pipelines.core.db import gate_decisions
from tunix_rt_pipelines.evaluation.compare import compare_pair
from tunix_rt_pipelines.evaluation.store import item_outcomes
from tunix_rt_pipelines.registry.baselines import Baseline, baselines_for, load_evaluation, metric_value
from tunix_rt_pipelines.registry.names import validate_name
from tunix_rt_pipelines.registry.versions import CHAMPION, alias_holder, get_version
from tunix_rt_pipelines.traces.store import utcnow

_EPS = 1e-9  # scores are rounded to 6 places; a drop equal to the threshold passes


@dataclass(frozen=True)
class GatePolicy:
    max_drop_vs_champion: float = 0.02  # primary score may fall by at most this below the champion's
    max_right_to_wrong_vs_champion: int = 5  # items the champion got right that may be lost


@dataclass(frozen=True)
class GateCheck:
    name: str  # baseline:<name> or champion
    passed: bool
    metric: str
    value: float | None  # the evaluation's value
    reference: float | None  # the baseline's or champion's value
    drop: float | None  # how much worse (positive) or better (negative)
    right_to_wrong: int | None  # items lost against the reference
    wrong_to_right: int | None  # items gained
    reason: str


@dataclass(frozen=True)
class GateDecision:
    id: str
    model_name: str
    evaluation_id: str
    champion_version_id: str | None
    passed: bool
    checks: tuple[GateCheck, ...]
    created_at: datetime

    def checks_named(self, prefix: str) -> list[GateCheck]:
        return [c for c in self.checks if c.name.startswith(prefix)]

    def as_dict(self) -> dict:
        return {"id": self.id, "model_name": self.model_name, "evaluation_id": self.evaluation_id,
                "champion_version_id": self.champion_version_id, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks], "created_at": self.created_at.isoformat(timespec="seconds")}


def _compare(engine: sa.Engine, name: str, metric: str, evaluation: dict, reference_eval_id: str,
             reference_value: float, *, lower_is_better: bool, max_drop: float, max_r2w: int) -> GateCheck:
    value = metric_value(evaluation, metric)
    if value is None:
        return GateCheck(name, False, metric, None, reference_value, None, None, None,
                         f"the evaluation has no {metric} (nothing scored)")
    drop = round((value - reference_value) if lower_is_better else (reference_value - value), 6)
    pair = compare_pair(item_outcomes(engine, reference_eval_id), item_outcomes(engine, evaluation["id"]))
    r2w, w2r = len(pair["right_to_wrong"]), len(pair["wrong_to_right"])
    problems = []
    if drop > max_drop + _EPS:
        problems.append(f"{metric} {value:.4f} is {drop:.4f} worse than {reference_value:.4f} (allowed {max_drop})")
    if r2w > max_r2w:
        problems.append(f"{r2w} items flipped right→wrong (allowed {max_r2w})")
    reason = "; ".join(problems) or (f"{metric} {value:.4f} vs {reference_value:.4f}, "
                                     f"{r2w} right→wrong, {w2r} wrong→right")
    return GateCheck(name, not problems, metric, value, reference_value, drop, r2w, w2r, reason)


def _baseline_check(engine: sa.Engine, evaluation: dict, b: Baseline) -> GateCheck:
    return _compare(engine, f"baseline:{b.name}", b.metric, evaluation, b.evaluation_id, b.value,
                    lower_is_better=b.lower_is_better, max_drop=b.max_drop, max_r2w=b.max_right_to_wrong)


def champion_reference(engine: sa.Engine, champion, evaluation: dict) -> dict | None:  # noqa: ANN001
    """The champion's evaluation to compare ``evaluation`` with: its registered one when that is on the
    same eval set with the same judge, else the newest such evaluation of the champion's checkpoint."""
    from tunix_rt_pipelines.core.db import evaluations

    same_question = (evaluations.c.evalset_sha256 == evaluation["evalset_sha256"]) & \
        (evaluations.c.judge == evaluation["judge"])
    with engine.connect() as conn:
        row = None
        if champion.evaluation_id:
            row = conn.execute(sa.select(evaluations).where(evaluations.c.id == champion.evaluation_id, same_question)
                               ).mappings().first()
        if row is None:
            row = conn.execute(sa.select(evaluations).where(evaluations.c.model_digest == champion.checkpoint_digest,
                                                            same_question)
                               .order_by(evaluations.c.created_at.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def _champion_check(engine: sa.Engine, evaluation: dict, champion_id: str | None, policy: GatePolicy) -> GateCheck:
    metric = "primary_score"
    if champion_id is None:
        ok = metric_value(evaluation, metric) is not None
        return GateCheck("champion", ok, metric, metric_value(evaluation, metric), None, None, None, None,
                         "no champion yet" if ok else "the evaluation has no primary_score (nothing scored)")
    champion = get_version(engine, champion_id)
    reference = champion_reference(engine, champion, evaluation)
    if reference is None:
        return GateCheck("champion", False, metric, metric_value(evaluation, metric), None, None, None, None,
                         f"champion {champion.label} has no {evaluation['judge']} evaluation on eval set "
                         f"{evaluation['evalset_sha256'][:12]}: evaluate the champion on it first "
                         f"(the champion_evaluation asset does when an eval set changes)")
    return _compare(engine, "champion", metric, evaluation, reference["id"], metric_value(reference, metric) or 0.0,
                    lower_is_better=False, max_drop=policy.max_drop_vs_champion,
                    max_r2w=policy.max_right_to_wrong_vs_champion)


def decide_gate(engine: sa.Engine, evaluation_id: str, model_name: str,
                policy: GatePolicy = GatePolicy()) -> GateDecision:
    """Check ``evaluation_id`` for ``model_name`` against its baselines and champion; stored, idempotent."""
    validate_name(model_name)
    with engine.connect() as conn:
        evaluation = load_evaluation(conn, evaluation_id)
        baselines = baselines_for(conn, evaluation["evalset_sha256"])
    champion_id = alias_holder(engine, model_name, CHAMPION)
    checks = [_baseline_check(engine, evaluation, b) for b in baselines]
    checks.append(_champion_check(engine, evaluation, champion_id, policy))
    question = {"evaluation_id": evaluation_id, "model_name": model_name, "champion_version_id": champion_id,
                "baselines": [asdict(b) for b in baselines], "policy": asdict(policy)}
    gate_id = hashlib.sha256(json.dumps(question, sort_keys=True).encode()).hexdigest()
    passed = all(c.passed for c in checks)
    with engine.begin() as conn:
        created_q = sa.select(gate_decisions.c.created_at).where(gate_decisions.c.id == gate_id)
        if conn.execute(created_q).first() is None:
            conn.execute(gate_decisions.insert().values(
                id=gate_id, model_name=model_name, evaluation_id=evaluation_id, champion_version_id=champion_id,
                passed=passed, checks=[asdict(c) for c in checks], created_at=utcnow()))
        created = conn.execute(created_q).scalar()  # as the database gives it back, every time
    return GateDecision(gate_id, model_name, evaluation_id, champion_id, passed, tuple(checks), created)


def passing_gate(conn: sa.Connection, model_name: str, evaluation_id: str, champion_version_id: str | None) -> str | None:
    """Id of a passing decision for this evaluation against this champion (None: nobody), or None."""
    q = sa.select(gate_decisions.c.id).where(
        gate_decisions.c.model_name == model_name, gate_decisions.c.evaluation_id == evaluation_id,
        gate_decisions.c.passed.is_(True),
        gate_decisions.c.champion_version_id.is_(None) if champion_version_id is None
        else gate_decisions.c.champion_version_id == champion_version_id,
    ).order_by(gate_decisions.c.created_at.desc()).limit(1)
    return conn.execute(q).scalar()


def gate_record(engine: sa.Engine, gate_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(gate_decisions).where(gate_decisions.c.id == gate_id)).mappings().first()
    return dict(row) if row else None
