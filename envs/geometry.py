"""Plane geometry of the twin: sampled paths (straight, arc, Bezier) and oriented boxes.

All lengths are in metres, angles in radians (counter-clockwise from +x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_STEP = 1.0  # [m] spacing of path samples


@dataclass(frozen=True)
class Path:
    """A planar curve sampled by arc length.

    ``s`` [m] is the cumulative arc length at each sample; ``heading`` [rad] the tangent
    direction; ``curvature`` [1/m] is positive when the path turns left.
    """

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray

    @property
    def length(self) -> float:
        """Total arc length [m]."""
        return float(self.s[-1])

    @classmethod
    def from_points(cls, points: np.ndarray) -> "Path":
        """Build a path from an (n, 2) polyline; heading and curvature by finite differences."""
        pts = np.asarray(points, dtype=float)
        seg = np.diff(pts, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        keep = np.concatenate([[True], seg_len > 1e-9])
        pts = pts[keep]
        seg = np.diff(pts, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        s = np.concatenate([[0.0], np.cumsum(seg_len)])
        seg_heading = np.arctan2(seg[:, 1], seg[:, 0])
        heading = np.concatenate([seg_heading, seg_heading[-1:]])
        if len(seg_heading) > 1:
            # heading at interior samples: mean of adjacent segment headings
            turn = np.angle(np.exp(1j * np.diff(seg_heading)))
            heading[1:-1] = seg_heading[:-1] + 0.5 * turn
            ds = 0.5 * (seg_len[:-1] + seg_len[1:])
            kappa_inner = turn / ds
            curvature = np.concatenate([kappa_inner[:1], kappa_inner, kappa_inner[-1:]])
        else:
            curvature = np.zeros(len(s))
        return cls(s=s, x=pts[:, 0], y=pts[:, 1], heading=np.unwrap(heading), curvature=curvature)

    @classmethod
    def straight(cls, start: tuple[float, float], end: tuple[float, float]) -> "Path":
        """A straight segment from ``start`` to ``end`` [m]."""
        p0, p1 = np.asarray(start, float), np.asarray(end, float)
        n = max(2, int(np.ceil(np.hypot(*(p1 - p0)) / (10 * SAMPLE_STEP))) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        return cls.from_points(p0 + t * (p1 - p0))

    @classmethod
    def bezier(
        cls,
        start: tuple[float, float],
        start_heading: float,
        end: tuple[float, float],
        end_heading: float,
        tangent_scale: float = 0.4,
    ) -> "Path":
        """A cubic Bezier from ``start`` to ``end`` leaving and arriving along the given headings."""
        p0, p3 = np.asarray(start, float), np.asarray(end, float)
        chord = float(np.hypot(*(p3 - p0)))
        k = tangent_scale * chord
        p1 = p0 + k * np.array([np.cos(start_heading), np.sin(start_heading)])
        p2 = p3 - k * np.array([np.cos(end_heading), np.sin(end_heading)])
        n = max(8, int(np.ceil(chord / SAMPLE_STEP)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        pts = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        return cls.from_points(pts)

    def extend(self, other: "Path") -> "Path":
        """Concatenate ``other`` (whose start should coincide with this path's end)."""
        pts = np.concatenate(
            [np.stack([self.x, self.y], 1), np.stack([other.x, other.y], 1)[1:]]
        )
        return Path.from_points(pts)

    def arc_then(self, radius: float, sweep: float) -> "Path":
        """Append a circular arc of ``radius`` [m] turning by ``sweep`` [rad] (left if > 0)."""
        h0 = float(self.heading[-1])
        x0, y0 = float(self.x[-1]), float(self.y[-1])
        sign = np.sign(sweep)
        cx, cy = x0 - sign * radius * np.sin(h0), y0 + sign * radius * np.cos(h0)
        n = max(4, int(np.ceil(abs(sweep) * radius / (2 * SAMPLE_STEP))) + 1)
        h = h0 + np.linspace(0.0, sweep, n)
        pts = np.stack([cx + sign * radius * np.sin(h), cy - sign * radius * np.cos(h)], 1)
        return self.extend(Path.from_points(pts))

    def straight_then(self, length: float) -> "Path":
        """Append a straight segment of ``length`` [m] along the end heading."""
        h = float(self.heading[-1])
        end = (self.x[-1] + length * np.cos(h), self.y[-1] + length * np.sin(h))
        return self.extend(Path.straight((self.x[-1], self.y[-1]), end))

    def point(self, s: float, d: float = 0.0) -> tuple[float, float]:
        """World point at arc length ``s`` [m] and left offset ``d`` [m]."""
        h = float(np.interp(s, self.s, self.heading))
        x = float(np.interp(s, self.s, self.x)) - d * np.sin(h)
        y = float(np.interp(s, self.s, self.y)) + d * np.cos(h)
        return x, y

    def offset_polyline(self, d: float, s_from: float = 0.0, s_to: float | None = None) -> np.ndarray:
        """(n, 2) points of the curve shifted ``d`` [m] to the left, between two stations."""
        s_to = self.length if s_to is None else s_to
        mask = (self.s > s_from) & (self.s < s_to)
        ss = np.concatenate([[s_from], self.s[mask], [s_to]])
        h = np.interp(ss, self.s, self.heading)
        x = np.interp(ss, self.s, self.x) - d * np.sin(h)
        y = np.interp(ss, self.s, self.y) + d * np.cos(h)
        return np.stack([x, y], 1)


def box_corners(x, y, heading, length, width) -> np.ndarray:
    """Corners (n, 4, 2) of oriented boxes centred at (x, y) [m]."""
    c, s = np.cos(heading), np.sin(heading)
    hl, hw = 0.5 * np.asarray(length), 0.5 * np.asarray(width)
    ax = np.stack([c * hl, s * hl], -1)  # half-length axis
    aw = np.stack([-s * hw, c * hw], -1)  # half-width axis
    centre = np.stack([x, y], -1)
    return np.stack([centre + ax + aw, centre + ax - aw, centre - ax - aw, centre - ax + aw], -2)
