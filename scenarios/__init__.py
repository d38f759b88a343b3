"""Scenarios from words: a crash report or description becomes a typed specification
(:mod:`scenarios.spec`), a runnable scenario of the twin (:mod:`scenarios.build`) and a checked
reproduction of the described crash (:mod:`scenarios.reproduce`)."""
