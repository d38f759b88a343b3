"""The embedded model's client (agents/llm/embedded.py) on the real SmolLM2-135M: the fast
path for flat JSON answers gives answers of the schema for every persona, an answer depends
on the request alone (not on what the model evaluated before), max_tokens still cuts, and
requests the fast path does not take go to llama.cpp's own chat completion."""

import asyncio

import pytest
from autogen_core.models import SystemMessage, UserMessage

from agents.humans.intent import INTENTS, REASON_CHARS, DriverIntent, OperatorIntent, PedestrianIntent
from agents.humans.persona import load_personas
from agents.llm.answers import answer_format, read_answer
from agents.llm.backend import build_model_client
from agents.llm.config import ModelConfig
from agents.llm.embedded import flat_fields

SCENES = {
    "driver": "Time 12 s. You drive a car in lane 'N_in_left' at 35 km/h; the limit is 50 km/h. Ahead: a car 31 m "
              "away at 31 km/h (time gap 3.2 s, time to collision 26.8 s). Signal ahead: amber, stop line in 30 m.\n\n"
              "What do you do now?",
    "pedestrian": "Time 40 s. You are a pedestrian (wait) at the crossing 'E_crosswalk'. Pedestrian signal: dont walk. "
                  "The next vehicle reaches your crossing in 4.0 s. You have waited 12 s.\n\nWhat do you do now?",
}


@pytest.fixture(scope="module")
def client():
    return build_model_client(ModelConfig(backend="embedded", threads=2))


@pytest.fixture(scope="module")
def personas():
    return load_personas()


def ask(client, persona, seed=7, max_tokens=96, answer_type=None, prompt=None):
    answer_type = answer_type or INTENTS[persona.role]
    messages = [SystemMessage(content=persona.system_message(answer_format(answer_type))),
                UserMessage(content=prompt or SCENES[persona.role], source="twin")]
    return asyncio.run(client.create(messages, json_output=answer_type, extra_create_args={
        "max_tokens": max_tokens, "temperature": 0.7, "seed": seed}))


def test_flat_fields_of_the_intents():
    fields = flat_fields(DriverIntent)
    assert [f.name for f in fields] == list(DriverIntent.model_fields)
    assert fields[0].options == ("as_usual", "stay", "left", "right")
    assert fields[-1].options is None and fields[-1].max_chars == REASON_CHARS
    assert flat_fields(PedestrianIntent) is not None
    assert flat_fields(OperatorIntent) is None  # an integer field: llama.cpp's grammar answers it


def test_every_persona_gets_an_answer_of_its_schema(client, personas):
    for persona in personas.values():
        if persona.role == "operator":
            continue
        result = ask(client, persona)
        answer, kind, detail, _ = read_answer(result, INTENTS[persona.role])
        assert kind is None, (persona.id, result.content, detail)
        assert result.finish_reason == "stop"
        assert len(answer.reason) <= REASON_CHARS
        assert result.usage.prompt_tokens > 200 and 15 < result.usage.completion_tokens < 96


def test_an_answer_depends_on_the_request_alone(client, personas):
    """The same request asked again, after other personas' requests (cached system messages,
    another prefix in the model), gets the same answer."""
    a, b, c = personas["commuter_late"], personas["cautious_elderly"], personas["child_to_school"]
    first = ask(client, a, seed=11).content
    seen = [first]
    for other in (b, a, c, b):
        ask(client, other, seed=3)
        seen.append(ask(client, a, seed=11).content)
    assert set(seen) == {first}
    answers = {ask(client, a, seed=s).content for s in range(6)}
    assert len(answers) > 1  # the seed is what varies it


def test_max_tokens_cuts_the_answer(client, personas):
    result = ask(client, personas["commuter_late"], max_tokens=8)
    assert result.finish_reason == "length"
    assert read_answer(result, DriverIntent)[1] == "cut"


def test_other_requests_use_llamas_own_chat_completion(client, personas):
    operator = personas["tmc_operator"]
    result = ask(client, operator, answer_type=OperatorIntent, max_tokens=192,
                 prompt="Time 60 s. Queues: N 4 vehicles. Events in the last minute: none.\n\nWhat do you do now?")
    answer, kind, detail, _ = read_answer(result, OperatorIntent)
    assert kind in (None, "cut"), (result.content, detail)
    # and the fast path still answers right after it (the model's cache was moved by the grammar path)
    again = ask(client, personas["commuter_late"], seed=11)
    assert read_answer(again, DriverIntent)[1] is None
