"""Where LLM answers come from: the typed ``model:`` section of a scenario's ``humans:``.

Only pydantic here, so loading a scenario never imports a model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

STRUCTURED_OUTPUT_CHOICES = ("auto", "json_schema", "json_object", "grammar", "tool", "prompt")


class ModelConfig(BaseModel):
    """The model backend, how requests ask it for structured answers, and its limits."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("embedded", pattern="^(embedded|openai)$",
                         description="embedded: SmolLM2-135M in-process (llama.cpp); openai: any OpenAI-compatible server")
    model: str = Field("SmolLM2-135M-Instruct", description="model name sent to an OpenAI-compatible server")
    base_url: str | None = Field(None, description="e.g. http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM)")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key (never the key itself)")
    structured_output: str = Field(
        "auto", pattern="^(" + "|".join(STRUCTURED_OUTPUT_CHOICES) + ")$",
        description="how a server is asked for JSON answers: json_schema (OpenAI, vLLM), json_object with the schema "
                    "(llama-cpp-python), grammar (llama.cpp GBNF), tool (a forced tool call), prompt (the system "
                    "message only); auto: probe the server at start-up and use the first it accepts")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(96, ge=16, le=1024, description="longest answer [tokens] (an operator gets at least 192)")
    context_tokens: int = Field(2048, ge=512, le=131072, description="model context window [tokens]")
    timeout_s: float = Field(30.0, gt=0.0, le=600.0, description="an answer later than this falls back [s]")
    threads: int | None = Field(None, ge=1, le=256, description="CPU threads of the embedded model (None: all cores)")
    concurrency: int | None = Field(None, ge=1, le=256,
                                    description="requests in flight at once (None: 1 for embedded; for a server, "
                                                "the parallel requests the start-up probe measured it to serve)")
    max_failure_share: float = Field(0.2, ge=0.0, le=1.0,
                                     description="a run whose model requests failed more often than this is "
                                                 "reported failed and exits non-zero (unless --allow-fallbacks)")

    @property
    def max_in_flight(self) -> int:
        return self.concurrency or 1

    @property
    def request_mode(self) -> str:
        """How requests ask for structured answers: ``native`` for the embedded model (and for a
        server whose ``auto`` was not yet resolved by a probe), else ``structured_output``."""
        return "native" if self.backend == "embedded" or self.structured_output == "auto" else self.structured_output
