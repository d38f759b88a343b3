"""The safety supervisor: surrogate safety measures (``measures``), hazard and violation events
(``hazards``), label-free anomalies (``anomaly``), triage by rules or a model (``triage``), the
supervisor itself (``supervisor``), its configuration (``config``) and its labelled suite (``suite``)."""
