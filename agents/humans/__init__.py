"""The simulated humans: personas (``persona``), intents (``intent``), the scene text they read
(``scene``), one autogen agent each (``agent``), the population that embodies and schedules them
(``population``), and the fast stand-ins for the model (``surrogate``, ``situation_cache``).
Their configuration (the scenario's ``humans:`` section) is ``config``."""
