"""A list of an imported network's junctions for the page's "zoom to a junction" control.

The trace header carries an imported network's junction outlines and their ids
(``junction_names``). The page also needs a centre for each and the streets that meet there,
so the inspector derives them from the header when it serves a run. A trace written before
the header carried ids has its junctions named by SUMO's id read off the names of their
internal lanes (``:<junction id>_<link>_<lane>``), else ``#<k>``, ``k`` the outline's place.

Built-in layouts have no junction outlines; the page finds their junction boxes itself.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

INTERNAL_LANE = re.compile(r"^:(.+)_\d+_\d+$")  # SUMO's internal lane id: ":<junction>_<link>_<lane>"
EDGE_LANE = re.compile(r"^(.+)_\d+$")  # SUMO's lane id: "<edge>_<lane>"
TOUCH_M = 2.0  # [m] a lane whose end is this close to a junction's outline box meets it
MAX_EDGES = 6  # edges listed per junction (the rest are left off)


def _inside(x: float, y: float, poly: np.ndarray) -> bool:
    """Whether (x, y) lies inside the polygon (even-odd rule)."""
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    crosses = (py > y) != (qy > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = px + (y - py) * (qx - px) / (qy - py)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def _centre(poly: np.ndarray) -> tuple[float, float]:
    """The area centroid of a polygon (its vertices' mean when it has no area)."""
    x, y = poly[:, 0], poly[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    if abs(area) < 1e-6:
        return float(x.mean()), float(y.mean())
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return float(cx), float(cy)


def junction_index(network: dict[str, Any]) -> list[dict[str, Any]]:
    """Per junction outline of a header's ``network``: ``{"id", "at": [x, y], "box": [xmin, ymin,
    xmax, ymax], "edges": [...]}`` in world metres, sorted by id; empty when it has no outlines."""
    shapes = [np.asarray(s, float) for s in network.get("junctions") or []]
    shapes = [s for s in shapes if s.ndim == 2 and len(s) >= 3]
    if not shapes:
        return []
    boxes = np.array([[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in shapes])

    def containing(x: float, y: float, pad: float = 0.0) -> list[int]:
        hit = np.nonzero((boxes[:, 0] - pad <= x) & (x <= boxes[:, 2] + pad) &
                         (boxes[:, 1] - pad <= y) & (y <= boxes[:, 3] + pad))[0]
        return [int(k) for k in hit]

    votes: list[Counter] = [Counter() for _ in shapes]
    edges: list[list[str]] = [[] for _ in shapes]
    for lane in network.get("lanes") or []:
        name, centre = str(lane.get("name") or ""), lane.get("centre") or []
        if not centre:
            continue
        internal = INTERNAL_LANE.match(name)
        if internal:  # a movement across a junction: vote for the outline its middle lies in
            x, y = centre[len(centre) // 2]
            inside = [k for k in containing(x, y) if _inside(x, y, shapes[k])] or containing(x, y, TOUCH_M)
            for k in inside[:1]:
                votes[k][internal.group(1)] += 1
        elif not name.startswith(":") and "->" not in name:  # an edge's lane: the junctions at its ends
            edge = EDGE_LANE.match(name)
            edge_name = edge.group(1) if edge else name
            for x, y in (centre[0], centre[-1]):
                for k in containing(x, y, TOUCH_M):
                    if edge_name not in edges[k]:
                        edges[k].append(edge_name)
    names = network.get("junction_names") or []
    entries, used = [], set()
    for k, shape in enumerate(shapes):
        named = [n for n, _ in votes[k].most_common() if n not in used]
        jid = str(names[k]) if len(names) == len(shapes) else named[0] if named else f"#{k}"
        used.add(jid)
        x, y = _centre(shape)
        entries.append({"id": jid, "at": [round(x, 2), round(y, 2)], "box": [round(float(b), 2) for b in boxes[k]],
                        "edges": sorted(edges[k])[:MAX_EDGES]})
    entries.sort(key=lambda e: (e["id"].startswith("#"), len(e["id"]), e["id"]))  # numeric ids in order
    return entries


def with_junction_index(header: dict[str, Any]) -> dict[str, Any]:
    """``header`` with ``network["junction_index"]`` added (when its network has junction outlines)."""
    network = header.get("network")
    if isinstance(network, dict) and network.get("junctions") and "junction_index" not in network:
        network["junction_index"] = junction_index(network)
    return header
