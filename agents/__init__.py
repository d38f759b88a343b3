"""Who acts in the twin, grouped by who they are:

- ``agents.llm``: language-model plumbing (clients, answer cache, replay, a scripted client).
- ``agents.humans``: the simulated humans (personas, intents, scenes, agents, the population).
- ``agents.supervisor``: the safety supervisor (measures, hazards, anomalies, triage, its suite).
- ``agents.controllers``: RL controllers trained and evaluated against the twin.

Agents see the world through ``envs`` (its state and public controls); they are wired to a
world by the composition root, ``twin``.
"""
