"""The rule-based triage: flagged events in words, with their measures, a severity, the
mitigation they call for and whether to alert the operator. It is the triage when no model
is configured and the fallback of every failed model answer (``agents.supervisor.triage``).

Events arrive as dictionaries (``HazardEvent.to_dict()``), possibly from outside: every
field is normalised to a usable type and free text is cleaned before it is read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.humans.scene import KMH
from agents.supervisor.config import SEVERITIES, Severity
from agents.supervisor.kinds import KINDS, MITIGATION_PRIORITY, ROADSIDE_SENSOR, KindRule, Mitigation

COLLISION_KINDS = frozenset({"collision"})  # always "high": no answer may rate them lower
EXPLANATION_CHARS = 600  # longest explanation kept
MAX_EVENTS_EXPLAINED = 4  # the template names at most this many events, the most severe first
TEXT_CHARS = 40  # longest free text (kind, persona, signal interval) taken from an event or context
INTENT_CHARS = 80  # longest actor intent quoted in the request


class TriageAnswer(BaseModel):
    """What the model is asked for: every field required, so a JSON-schema grammar makes it
    fill each one; ``explanation`` is its own words, data to show, never instructions."""

    model_config = ConfigDict(extra="forbid")

    explanation: str = Field(description="at most three short sentences: what happened and why it matters",
                             max_length=EXPLANATION_CHARS)
    severity: Severity = Field(description="overall severity")
    mitigation: Mitigation = Field(description="one mitigation")
    alert_operator: bool = Field(description="whether a human operator must look now")

    @field_validator("explanation", mode="before")
    @classmethod
    def _short_explanation(cls, value: object) -> str:
        return str(value if value is not None else "").strip()[:EXPLANATION_CHARS]


class Triage(TriageAnswer):
    """The supervisor's triage of a group of events, and how it came about."""

    source: Literal["llm", "template"]
    fallback: str | None = None  # why the template was used (one of FALLBACK_KINDS); None for a model's answer
    detail: str = ""  # what was wrong with the answer, or what was overridden in it, for the trace


# ---- the rule-based triage ---------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One flagged event, normalised: every field of a usable type, free text cleaned."""

    kind: str
    actors: tuple[int | str, ...]
    start_s: float | None
    end_s: float | None
    worst: float | None
    severity: Severity
    category: str
    x_m: float | None
    y_m: float | None
    score: float | None
    extra: dict

    @property
    def rule(self) -> KindRule | None:
        if self.kind == "sensor" and not self.actors:
            return ROADSIDE_SENSOR
        rule = KINDS.get(self.kind)
        return rule if rule is not None and rule.text is not None else None


def clean_text(text: object, limit: int = TEXT_CHARS) -> str:
    """Free text from an event or context: one line, no angle brackets, short."""
    return " ".join(str(text).replace("<", "(").replace(">", ")").split())[:limit]


def as_number(value: object) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _actor_id(value: object) -> int | str:
    number = as_number(value)
    if number is not None and number == int(number):
        return int(number)
    return clean_text(value, 12)


def normalise(event: object) -> Event:
    """``event`` (a dict as flagged) as an :class:`Event`; never raises."""
    if not isinstance(event, dict) and callable(getattr(event, "to_dict", None)):
        try:
            event = event.to_dict()  # e.g. a HazardEvent
        except Exception:  # noqa: BLE001 - an unreadable event is still an event
            event = {"kind": type(event).__name__}
    e = event if isinstance(event, dict) else {"kind": event}
    kind = clean_text(e.get("kind", "unknown") or "unknown").lower()
    actors = e.get("actors") or ()
    if isinstance(actors, (str, int, float)):
        actors = (actors,)
    try:
        ids = tuple(_actor_id(a) for a in list(actors)[:6])
    except TypeError:
        ids = ()
    severity = str(e.get("severity", "")).strip().lower()
    if severity not in SEVERITIES:
        severity = "medium"  # unknown: neither ignored nor alarmed
    if kind in COLLISION_KINDS:
        severity = "high"
    return Event(kind=kind, actors=ids, start_s=as_number(e.get("start_s")), end_s=as_number(e.get("end_s")),
                 worst=as_number(e.get("worst")), severity=severity,  # type: ignore[arg-type]
                 category=clean_text(e.get("category", "") or ""), x_m=as_number(e.get("x_m")), y_m=as_number(e.get("y_m")),
                 score=as_number(e.get("score")), extra=e)


def ranked_events(events: Sequence[object]) -> list[Event]:
    """Events normalised, the most severe first, then in order of time."""
    normal = [normalise(e) for e in events]
    return sorted(normal, key=lambda e: (-SEVERITIES.index(e.severity), e.start_s if e.start_s is not None else 0.0))


def actor_facts(context: dict | None) -> dict[int | str, dict]:
    """Per actor id, what the context says about it."""
    actors = (context or {}).get("actors") if isinstance(context, dict) else None
    out: dict[int | str, dict] = {}
    if isinstance(actors, dict):
        for key, facts in actors.items():
            if isinstance(facts, dict):
                out[_actor_id(key)] = facts
    elif isinstance(actors, list):
        for facts in actors:
            if isinstance(facts, dict) and "id" in facts:
                out[_actor_id(facts["id"])] = facts
    return out


def actor_name(actor: int | str, role: str, facts: dict[int | str, dict]) -> str:
    kind = facts.get(actor, {}).get("kind")
    return f"{clean_text(kind, 20) if kind else role} {actor}"


def _value(e: Event, rule: KindRule) -> str:
    """The measure with its unit, e.g. 'time to collision 0.8 s'."""
    if e.worst is None or not rule.measure:
        return ""
    if rule.unit == "m/s":
        return f"{rule.measure} {e.worst:.1f} m/s, {e.worst * KMH:.0f} km/h"
    digits = 0 if abs(e.worst) >= 100 else 2 if abs(e.worst) < 0.1 else 1
    return f"{rule.measure} {e.worst:.{digits}f} {rule.unit}".rstrip()


def _when(e: Event) -> str:
    if e.start_s is None:
        return ""
    if e.end_s is None or abs(e.end_s - e.start_s) < 0.05:
        return f" at {e.start_s:.1f} s"
    return f" at {e.start_s:.1f}-{e.end_s:.1f} s"


def event_sentence(event: object, context: dict | None = None) -> str:
    """One event in words, e.g. 'car 3 closed on car 7: time to collision 0.8 s (high) at 12.4-13.1 s.'"""
    e = event if isinstance(event, Event) else normalise(event)
    facts = actor_facts(context)
    rule = e.rule
    if rule is None:
        who = " and ".join(actor_name(a, "actor", facts) for a in e.actors) or "an actor"
        value = f", worst value {e.worst:.2f}" if e.worst is not None else ""
        text = f"{who} flagged for an event of unrecognised kind '{e.kind}'{value}"
    else:
        names = [actor_name(a, rule.roles[k] if k < len(rule.roles) else "actor", facts)
                 for k, a in enumerate(e.actors)]
        for k in range(len(names), 2):
            role = rule.roles[k] if k < len(rule.roles) else "road user"
            names.append(f"an unidentified {role}")
        interval = (context or {}).get("signal_interval") if isinstance(context, dict) else None
        text = rule.text.format(a=names[0], b=names[1], interval=f" in '{clean_text(interval)}'" if interval else "")
        value = _value(e, rule)
        if value:
            text += f": {value}"
    text += f" ({e.severity})"
    if e.score is not None:
        text += f", anomaly score {e.score:.2f}"
    if not e.actors:  # "The signal controller ...", but "car 3 ..." as named
        text = text[0].upper() + text[1:]
    return text + _when(e) + "."


def actor_fact(actor: int | str, facts: dict, with_intent: bool = False) -> str:
    """'car 3 at 43 km/h (aggressive_young)'."""
    f = facts.get(actor, {})
    text = actor_name(actor, "actor", facts)
    speed = as_number(f.get("speed_mps"))
    if speed is not None:
        text += f" at {speed * KMH:.0f} km/h"
    if f.get("persona"):
        text += f" ({clean_text(f['persona'])})"
    if with_intent and f.get("intent"):
        text += f", intent: {clean_text(f['intent'], INTENT_CHARS)}"
    return text


def mitigation_for(event: object) -> Mitigation:
    """The mitigation the rules suggest against one event."""
    e = event if isinstance(event, Event) else normalise(event)
    rule = e.rule
    if rule is None:
        return "none"
    if e.severity == "high" and rule.high:
        return rule.high
    return rule.mitigation if rule.always or e.severity != "low" else "none"


def futures_sentence(context: dict | None, actors: Sequence[int | str] = ()) -> str:
    """The supervisor's foresight in words: in how many futures from now a collision follows, and
    who is most often in it ('' without futures in ``context``)."""
    futures = context.get("futures") if isinstance(context, dict) else None
    if not isinstance(futures, dict) or not futures.get("futures"):
        return ""
    hits, n = int(futures.get("collisions", 0)), int(futures["futures"])
    horizon = as_number(futures.get("horizon_s")) or 0.0
    lo, hi = (as_number(x) or 0.0 for x in futures.get("ci95_collision", (0.0, 1.0)))
    start = as_number(futures.get("from_s"))
    since = "now" if start is None else f"{start:g} s"
    text = (f"In {hits} of {n} futures run from {since} a collision follows within {horizon:g} s "
            f"(probability {100 * hits / n:.0f}%, 95% interval {100 * lo:.0f}-{100 * hi:.0f}%)")
    top = [m for m in futures.get("most_involved", []) if isinstance(m, dict)]
    named = [m for m in top if str(m.get("actor")) in {str(a) for a in actors}]
    if hits and named:
        text += f", most often with actor {named[0]['actor']} ({named[0]['futures']} of {n})"
    return text + "."


def causes_sentences(context: dict | None, actors: Sequence[int | str] = ()) -> list[str]:
    """The counterfactual causes of a collision (``context["causes"]``, as ``run.py explain``
    finds them) in words: one sentence per cause that prevents or delays it, or one saying
    nothing taken away changed it."""
    causes = context.get("causes") if isinstance(context, dict) else None
    if not isinstance(causes, list) or not causes:
        return []
    who = " and ".join(f"actor {a}" for a in actors) or "the actors"
    told = []
    for c in causes:
        if not isinstance(c, dict) or c.get("class") not in ("but_for", "contributing"):
            continue
        effect = "does not happen" if c["class"] == "but_for" else "happens later"
        # how robust a but-for cause is, only where futures were run (explain --futures K)
        ran = isinstance(context.get("futures"), dict) and c["class"] == "but_for" and c.get("prevented")
        robust = f", prevented in {clean_text(c.get('prevented'), 12)} futures" if ran else ""
        told.append(f"Without {clean_text(c.get('what'), 120)}, the collision of {who} {effect}{robust}.")
    return told or [f"Taking away each of {len(causes)} candidate causes, the collision of {who} happened all the same."]


def causes_values(context: dict | None) -> list[float]:
    """Every number the causes of ``context`` tell (in what each is, k/K, the forks' collision times)."""
    causes = context.get("causes") if isinstance(context, dict) else None
    if not isinstance(causes, list):
        return []
    text = " ".join(f"{c.get('what', '')} {c.get('prevented', '')}".replace("/", " ") for c in causes if isinstance(c, dict))
    values = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)] + [float(len(causes))]
    values += [float(r["collided_at_s"]) for c in causes if isinstance(c, dict) for r in c.get("evidence_runs", [])
               if isinstance(r, dict) and isinstance(r.get("collided_at_s"), (int, float))]
    return values


def futures_values(context: dict | None) -> list[float]:
    """Every number the foresight of ``context`` tells (counts, horizon, probabilities as shares and
    as percentages): what a triage sentence about the futures may say."""
    futures = context.get("futures") if isinstance(context, dict) else None
    if not isinstance(futures, dict) or not futures.get("futures"):
        return []
    shares = [as_number(futures.get("p_collision")), *(as_number(x) for x in futures.get("ci95_collision", ()))]
    values = [as_number(futures.get(k)) for k in ("futures", "collisions", "horizon_s", "from_s")]
    values += [x for x in shares if x is not None] + [100 * x for x in shares if x is not None]
    values += [as_number(m.get("futures")) for m in futures.get("most_involved", []) if isinstance(m, dict)]
    return [v for v in values if v is not None]


def template_triage(events: Sequence[dict], context: dict | None = None, fallback: str | None = None,
                    detail: str = "") -> Triage:
    """The rule-based triage of ``events``: the most severe ones in words with their measures,
    the highest severity, the highest-priority mitigation they call for, and an alert when high."""
    ranked = ranked_events(events)
    if not ranked:
        return Triage(explanation="No events flagged.", severity="low", mitigation="none", alert_operator=False,
                      source="template", fallback=fallback, detail=detail)
    facts = actor_facts(context)
    shown = ranked[:MAX_EVENTS_EXPLAINED]
    sentences = [event_sentence(e, context) for e in shown]
    described = [a for e in shown for a in e.actors if facts.get(a)]
    about = [actor_fact(a, facts) for a in dict.fromkeys(described)
             if any(k in facts[a] for k in ("speed_mps", "persona"))]
    if about:
        sentences.append("Involved: " + "; ".join(about) + ".")
    told = futures_sentence(context, [a for e in shown for a in e.actors])
    if told:
        sentences.insert(1, told)
    sentences[1:1] = causes_sentences(context, list(dict.fromkeys(a for e in shown for a in e.actors)))
    more = len(ranked) - len(shown)
    tail = f" (+{more} more events)" if more else ""
    explanation = ""
    for s in sentences:
        if len(explanation) + len(s) + 1 + len(tail) > EXPLANATION_CHARS:
            break
        explanation = f"{explanation} {s}".strip()
    explanation = (explanation or sentences[0][:EXPLANATION_CHARS - len(tail)]) + tail
    severity = max((e.severity for e in ranked), key=SEVERITIES.index)
    wanted = {mitigation_for(e) for e in ranked}
    mitigation = next(m for m in MITIGATION_PRIORITY if m in wanted or m == "none")
    return Triage(explanation=explanation, severity=severity, mitigation=mitigation, alert_operator=severity == "high",
                  source="template", fallback=fallback, detail=detail)
