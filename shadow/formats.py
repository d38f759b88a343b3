"""Trajectory files: SUMO's FCD (XML, and the CSV SUMO's ``xml2csv`` makes of it) and a
highD-style CSV, read into a ``TrajectoryLog`` and written from one frame at a time.

FCD (SUMO's ``--fcd-output``; schema ``fcd_file.xsd``): ``<timestep time>`` elements holding
``<vehicle id x y angle type speed pos lane slope acceleration>``; x, y are the centre of the
front bumper, ``angle`` is navigational (degrees clockwise from north), ``pos`` the front's
distance along ``lane``. The highD-style CSV (``docs/trajectories.md``) has one row per
vehicle and frame: ``frame, time_s, id, x, y, heading, speed, acceleration, lane, leader,
gap, type, length, width``, with x, y the vehicle's middle and ``heading`` in radians
counter-clockwise from +x. Files ending in ``.gz`` are gzipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import xml.sax
from pathlib import Path
from typing import IO, Any, Iterable

import numpy as np

from shadow.log import LogError, TrajectoryLog, empty_columns

FCD_SCHEMA = "http://sumo.dlr.de/xsd/fcd_file.xsd"
CSV_COLUMNS = ("frame", "time_s", "id", "x", "y", "heading", "speed", "acceleration", "lane", "leader", "gap", "type",
               "length", "width")
FORMATS = ("fcd", "fcd-csv", "csv")  # SUMO FCD XML, xml2csv's FCD CSV, the highD-style CSV
HIGHD_FRAME_RATE_HZ = 25.0  # highD's recordings: a frame every 40 ms


def _open_text(path: Path, mode: str = "rt") -> IO[str]:
    if mode.startswith("w"):
        path.parent.mkdir(parents=True, exist_ok=True)
    return gzip.open(path, mode, encoding="utf-8") if path.suffix == ".gz" else open(path, mode, encoding="utf-8")


def detect_format(path: str | Path) -> str:
    """``fcd``, ``fcd-csv`` or ``csv`` from a file's first bytes; a ``LogError`` naming the
    formats it reads otherwise."""
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        with _open_text(path) as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise LogError(f"{path}: cannot be read as text ({exc})") from None
    first = head.lstrip().splitlines()[0] if head.strip() else ""
    if "<fcd-export" in head:
        return "fcd"
    if "timestep_time" in first:
        return "fcd-csv"
    columns = {c.strip() for c in first.replace(";", ",").split(",")}
    if "id" in columns and columns & {"time_s", "frame", "x", "y"}:  # (the reader names what it lacks)
        return "csv"
    raise LogError(f"{path}: not a trajectory log the twin reads: expected SUMO FCD XML (<fcd-export>), FCD CSV "
                   "from xml2csv (a timestep_time column) or a highD-style CSV (columns id, x, y and time_s or frame)")


def read_log(path: str | Path, frame_rate_hz: float | None = None) -> TrajectoryLog:
    """A trajectory file of any of ``FORMATS``, read and checked (``TrajectoryLog.check``).
    ``frame_rate_hz`` turns a CSV's frames into times where it has no ``time_s`` column."""
    path = Path(path)
    kind = detect_format(path)
    log = _read_fcd_xml(path) if kind == "fcd" else _read_csv(path, kind, frame_rate_hz)
    log.check()
    return log


# ---- reading -----------------------------------------------------------------------------------
class _Rows:
    """Columns being gathered, row by row."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.cols: dict[str, list] = {name: [] for name in ("time_s", "vehicle", "x", "y", "record", *empty_columns(0))}

    def add(self, record: int, time_s: float, ident: str, values: dict[str, Any]) -> None:
        cols = self.cols
        cols["record"].append(record)
        cols["time_s"].append(time_s)
        cols["vehicle"].append(self.ids.setdefault(ident, len(self.ids)))
        for name in cols:
            if name not in ("record", "time_s", "vehicle"):
                cols[name].append(values.get(name, "" if name in ("lane", "vtype", "leader") else math.nan))

    def log(self, source: Path, reference: str, record_name: str, notes: list[str]) -> TrajectoryLog:
        c = self.cols
        text = {"lane", "vtype", "leader"}
        arrays = {name: np.array(v, dtype=object if name in text else (np.int64 if name in ("vehicle", "record")
                                                                      else float)) for name, v in c.items()}
        return TrajectoryLog(source=str(source), reference=reference, ids=list(self.ids), record_name=record_name,
                             notes=notes, **arrays)


def _number(text: str | None, where: str, name: str) -> float:
    if text is None or text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise LogError(f"{where}: {name}={text!r} is not a number") from None


class _FcdHandler(xml.sax.ContentHandler):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.rows = path, _Rows()
        self.time_s: float | None = None
        self.root_seen = False

    def startElement(self, name: str, attrs: Any) -> None:  # noqa: N802 - SAX's name
        line = self._locator.getLineNumber() if self._locator else 0
        where = f"{self.path}: line {line}: <{name}>"
        if not self.root_seen:
            if name != "fcd-export":
                raise LogError(f"{where}: an FCD file's root is <fcd-export>")
            self.root_seen = True
        elif name == "timestep":
            if attrs.get("time") is None:
                raise LogError(f"{where}: no time attribute")
            self.time_s = _sumo_time(attrs.get("time"), where)
        elif name == "vehicle":
            ident = attrs.get("id")
            if not ident:
                raise LogError(f"{where}: a vehicle without an id")
            for required in ("x", "y"):
                if attrs.get(required) is None:
                    raise LogError(f"{where} id={ident!r}: no {required} attribute (an FCD log needs x and y)")
            if self.time_s is None:
                raise LogError(f"{where}: a vehicle outside a <timestep>")
            angle = _number(attrs.get("angle"), where, "angle")
            self.rows.add(line, self.time_s, ident, {
                "x": _number(attrs.get("x"), where, "x"), "y": _number(attrs.get("y"), where, "y"),
                "heading": math.radians(90.0 - angle) if math.isfinite(angle) else math.nan,
                "speed": _number(attrs.get("speed"), where, "speed"),
                "acceleration": _number(attrs.get("acceleration"), where, "acceleration"),
                "lane": attrs.get("lane", ""), "pos": _number(attrs.get("pos"), where, "pos"),
                "vtype": attrs.get("type", ""), "leader": attrs.get("leaderID", ""),
                "gap": _number(attrs.get("leaderGap"), where, "leaderGap")})


def _sumo_time(text: str, where: str) -> float:
    from envs.roads.sumo import sumo_time

    try:
        return sumo_time(text)
    except ValueError:
        raise LogError(f"{where}: time={text!r} is not a time (seconds, or h:m:s)") from None


def _read_fcd_xml(path: Path) -> TrajectoryLog:
    handler = _FcdHandler(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
            xml.sax.parse(fh, handler)
    except xml.sax.SAXParseException as exc:
        raise LogError(f"{path}: line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
                       f"not well-formed XML ({exc.getMessage()})") from None
    return handler.rows.log(path, "front", "line", [])


def _read_csv(path: Path, kind: str, frame_rate_hz: float | None) -> TrajectoryLog:
    with _open_text(path) as fh:
        text = fh.read()
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    fields = set(reader.fieldnames or [])
    prefix = "vehicle_" if kind == "fcd-csv" else ""
    rows, notes = _Rows(), []

    def column(name: str) -> str:
        return prefix + name

    if kind == "fcd-csv":
        required, time_column = ("vehicle_id", "vehicle_x", "vehicle_y", "timestep_time"), "timestep_time"
    else:
        required = ("id", "x", "y")
        time_column = "time_s" if "time_s" in fields else "frame" if "frame" in fields else None
        if time_column is None:
            raise LogError(f"{path}: no time_s or frame column (a highD-style CSV needs one)")
        if time_column == "frame":
            if frame_rate_hz is None:
                raise LogError(f"{path}: frames but no time_s column: give the frame rate (--frame-rate; highD "
                               f"records at {HIGHD_FRAME_RATE_HZ:g} Hz)")
            notes.append(f"times from frames at {frame_rate_hz:g} Hz")
    missing = [c for c in required if c not in fields]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(sorted(fields)) or 'none'})")
    for line, row in enumerate(reader, start=2):
        ident = (row.get(column("id")) or "").strip()
        if not ident:
            if kind == "fcd-csv":
                continue  # xml2csv writes a row for a timestep without vehicles, and rows of persons
            raise LogError(f"{path}: line {line}: no id")
        where = f"{path}: line {line}"
        if kind == "fcd-csv":
            t = _sumo_time(row[time_column], where)
            angle = _number(row.get("vehicle_angle"), where, "vehicle_angle")
            heading = math.radians(90.0 - angle) if math.isfinite(angle) else math.nan
        else:
            t = _number(row[time_column], where, time_column)
            if time_column == "frame":
                t = t / float(frame_rate_hz)
            heading = _number(row.get("heading"), where, "heading")
        values = {"x": _number(row.get(column("x")), where, "x"), "y": _number(row.get(column("y")), where, "y"),
                  "heading": heading, "speed": _number(row.get(column("speed")), where, "speed"),
                  "acceleration": _number(row.get(column("acceleration")), where, "acceleration"),
                  "lane": row.get(column("lane")) or "", "vtype": row.get(column("type")) or "",
                  "leader": row.get("vehicle_leaderID" if kind == "fcd-csv" else "leader") or "",
                  "gap": _number(row.get("vehicle_leaderGap" if kind == "fcd-csv" else "gap"), where, "gap")}
        if kind == "fcd-csv":
            values["pos"] = _number(row.get("vehicle_pos"), where, "vehicle_pos")
        else:
            values["length"] = _number(row.get("length"), where, "length")
            values["width"] = _number(row.get("width"), where, "width")
        if not (math.isfinite(values["x"]) and math.isfinite(values["y"])):
            raise LogError(f"{where}: vehicle {ident!r} has no position (x, y must be numbers)")
        rows.add(line, t, ident, values)
    return rows.log(path, "front" if kind == "fcd-csv" else "centre", "line", notes)


# ---- writing -----------------------------------------------------------------------------------
class FcdWriter:
    """SUMO FCD XML written one timestep at a time (valid against SUMO's ``fcd_file.xsd``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = _open_text(self.path, "wt")
        self._fh.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                       '<fcd-export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                       f'xsi:noNamespaceSchemaLocation="{FCD_SCHEMA}">\n')

    def timestep(self, time_s: float, vehicles: Iterable[dict[str, Any]]) -> None:
        """One ``<timestep>``: per vehicle ``id``, ``front_x``, ``front_y`` (the front bumper's
        centre, m), ``angle`` (navigational degrees), ``type``, ``speed`` (m/s), ``pos`` (m),
        ``lane``, ``acceleration`` (m/s^2)."""
        out = [f'    <timestep time="{time_s:.3f}">\n']
        for v in vehicles:
            out.append(f'        <vehicle id="{_escape(v["id"])}" x="{v["front_x"]:.2f}" y="{v["front_y"]:.2f}" '
                       f'angle="{v["angle"]:.2f}" type="{_escape(v["type"])}" speed="{max(v["speed"], 0.0):.2f}" '
                       f'pos="{max(v["pos"], 0.0):.2f}" lane="{_escape(v["lane"])}" slope="0.00" '
                       f'acceleration="{v["acceleration"]:.2f}"/>\n')
        out.append("    </timestep>\n")
        self._fh.write("".join(out))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.write("</fcd-export>\n")
            self._fh.close()


class TrajectoryCsvWriter:
    """The highD-style CSV (``CSV_COLUMNS``) written one frame at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = _open_text(self.path, "wt")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(CSV_COLUMNS)

    def frame(self, frame: int, time_s: float, vehicles: Iterable[dict[str, Any]]) -> None:
        """One frame's rows; a vehicle's dict has the ``CSV_COLUMNS`` but ``frame`` and ``time_s``
        (``x``, ``y``: the vehicle's middle)."""
        for v in vehicles:
            self._writer.writerow((frame, f"{time_s:.3f}", v["id"], f"{v['x']:.3f}", f"{v['y']:.3f}",
                                   f"{v['heading']:.5f}", f"{v['speed']:.3f}", f"{v['acceleration']:.3f}", v["lane"],
                                   v["leader"], "" if not math.isfinite(v["gap"]) else f"{v['gap']:.3f}", v["type"],
                                   f"{v['length']:.2f}", f"{v['width']:.2f}"))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
