"""``TrajectoryLog``: vehicles' observed positions over time, one row per vehicle and time.

Rows are in file order: by time, and within a time in the order the vehicles were listed.
Positions are those of a reference point, ``reference``: ``front`` (the centre of the
front bumper, as SUMO's FCD gives them) or ``centre`` (the middle of the vehicle, as the
highD-style CSV gives them). Headings are in radians, counter-clockwise from +x (SUMO's
navigational degrees are converted when read). What a format does not carry is NaN (numbers)
or "" (names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_LENGTH_M = 5.0  # [m] a vehicle of unknown length (SUMO's default passenger car)


class LogError(ValueError):
    """A trajectory log that cannot be used; the message names the file, the record and the problem."""


@dataclass
class TrajectoryLog:
    """Observed positions of vehicles over time (see the module docstring for conventions)."""

    source: str  # where it came from, for messages
    reference: str  # "front" or "centre": which point of a vehicle x, y are
    time_s: np.ndarray  # [s]
    vehicle: np.ndarray  # index into ``ids`` per row
    ids: list[str]
    x: np.ndarray  # [m]
    y: np.ndarray  # [m]
    heading: np.ndarray  # [rad] counter-clockwise from +x (NaN: not observed)
    speed: np.ndarray  # [m/s] (NaN: not observed)
    acceleration: np.ndarray  # [m/s^2] (NaN: not observed)
    lane: np.ndarray  # lane id in the source network per row ("" unknown)
    pos: np.ndarray  # [m] the reference point's distance from the start of ``lane`` (NaN unknown)
    vtype: np.ndarray  # vehicle type name per row ("" unknown)
    length: np.ndarray  # [m] (NaN unknown)
    width: np.ndarray  # [m] (NaN unknown)
    leader: np.ndarray  # the leader's id per row ("" none or unknown)
    gap: np.ndarray  # [m] bumper gap to the leader (NaN none or unknown)
    record: np.ndarray  # per row, where it is in the file (line, or element number), for messages
    record_name: str = "line"  # what ``record`` counts
    notes: list[str] = field(default_factory=list)  # what was read with a remark (fields derived, ...)

    def __len__(self) -> int:
        return len(self.time_s)

    @property
    def times(self) -> np.ndarray:
        """The distinct observation times [s], ascending."""
        return np.unique(self.time_s)

    def rows_at(self, time_s: float) -> np.ndarray:
        """Rows observed at ``time_s`` [s] (within a microsecond)."""
        return np.flatnonzero(np.abs(self.time_s - time_s) < 1e-6)

    def track(self, vehicle_id: str) -> np.ndarray:
        """Rows of one vehicle, in time order."""
        k = self.ids.index(vehicle_id)
        return np.flatnonzero(self.vehicle == k)

    def check(self) -> None:
        """Raise a ``LogError`` naming the record for what makes a log unusable: time going
        backwards, a vehicle listed twice at one time, positions that are not numbers."""
        where = f"{self.source}: {self.record_name}"
        bad = np.flatnonzero(~np.isfinite(self.x) | ~np.isfinite(self.y))
        if len(bad):
            r = bad[0]
            raise LogError(f"{where} {self.record[r]}: vehicle {self.ids[self.vehicle[r]]!r} at t = {self.time_s[r]:g} s "
                           "has no position (x, y must be numbers)")
        back = np.flatnonzero(np.diff(self.time_s) < -1e-9)
        if len(back):
            r = back[0] + 1
            raise LogError(f"{where} {self.record[r]}: time goes backwards ({self.time_s[r]:g} s after "
                           f"{self.time_s[r - 1]:g} s); a log must be in time order")
        if len(self):
            key = np.round(self.time_s * 1e6).astype(np.int64) * (len(self.ids) + 1) + self.vehicle
            order = np.argsort(key, kind="stable")
            twice = np.flatnonzero(np.diff(key[order]) == 0)
            if len(twice):
                r = order[twice[0] + 1]
                raise LogError(f"{where} {self.record[r]}: vehicle {self.ids[self.vehicle[r]]!r} is listed twice at "
                               f"t = {self.time_s[r]:g} s")


def empty_columns(n: int) -> dict[str, np.ndarray]:
    """Every optional column of a log with ``n`` rows, unobserved."""
    nan = np.full(n, np.nan)
    blank = np.full(n, "", dtype=object)
    return {"heading": nan.copy(), "speed": nan.copy(), "acceleration": nan.copy(), "lane": blank.copy(),
            "pos": nan.copy(), "vtype": blank.copy(), "length": nan.copy(), "width": nan.copy(),
            "leader": blank.copy(), "gap": nan.copy()}
