"""Export a recorded run's trace as an animated GIF (``run.py inspect RUN_DIR --export out.gif``).

Drawn from ``trace.jsonl.gz`` alone (Pillow, headless): lanes, crossings, signal heads,
vehicles (LLM-driven ones outlined in white), pedestrians, the supervisor's events while
they last, and the clock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from envs.actors import HIT
from envs.render import ASPHALT, CRASH_COLOUR, EGO_COLOUR, GRASS, PEDESTRIAN_COLOURS, SIDEWALK, SIGNAL_COLOURS, TYPE_COLOURS
from envs.trace import read_trace

CROSSING = (150, 150, 154)
DARK = (110, 110, 110)  # signal heads out of order
SEVERITY = {"low": (250, 220, 60), "medium": (250, 140, 30), "high": (230, 30, 30)}
WIDTH_PX = 640


def export_gif(run_dir: Path, out: Path, fps: int = 8, speed: float = 4.0, start_s: float = 0.0,
               end_s: float | None = None) -> dict:
    """Write ``out`` (a GIF) from ``run_dir``'s trace; ``speed`` simulated seconds per real second.
    Returns the frame count and the simulated span [s]."""
    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise ValueError(f"{out}: only .gif export is supported")
    header, ticks = read_trace(run_dir)
    ticks = [t for t in ticks if t["t"] >= start_s and (end_s is None or t["t"] <= end_s)]
    if not ticks:
        raise ValueError(f"{run_dir}: no trace ticks between {start_s} and {end_s} s")
    hazards = [h for t in ticks for h in t["hazards"]]
    every = max(1, int(round(speed / fps / header["tick_s"])))
    painter = _Painter(header["network"])
    frames = [painter.frame(t, hazards) for t in tqdm(ticks[::every], desc="export", unit="frame")]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0, optimize=True)
    return {"frames": len(frames), "from_s": ticks[0]["t"], "to_s": ticks[-1]["t"], "path": str(out)}


class _Painter:
    """Draws ticks of one network; the background is drawn once."""

    def __init__(self, network: dict) -> None:
        xmin, ymin, xmax, ymax = network["bounds"]
        self.scale = WIDTH_PX / (xmax - xmin)
        self.origin = (xmin, ymax)
        self.size = (WIDTH_PX, int(round((ymax - ymin) * self.scale)))
        self.network = network
        self.background = self._background()

    def px(self, points) -> list[tuple[float, float]]:
        pts = np.asarray(points, float).reshape(-1, 2)
        return [((x - self.origin[0]) * self.scale, (self.origin[1] - y) * self.scale) for x, y in pts]

    def _background(self) -> Image.Image:
        img = Image.new("RGB", self.size, GRASS)
        draw = ImageDraw.Draw(img)
        width = max(1, int(self.network["sidewalk_width_m"] * self.scale))
        for line in self.network["sidewalks"]:
            draw.line(self.px(line), fill=SIDEWALK, width=width)
        for lane in self.network["lanes"]:
            draw.polygon(self.px(lane["outline"]), fill=ASPHALT)
        for crossing in self.network["crossings"]:
            if crossing["name"] != "jaywalk":
                draw.polygon(self.px(crossing["outline"]), fill=CROSSING, outline=(235, 235, 235))
        return img

    def frame(self, tick: dict, hazards: list[dict]) -> Image.Image:
        img = self.background.copy()
        draw = ImageDraw.Draw(img)
        groups = tick["signals"]["groups"]
        for lane in self.network["lanes"]:
            if lane["signal_group"] >= 0 and groups:
                (x, y), = self.px(lane["stop_line"])
                dark = tick["signals"].get("dark")
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=DARK if dark else SIGNAL_COLOURS[groups[lane["signal_group"]]])
        t = tick["t"]
        for h in hazards:
            if h["start_s"] <= t <= h["end_s"] + 1.0:
                (x, y), = self.px([h["x_m"], h["y_m"]])
                r = 4.0 * self.scale
                draw.ellipse([x - r, y - r, x + r, y + r], outline=SEVERITY[h["severity"]], width=2)
        v = tick["vehicles"]
        for i in range(len(v["id"])):
            c, s = np.cos(v["heading"][i]), np.sin(v["heading"][i])
            hl, hw = v["length"][i] / 2, v["width"][i] / 2
            corners = [(v["x"][i] + c * dx - s * dy, v["y"][i] + s * dx + c * dy)
                       for dx, dy in ((hl, hw), (hl, -hw), (-hl, -hw), (-hl, hw))]
            colour = (CRASH_COLOUR if v["crashed"][i] else EGO_COLOUR if v["controlled"][i]
                      else TYPE_COLOURS[v["type"][i]])
            draw.polygon(self.px(corners), fill=colour, outline=(255, 255, 255) if v["human"][i] else (20, 20, 20))
        p = tick["pedestrians"]
        r = max(2.0, 0.5 * self.scale)
        for i in range(len(p["id"])):
            (x, y), = self.px([p["x"][i], p["y"][i]])
            colour = CRASH_COLOUR if p["phase"][i] == HIT else PEDESTRIAN_COLOURS[bool(p["jaywalker"][i])]
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour,
                         outline=(255, 255, 255) if p["human"][i] else (20, 20, 20))
        draw.rectangle([4, 4, 92, 20], fill=(0, 0, 0))
        draw.text((8, 6), f"t = {t:6.1f} s", fill=(255, 255, 255))
        return img
