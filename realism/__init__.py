"""Realism: how statistically alike a twin run and a reference (another run, or a real log) are.

- ``trajectories``: ``Trajectories``, per-vehicle time series and world events, loaded from a
  twin run directory (``trace.jsonl.gz`` + ``events.jsonl``) or a trajectory log (SUMO FCD XML,
  xml2csv's FCD CSV, the highD-style CSV); and perturbations of them (``scale_speeds``,
  ``random_accelerations``);
- ``statistics``: the realism score in the manner of the Waymo Open Sim Agents Challenge
  meta-metric (per-feature histogram likelihoods of the reference under the run, weighted),
  with a real-vs-real baseline and a random floor (``assess``, ``table``);
- ``judge``: a language-model judge of the realism of scenes from a run's trace.

The layer sits above ``envs/`` and ``shadow/`` (it reads traces and logs), beside ``twin/``;
``statistics`` and ``trajectories`` import nothing from ``twin/`` or ``agents/``.
"""
