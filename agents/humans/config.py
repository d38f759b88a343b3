"""Typed configuration of the simulated humans: which personas, which are LLM-driven,
how often they decide, which model backend answers and how they remember.

Lives in a scenario file under ``humans:``; only pydantic here, so loading a scenario
never imports a model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agents.llm.config import ModelConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryConfig(_Strict):
    """Vector memory of the humans (chromadb)."""

    enabled: bool = True
    directory: str | None = Field(None, description="memory store; None keeps it in the run directory")
    persist: bool = Field(False, description="a persona identity keeps its memories across episodes (needs directory)")
    recall: int = Field(3, ge=0, le=20, description="memories put in a prompt at most")
    prompt_budget_tokens: int = Field(640, ge=200, le=100000, description="persona + scene + memories [tokens]")
    reflect_importance: float = Field(30.0, gt=0.0, description="summed importance that triggers a reflection")
    reflect_with_llm: bool = Field(False, description="reflections written by the model (else rule-based summaries)")
    embedding: str = Field("minilm", pattern="^(minilm|hash)$", description="minilm: all-MiniLM-L6-v2, offline")


class DecisionPeriods(_Strict):
    """Seconds between routine decisions of each role; events trigger extra ones."""

    driver: float = Field(20.0, gt=0.0, le=600.0)
    pedestrian: float = Field(5.0, gt=0.0, le=600.0)
    operator: float = Field(60.0, gt=0.0, le=3600.0)


class PersonaSlot(_Strict):
    """``count`` humans of one persona; ``llm: false`` keeps them rule-based (persona priors only)."""

    persona: str
    count: int = Field(1, ge=0, le=1000)
    llm: bool = True


class SurrogateConfig(_Strict):
    """Surrogate humans distilled from recorded LLM decisions (``python run.py distill``)."""

    path: str | None = Field(None, description="a surrogate.pkl; None: every LLM decision is live")
    live_fraction: float = Field(0.1, ge=0.0, le=1.0, description="share of decisions still asked of the LLM")


class ReuseConfig(_Strict):
    """Reuse of recorded LLM decisions where the situation is the same (``agents.humans.situation_cache``)."""

    enabled: bool = Field(False, description="a persona meeting a recorded situation again repeats its decision")
    path: str | None = Field(None, description="a situations.jsonl shared across runs and env processes; "
                                                "None: kept in memory (across the episodes of one env or run)")
    resolution: float = Field(0.25, gt=0.0, le=1.0,
                              description="situation features (scaled to [-1, 1]) are rounded to this step")


class ReactionTimes(_Strict):
    """How long after a decision is asked for it takes effect [s] (simulated time). The
    physics runs on meanwhile and waits for the model only when that time comes, so a
    decision's effect never depends on how fast the model answered."""

    mode: str = Field("reaction", pattern="^(reaction|none)$",
                      description="reaction: a decision takes effect after the human's reaction time; none: at "
                                  "once, the physics waiting for every answer (runs recorded before reaction times)")
    pedestrian: float = Field(1.0, ge=0.0, le=30.0, description="a pedestrian's [s]; a driver's is its persona's")
    operator: float = Field(5.0, ge=0.0, le=300.0, description="an operator's [s]")


class HumansConfig(_Strict):
    """The simulated humans of a scenario. Vehicles and pedestrians beyond the slots here
    are rule-based with the scenario's behaviour distributions."""

    drivers: list[PersonaSlot] = []
    pedestrians: list[PersonaSlot] = []
    operators: list[PersonaSlot] = []
    decision_period_s: DecisionPeriods = DecisionPeriods()
    reaction_s: ReactionTimes = ReactionTimes()
    model: ModelConfig = ModelConfig()
    memory: MemoryConfig = MemoryConfig()
    surrogate: SurrogateConfig = SurrogateConfig()
    reuse: ReuseConfig = ReuseConfig()

    @property
    def any(self) -> bool:
        """Whether any persona slot is configured."""
        return bool(self.drivers or self.pedestrians or self.operators)

    @property
    def llm_count(self) -> int:
        return sum(s.count for group in (self.drivers, self.pedestrians, self.operators) for s in group if s.llm)
