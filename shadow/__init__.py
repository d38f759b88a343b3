"""The digital shadow: observed traffic flowing into the twin and the twin's own traffic out.

- ``log``: ``TrajectoryLog``, observed (or exported) vehicle positions over time, checked;
- ``formats``: SUMO's FCD (XML, and the CSV SUMO's ``xml2csv`` makes) and a highD-style CSV,
  read and written;
- ``recorder``: a run's trajectories written as it steps (``simulate --fcd``, ``--trajectories``);
- ``matching``: each observed position placed on the twin's network (lane, station, offset).

The layer sits beside ``twin/`` and above ``envs/``: it reads worlds and networks, never
the other way round.
"""
