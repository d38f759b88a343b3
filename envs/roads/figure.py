"""A map of a road network (matplotlib): lanes drawn to their width, junction outlines, the
junctions' types, and the lanes that lead to several others, legible at city scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from envs.roads.model import INTERNAL, RoadNetwork

JUNCTION_COLOURS = {"traffic_light": "#d62728", "priority": "#7f7f7f", "priority_stop": "#8c564b",
                    "right_before_left": "#1f77b4", "left_before_right": "#1f77b4", "allway_stop": "#9467bd",
                    "zipper": "#ff7f0e"}
ROAD, JUNCTION_LANE, SPLIT = "#3b3b3b", "#9a9a9a", "#2ca02c"


def lane_outline(shape: np.ndarray, width: float) -> np.ndarray:
    """The polygon [m] of a lane of ``width`` [m] around its centre line ``shape`` ((n, 2))."""
    points = np.asarray(shape, float)
    if len(points) < 2:
        return np.repeat(points, 2, axis=0)
    tangent = np.gradient(points, axis=0)
    norm = np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.maximum(norm, 1e-9)
    half = 0.5 * width * normal
    return np.concatenate([points + half, (points - half)[::-1]])


def draw_network(network: RoadNetwork, path: str | Path, title: str | None = None, dpi: int = 150) -> Path:
    """Write a PNG map of ``network`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D

    path = Path(path)
    fig, ax = plt.subplots(figsize=(10, 10))
    junctions = [j for j in network.junctions.values() if j.type != INTERNAL and len(j.shape) >= 3]
    ax.add_collection(PolyCollection([j.shape for j in junctions], facecolors="#e6e6e6", edgecolors="none",
                                     zorder=1))
    split = {lane.id for lane in network.road_lanes()
             if len({link.to_lane for link in network.links_from(lane.id)}) > 1}
    groups = {ROAD: [], JUNCTION_LANE: [], SPLIT: []}
    for edge in network.edges.values():
        if edge.walking_only:
            continue
        for lane_id in edge.lanes:
            lane = network.lanes[lane_id]
            colour = JUNCTION_LANE if edge.function == INTERNAL else SPLIT if lane_id in split else ROAD
            groups[colour].append(lane_outline(lane.shape, lane.width))
    for colour, polygons in groups.items():
        ax.add_collection(PolyCollection(polygons, facecolors=colour, edgecolors="none",
                                         zorder=2 if colour == JUNCTION_LANE else 3))
    for kind, colour in JUNCTION_COLOURS.items():
        xy = np.array([(j.x, j.y) for j in junctions if j.type == kind])
        if len(xy):
            ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colour, zorder=4, edgecolors="white", linewidths=0.4)
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    counts = network.summary()["junctions"]
    legend = [Line2D([], [], color=ROAD, lw=4, label="lane"),
              Line2D([], [], color=SPLIT, lw=4, label="lane leading to several lanes"),
              Line2D([], [], color=JUNCTION_LANE, lw=4, label="junction-internal lane")]
    legend += [Line2D([], [], marker="o", color="white", markerfacecolor=colour, markersize=7,
                      label=f"{kind.replace('_', ' ')} ({counts[kind]})")
               for kind, colour in JUNCTION_COLOURS.items() if counts.get(kind)]
    ax.legend(handles=legend, loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_title(title or Path(network.source).name)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
