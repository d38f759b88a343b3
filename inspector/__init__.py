"""The inspector: a local web page that shows what happened in a scenario, and why.

``python run.py inspect RUN_DIR`` serves a recorded run; ``python run.py inspect SCENARIO
--live`` runs one step by step from the page, with interviews and what-if forks
(``inspector.live``). ``inspector.export`` writes a run's trace as a GIF.
"""
