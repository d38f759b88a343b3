"""Top-down rendering of a world state to an RGB array (headless: Pillow, no display)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from envs.actors import HIT, PEDESTRIAN_RADIUS
from envs.geometry import box_corners
from envs.network import GREEN, RED, WALK, Network
from envs.scenario import RenderConfig
from envs.state import WorldState

GRASS = (112, 150, 96)
ASPHALT = (88, 88, 92)
SIDEWALK = (190, 186, 176)
MARKING = (235, 235, 235)
ZONE = (214, 170, 60)
SIGNAL_COLOURS = {GREEN: (40, 200, 60), 1: (240, 190, 30), RED: (220, 40, 40)}
TYPE_COLOURS = [(70, 120, 220), (150, 110, 200), (230, 150, 40)]  # car, truck, bus
EGO_COLOUR = (30, 220, 220)
CRASH_COLOUR = (255, 40, 40)
PEDESTRIAN_COLOURS = {True: (250, 120, 200), False: (255, 230, 80)}  # jaywalker / not


class Renderer:
    """Draws states of one network; the static background is drawn once."""

    def __init__(self, network: Network, config: RenderConfig) -> None:
        self.network, self.config = network, config
        xmin, ymin, xmax, ymax = network.bounds
        self.scale = config.px_per_m or min(config.width_px / (xmax - xmin), config.height_px / (ymax - ymin))
        self.centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
        self._background: Image.Image | None = None
        self._bg_centre: np.ndarray | None = None
        self._heads = network.signal_heads()  # imported networks: (group, x, y) per signalised link

    def to_px(self, pts: np.ndarray, centre: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, float)
        out = (pts - centre) * self.scale
        return np.stack([out[..., 0] + self.config.width_px / 2, self.config.height_px / 2 - out[..., 1]], -1)

    def _draw_background(self, centre: np.ndarray) -> Image.Image:
        cfg, net = self.config, self.network
        img = Image.new("RGB", (cfg.width_px, cfg.height_px), GRASS)
        draw = ImageDraw.Draw(img)
        for line in net.sidewalks:
            self._band(draw, line, net.sidewalk_width, SIDEWALK, centre)
        for lane in range(len(net.lanes)):
            ln = net.lanes[lane]
            left = net.lane_polyline(lane, 0.5 * ln.width)
            right = net.lane_polyline(lane, -0.5 * ln.width)
            poly = np.concatenate([left, right[::-1]])
            draw.polygon([tuple(p) for p in self.to_px(poly, centre)], fill=ASPHALT)
        for shape in net.junction_shapes:  # imported networks: the junction areas
            draw.polygon([tuple(p) for p in self.to_px(np.asarray(shape, float), centre)], fill=ASPHALT)
        for z in net.speed_zones:
            ln = net.lanes[z.lane]
            left = net.edges[ln.edge].offset_polyline(ln.offset + 0.5 * ln.width, z.s_from, z.s_to)
            right = net.edges[ln.edge].offset_polyline(ln.offset - 0.5 * ln.width, z.s_from, z.s_to)
            pts = self.to_px(np.concatenate([left, right[::-1]]), centre)
            draw.line([tuple(p) for p in pts] + [tuple(pts[0])], fill=ZONE, width=1)
        for lane in range(len(net.lanes)):
            ln = net.lanes[lane]
            if ln.left >= 0:  # dashed divider between neighbouring lanes
                pts = self.to_px(net.lane_polyline(lane, 0.5 * ln.width), centre)
                for k in range(0, len(pts) - 1, 2):
                    draw.line([tuple(pts[k]), tuple(pts[k + 1])], fill=MARKING, width=1)
        for crossing in net.crossings:
            if crossing.name == "jaywalk":
                continue
            draw.polygon([tuple(p) for p in self.to_px(crossing.polygon, centre)], outline=MARKING, fill=(120, 120, 124))
        return img

    def _band(self, draw: ImageDraw.ImageDraw, line: np.ndarray, width: float, colour, centre) -> None:
        pts = self.to_px(line, centre)
        draw.line([tuple(p) for p in pts], fill=colour, width=max(1, int(width * self.scale)))

    def render(self, state: WorldState, follow: int | None = None) -> np.ndarray:
        """An (H, W, 3) uint8 image of ``state``; ``follow`` centres the view on a vehicle id."""
        centre = self.centre
        if follow is not None and self.config.follow_ego:
            r = state.row_of(follow)
            if r >= 0:
                centre = np.array([state.vehicles["x"][r], state.vehicles["y"][r]])
        if self._background is None or self._bg_centre is None or not np.allclose(centre, self._bg_centre):
            self._background, self._bg_centre = self._draw_background(centre), centre.copy()
        img = self._background.copy()
        draw = ImageDraw.Draw(img)
        net = self.network
        for lane, ln in enumerate(net.lanes):  # signal heads at stop lines
            if ln.signal_group >= 0 and len(state.group_state):
                x, y, h = net.lane_point(lane, ln.s_to)
                px = self.to_px(np.array([x, y]), centre)
                rad = max(2.0, 0.9 * self.scale)
                draw.ellipse([px[0] - rad, px[1] - rad, px[0] + rad, px[1] + rad],
                             fill=SIGNAL_COLOURS[int(state.group_state[ln.signal_group])])
        if len(state.group_state):  # imported networks: a head per signalised junction link
            for group, x, y in self._heads:
                px = self.to_px(np.array([x, y]), centre)
                rad = max(1.5, 0.6 * self.scale)
                draw.ellipse([px[0] - rad, px[1] - rad, px[0] + rad, px[1] + rad],
                             fill=SIGNAL_COLOURS[int(state.group_state[group])])
        for c, crossing in enumerate(net.crossings):
            if crossing.signal >= 0 and len(state.crossing_signal):
                walk = state.crossing_signal[crossing.signal] == WALK
                px = self.to_px(crossing.polygon[0], centre)
                draw.rectangle([px[0] - 2, px[1] - 2, px[0] + 2, px[1] + 2], fill=(255, 255, 255) if walk else (255, 120, 0))
        v = state.vehicles
        if len(v["id"]):
            corners = self.to_px(box_corners(v["x"], v["y"], v["heading"], v["length"], v["width"]), centre)
            for i in range(len(v["id"])):
                colour = CRASH_COLOUR if v["crashed"][i] else EGO_COLOUR if v["driver"][i] else TYPE_COLOURS[v["vtype"][i]]
                draw.polygon([tuple(p) for p in corners[i]], fill=colour, outline=(20, 20, 20))
        p = state.pedestrians
        rad = max(1.5, PEDESTRIAN_RADIUS * 1.5 * self.scale)
        for i in range(len(p["id"])):
            px = self.to_px(np.array([p["x"][i], p["y"][i]]), centre)
            colour = CRASH_COLOUR if p["phase"][i] == HIT else PEDESTRIAN_COLOURS[bool(p["jaywalker"][i])]
            draw.ellipse([px[0] - rad, px[1] - rad, px[0] + rad, px[1] + rad], fill=colour, outline=(20, 20, 20))
        return np.asarray(img, dtype=np.uint8)
