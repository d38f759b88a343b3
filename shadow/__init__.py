"""The digital shadow: observed traffic flowing into the twin and the twin's own traffic out.

- ``log``: ``TrajectoryLog``, observed (or exported) vehicle positions over time, checked;
- ``formats``: SUMO's FCD (XML, and the CSV SUMO's ``xml2csv`` makes) and a highD-style CSV,
  read and written;
- ``recorder``: a run's trajectories written as it steps (``simulate --fcd``, ``--trajectories``);
- ``matching``: each observed position placed on the twin's network (lane, station, offset);
- ``sync``: the observed state at any time, and ``ShadowWorld`` holding it (for a forecast) or
  mirroring it (vehicles keep their ids while seen);
- ``tuner``: each observed driver's IDM parameters learned from its trajectory;
- ``predict``: forecasts from every sync point scored against the log (ADE/FDE);
- ``mirror``: a run directory of the log as the twin mirrors it, the supervisor watching;
- ``loop``: the closed loop with a running SUMO (libsumo): faults there, flags and advisories here;
- ``analysis``: ``run.py analyze``: flow figures of a run directory;
- ``follow``: ``run.py shadow``, all of it.

The layer sits beside ``twin/`` and above ``envs/``: it reads worlds and networks, never
the other way round.
"""
