"""Distilling recorded LLM decisions into fast surrogate humans (``python run.py distill``).

Every decision of an LLM driver or pedestrian is recorded with ``features``: a fixed-length
numeric view of the same structured situation its scene text was written from (below).
A ``Surrogate`` learns, per role and per categorical intent field, a decision tree from
those features plus the persona (one-hot) to the intent the model chose; ``distill``
fits one on recorded runs and reports how often it agrees with the LLM on held-out
decisions, next to always answering the most common choice.

Driver features: speed / 30 m/s, posted limit / 30 m/s, speed / limit, has a leader,
gap / 100 m, closing speed / 10 m/s, time to collision / 10 s, signal ahead (none, green,
amber, red), distance to the stopping point / 100 m, lane to the left, lane to the right,
then the trigger (one-hot of ``TRIGGERS``). Pedestrian features: time waited / 60 s,
crossing time gap / 10 s, walk signal (none, walk, flashing, don't walk), phase (approach,
wait, cross, depart), then the trigger. Operator features (used to reuse its decisions,
``agents.humans.situation_cache``; the surrogate has no operator model because an operator's
intent holds free text): vehicles / 100, mean speed / 30 m/s, share stopped, pedestrians
waiting / 20, longest wait / 120 s, variable limit on and its value / 30 m/s, closed lanes
/ 4, collisions, off-road and red-light events of the last minute / 5, then the trigger.
Values are clipped to [-1, 1].
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TRIGGERS = ("periodic", "new_leader", "signal_change", "near_miss", "advisory", "at_curb", "collision",
            "supervisor_alert")
DRIVER_FIELDS = ("lane", "speed", "following", "at_gap", "amber")
PEDESTRIAN_FIELDS = ("action", "pace", "attention")
FIELDS = {"driver": DRIVER_FIELDS, "pedestrian": PEDESTRIAN_FIELDS}


def _trigger(trigger: str) -> list[float]:
    return [float(trigger == t) for t in TRIGGERS]


def driver_features(state: Any, row: int, trigger: str) -> list[float]:
    """The driver's situation at ``row`` of ``state`` (see the module docstring)."""
    v, net = state.vehicles, state.network
    speed = float(v["v"][row])
    limit = float(state.speed_limit[row]) if len(state.speed_limit) > row else float(state.lane_speed_limit[v["lane"][row]])
    lead = int(state.leader[row])
    gap = float(state.leader_gap[row]) if lead >= 0 else 100.0
    closing = speed - float(v["v"][lead]) if lead >= 0 else 0.0
    ttc = gap / closing if closing > 0.1 else 10.0
    group = int(net.lane_signal_group[v["lane"][row]])
    signal = int(state.group_state[group]) if group >= 0 and len(state.group_state) else -1
    lane = int(v["lane"][row])
    out = [speed / 30.0, limit / 30.0, speed / max(limit, 0.1), float(lead >= 0), gap / 100.0, closing / 10.0,
           ttc / 10.0, *(float(signal == s) for s in (-1, 0, 1, 2)), float(state.stop_distance[row]) / 100.0,
           float(net.lane_left[lane] >= 0), float(net.lane_right[lane] >= 0), *_trigger(trigger)]
    return [round(float(np.clip(x, -1.0, 1.0)), 4) for x in out]


def pedestrian_features(state: Any, row: int, trigger: str) -> list[float]:
    """The pedestrian's situation at ``row`` of ``state`` (see the module docstring)."""
    p, net = state.pedestrians, state.network
    crossing = int(p["crossing"][row])
    cr = net.crossings[crossing]
    signal = int(state.crossing_signal[cr.signal]) if cr.signal >= 0 else -1
    gap = float(state.crossing_gap[crossing]) if crossing < len(state.crossing_gap) else np.inf
    phase = int(p["phase"][row])
    out = [float(p["waited"][row]) / 60.0, (gap if np.isfinite(gap) else 10.0) / 10.0,
           *(float(signal == s) for s in (-1, 0, 1, 2)), *(float(phase == k) for k in range(4)), *_trigger(trigger)]
    return [round(float(np.clip(x, -1.0, 1.0)), 4) for x in out]


def operator_features(state: Any, recent_events: dict[str, int], variable_limit_mps: float | None,
                      closed_lanes: int, trigger: str) -> list[float]:
    """The network's condition as the operator sees it (see the module docstring)."""
    v, p = state.vehicles, state.pedestrians
    n = len(v["id"])
    out = [n / 100.0, float(v["v"].mean()) / 30.0 if n else 0.0, float((v["v"] < 0.5).mean()) if n else 0.0,
           float((p["phase"] == 1).sum()) / 20.0 if len(p["id"]) else 0.0,
           float(p["waited"].max()) / 120.0 if len(p["id"]) else 0.0,
           float(variable_limit_mps is not None), (variable_limit_mps or 0.0) / 30.0, closed_lanes / 4.0,
           *(recent_events.get(kind, 0) / 5.0 for kind in ("collision", "off_road", "red_light")), *_trigger(trigger)]
    return [round(float(np.clip(x, -1.0, 1.0)), 4) for x in out]


@dataclass
class RoleModel:
    """Decision trees of one role: one per intent field, over features + persona one-hot."""

    personas: list[str]
    trees: dict[str, Any] = field(default_factory=dict)

    def inputs(self, personas: list[str], features: np.ndarray) -> np.ndarray:
        onehot = np.array([[float(p == q) for q in self.personas] for p in personas]).reshape(len(personas), -1)
        return np.hstack([np.asarray(features, float), onehot])


@dataclass
class Surrogate:
    """Per-role surrogate of LLM humans (fit with :meth:`fit`, used with :meth:`predict`)."""

    roles: dict[str, RoleModel] = field(default_factory=dict)
    max_depth: int = 8
    min_leaf: int = 5  # decisions per leaf at least: small recordings must not be memorised

    def fit(self, records: list[dict]) -> "Surrogate":
        from sklearn.tree import DecisionTreeClassifier

        for role, names in FIELDS.items():
            rows = [r for r in records if r["role"] == role]
            if not rows:
                continue
            model = RoleModel(personas=sorted({r["persona"] for r in rows}))
            x = model.inputs([r["persona"] for r in rows], np.array([r["features"] for r in rows]))
            for name in names:
                tree = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_leaf, random_state=0)
                model.trees[name] = tree.fit(x, [r["intent"][name] for r in rows])
            self.roles[role] = model
        return self

    def predict(self, role: str, persona: str, features: list[float]) -> dict[str, str]:
        """The intent fields the surrogate chooses for one situation."""
        model = self.roles[role]
        x = model.inputs([persona], np.array([features]))
        return {name: str(tree.predict(x)[0]) for name, tree in model.trees.items()}

    def agreement(self, records: list[dict]) -> dict[str, dict[str, float]]:
        """Per role: the share of ``records`` where the surrogate picks the LLM's value, per field
        and for all fields at once."""
        out: dict[str, dict[str, float]] = {}
        for role, model in self.roles.items():
            rows = [r for r in records if r["role"] == role]
            if not rows:
                continue
            x = model.inputs([r["persona"] for r in rows], np.array([r["features"] for r in rows]))
            hits = {name: tree.predict(x) == np.array([r["intent"][name] for r in rows])
                    for name, tree in model.trees.items()}
            out[role] = {name: round(float(h.mean()), 3) for name, h in hits.items()}
            out[role]["all_fields"] = round(float(np.logical_and.reduce(list(hits.values())).mean()), 3)
            out[role]["decisions"] = len(rows)
        return out

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps(self))

    @staticmethod
    def load(path: Path) -> "Surrogate":
        """A saved surrogate. Unpickling can run code, so only the project's, scikit-learn's and
        numpy's classes are allowed; files saved before the agents were grouped (``agents.surrogate``)
        still load."""
        import io

        try:
            loaded = _SurrogateUnpickler(io.BytesIO(Path(path).read_bytes())).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
            raise ValueError(f"{path}: not a surrogate file ({exc})") from None
        if not isinstance(loaded, Surrogate):
            raise ValueError(f"{path}: not a surrogate file (holds a {type(loaded).__name__})")
        return loaded


MOVED_MODULES = {"agents.surrogate": "agents.humans.surrogate"}  # where pickled classes live now
ALLOWED_MODULES = ("agents.", "sklearn.", "numpy", "scipy.", "collections", "builtins", "copyreg", "_codecs")
ALLOWED_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes", "bool", "complex",
                    "slice", "object"}


class _SurrogateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        module = MOVED_MODULES.get(module, module)
        if module == "builtins" and name not in ALLOWED_BUILTINS:
            raise pickle.UnpicklingError(f"builtins.{name} is not allowed in a surrogate file")
        if not (module + ".").startswith(ALLOWED_MODULES) and module not in ALLOWED_MODULES:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a surrogate file")
        return super().find_class(module, name)


def load_decisions(paths: list[Path]) -> list[dict]:
    """LLM decisions with features from run directories or ``decisions.jsonl`` files (fallbacks,
    operators and records without features are left out: they are not the model's choices)."""
    out = []
    for path in paths:
        path = Path(path)
        file = path / "decisions.jsonl" if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"{file}: no decisions.jsonl")
        for line in file.read_text().splitlines():
            r = json.loads(line)
            if r.get("features") is not None and r.get("fallback") is None and r.get("role") in FIELDS:
                out.append(r)
    return out


def majority_agreement(train: list[dict], test: list[dict]) -> dict[str, dict[str, float]]:
    """The baseline: always the most common training value of each field."""
    from collections import Counter

    out = {}
    for role, names in FIELDS.items():
        tr = [r for r in train if r["role"] == role]
        te = [r for r in test if r["role"] == role]
        if tr and te:
            out[role] = {n: round(float(np.mean([r["intent"][n] == Counter(x["intent"][n] for x in tr).most_common(1)[0][0]
                                                 for r in te])), 3) for n in names}
    return out


def distill(paths: list[Path], out: Path, holdout: float = 0.2, seed: int = 0) -> dict:
    """Fit a surrogate on recorded decisions, report held-out agreement, save it to ``out``."""
    records = load_decisions(paths)
    if len(records) < 10:
        raise ValueError(f"only {len(records)} usable LLM decisions with features in {list(map(str, paths))}: "
                         "record more (python run.py simulate ... with LLM humans)")
    order = np.random.default_rng(seed).permutation(len(records))
    cut = int(len(records) * (1.0 - holdout))
    train = [records[k] for k in order[:cut]]
    test = [records[k] for k in order[cut:]]
    surrogate = Surrogate().fit(train)
    report = {"decisions": len(records), "train": len(train), "held_out": len(test),
              "agreement": surrogate.agreement(test), "majority_baseline": majority_agreement(train, test)}
    Surrogate().fit(records).save(out)  # the saved one learns from everything
    report["saved"] = str(out)
    return report
