"""Language-model plumbing: model clients (embedded llama.cpp, OpenAI-compatible servers), the
JSON-lines answer cache and replay (``backend``), reading answers into typed models (``answers``), and a
scripted client (``scripted``)."""
