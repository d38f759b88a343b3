"""Memory of the simulated humans: a vector memory stream with reflection, and prompt budgets.

Modules (import them directly; nothing heavy is loaded here):
    memory.embedding  MiniLMEmbedding (all-MiniLM-L6-v2), HashEmbedding (tests only)
    memory.stream     Memory, MemoryStore, Reflector, scoring constants
    memory.budget     count_tokens, fit_prompt
    memory.agent_memory  AgentMemory: one agent's memories as an autogen Memory
"""
