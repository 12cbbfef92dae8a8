"""The recorded-video report (`--report DIR`): who was seen when, and which frames to label next.

`close()` writes three files:
- `appearances.csv`: cat, start_s, end_s, frames, mean_confidence. An appearance
  is a run of frames in which the cat is the label of some region; absences up
  to `gap_s` (0.5 s) do not end it, so a blink of "unknown" does not split a
  visit. `end_s` is the time of its last frame plus one frame (1 / fps), so 30
  frames at 30 FPS last 1.0 s.
- `timeline.png`: one lane per cat plus one for "unknown", shaded where it was
  seen (each frame until the next), opacity = confidence.
- `least_confident.png`: a contact sheet of the `keep` least confident frames
  (a frame's confidence is its least confident region), at most one per
  `spacing_s` of video, since neighbouring frames look alike.

Memory stays bounded: per frame only its time (4 bytes) and a time and a confidence
per label (8 bytes each) are kept, and thumbnails only for the `keep` current candidates.
"""
from __future__ import annotations

import csv
import heapq
import io
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_bytes
from .overlay import UNKNOWN_COLOUR, label_colour
from .results import UNKNOWN, Prediction
from .text import fit, put_text, text_width, widest

THUMB = (240, 180)  # contact sheet tile (width, height), the frame letterboxed into it
SHEET_COLUMNS = 4
CSV_HEADER = ("cat", "start_s", "end_s", "frames", "mean_confidence")


@dataclass
class _Run:
    start_s: float
    last_s: float
    frames: int = 0
    conf_sum: float = 0.0


@dataclass(order=True)
class _Candidate:
    """A kept frame; heap order puts the most confident first, the one to drop."""

    neg_conf: float
    frame_index: int
    time_s: float = field(compare=False)
    thumb: np.ndarray = field(compare=False, repr=False)
    caption: str = field(compare=False)


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError("OpenCV could not encode a PNG")
    return data.tobytes()


class VideoReport:
    """One run's `--report`: `add` each frame, `close` writes appearances.csv, timeline.png, least_confident.png."""

    def __init__(self, out_dir, classes: Sequence[str], fps: float, keep: int = 12,
                 gap_s: float = 0.5, spacing_s: float = 1.0):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.out_dir = Path(out_dir)
        self.classes = tuple(classes)
        self.fps = float(fps)
        self.keep = keep
        self.gap_s = gap_s
        self.spacing_s = spacing_s
        self.frames = 0
        self.last_time_s = 0.0
        lanes = self.classes + (UNKNOWN,)
        self._seen_t = {c: array("f") for c in lanes}  # per lane: times seen ...
        self._seen_c = {c: array("f") for c in lanes}  # ... and the confidence then
        self._frame_t = array("f")  # every frame's time: a sighting lasts until the next frame
        self._open: dict[str, _Run] = {}
        self._runs: list[tuple[str, _Run]] = []
        self._heap: list[_Candidate] = []
        self._paths: dict[str, Path] | None = None

    def add_classes(self, classes: Sequence[str]) -> None:
        """Give lanes to the classes of a model swapped in during the run."""
        for c in classes:
            if c not in self._seen_t:
                self.classes += (c,)
                self._seen_t[c], self._seen_c[c] = array("f"), array("f")

    def add(self, frame_index: int, time_s: float, frame: np.ndarray,
            predictions: Sequence[Prediction]) -> None:
        """Record one processed frame (BGR) and its final predictions."""
        self.frames += 1
        self.last_time_s = max(self.last_time_s, time_s)
        self._frame_t.append(time_s)
        best: dict[str, float] = {}  # per label, the most confident region of this frame
        for p in predictions:
            best[p.label] = max(best.get(p.label, 0.0), p.confidence)
        for label, conf in best.items():
            if label not in self._seen_t:
                continue  # a label from another model; the report is for this one's classes
            self._seen_t[label].append(time_s)
            self._seen_c[label].append(conf)
            if label != UNKNOWN:
                self._extend_run(label, time_s, conf)
        self._close_runs(time_s)
        if predictions:
            self._offer(frame_index, time_s, frame, predictions)

    def _extend_run(self, cat: str, time_s: float, conf: float) -> None:
        run = self._open.get(cat)
        if run is None:
            run = self._open[cat] = _Run(time_s, time_s)
        run.last_s = time_s
        run.frames += 1
        run.conf_sum += conf

    def _close_runs(self, now_s: float | None) -> None:
        """End the runs not seen for more than gap_s (all of them when `now_s` is None)."""
        for cat in list(self._open):
            run = self._open[cat]
            if now_s is None or now_s - run.last_s > self.gap_s + 1e-9:
                self._runs.append((cat, self._open.pop(cat)))

    def _offer(self, frame_index: int, time_s: float, frame: np.ndarray,
               predictions: Sequence[Prediction]) -> None:
        conf = min(p.confidence for p in predictions)
        if len(self._heap) >= self.keep and conf >= -self._heap[0].neg_conf:
            return
        # Kept frames closer than spacing_s in time are one scene: keep its least confident frame.
        near = [c for c in self._heap if abs(c.time_s - time_s) < self.spacing_s]
        if any(-c.neg_conf <= conf for c in near):
            return
        if near:
            drop = {id(c) for c in near}
            self._heap = [c for c in self._heap if id(c) not in drop]
            heapq.heapify(self._heap)
        # Only frames that make the cut are shrunk and copied.
        cand = _Candidate(-conf, frame_index, time_s, _thumbnail(frame, predictions, self.classes),
                          _caption(frame_index, time_s, predictions))
        if len(self._heap) >= self.keep:
            heapq.heapreplace(self._heap, cand)
        else:
            heapq.heappush(self._heap, cand)

    def appearances(self) -> list[tuple[str, float, float, int, float]]:
        """(cat, start_s, end_s, frames, mean_confidence), by start time; open runs included."""
        runs = self._runs + list(self._open.items())
        rows = [(cat, r.start_s, r.last_s + 1.0 / self.fps, r.frames, r.conf_sum / r.frames)
                for cat, r in runs]
        return sorted(rows, key=lambda r: (r[1], self.classes.index(r[0])))

    def close(self, before_writing=lambda: None) -> dict[str, Path]:
        """Write the report files and return their paths; later calls only return them.

        Every file is drawn before the first is written, and each is written atomically, so a failure
        or a signal while drawing leaves the folder as it was; `before_writing` runs in between.
        """
        if self._paths is not None:
            return self._paths
        self._close_runs(None)
        files = {"appearances.csv": self._csv().encode("utf-8"),
                 "timeline.png": _png(self._timeline()),
                 "least_confident.png": _png(self._contact_sheet())}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        before_writing()
        for name, data in files.items():
            write_bytes(self.out_dir / name, data)
        self._paths = {name.split(".")[0]: self.out_dir / name for name in files}
        return self._paths

    def _csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_HEADER)
        for cat, start, end, frames, conf in self.appearances():
            w.writerow((cat, f"{start:.3f}", f"{end:.3f}", frames, f"{conf:.3f}"))
        return buf.getvalue()

    def _timeline(self) -> np.ndarray:
        """One lane per cat (and "unknown"): shaded where it was seen, opacity = confidence.

        Drawn with OpenCV, like the overlay, so `--report` needs nothing beyond the base install.
        """
        lanes = self.classes + (UNKNOWN,)
        duration = max(self.last_time_s + 1.0 / self.fps, 1.0 / self.fps)
        px, lane_h, width = 13, 34, 1000
        # A class name is a folder name, up to 255 characters: the name column takes at most a third of
        # the picture and a longer name is shortened (a wider column left the plot no room at all).
        name_room = min(widest(lanes, px), width // 3)
        names = {lane: fit(lane, px, name_room) for lane in lanes}
        name_w = name_room + 24
        x0, y0, plot_w = name_w, 44, width - name_w - 24
        height = y0 + lane_h * len(lanes) + 56
        bins = int(min(plot_w, max(1, round(duration * self.fps))))
        frame_t = np.frombuffer(self._frame_t, np.float32)

        def to_bin(t: np.ndarray) -> np.ndarray:
            return np.clip((t / duration * bins + 1e-3).astype(int), 0, bins - 1)  # float32 times

        img = np.full((height, width, 3), 255, np.uint8)
        put_text(img, f"Who was seen when ({self.frames} frames; opacity = confidence)", x0, 26, px,
                 (30, 30, 30), bold=True)
        for i, lane in enumerate(lanes):
            colour = np.array(label_colour(lane, self.classes) if lane != UNKNOWN else UNKNOWN_COLOUR,
                              np.float32)
            # One bin per frame (at most one per pixel), stretched to the plot: no gaps between frames.
            alpha = np.zeros(bins, np.float32)
            times = np.frombuffer(self._seen_t[lane], np.float32)
            if len(times):
                conf = np.frombuffer(self._seen_c[lane], np.float32)
                idx = to_bin(times)
                np.maximum.at(alpha, idx, conf)
                # A frame is on screen until the next one, as the summary and the appearances count it: a pause
                # in a variable-rate video (a screen recording) left the lane blank where the cat stayed.
                after = np.searchsorted(frame_t, times, side="right")
                ends = np.where(after < len(frame_t), to_bin(frame_t[np.minimum(after, len(frame_t) - 1)]), idx)
                for k in np.nonzero(ends > idx + 1)[0]:
                    alpha[idx[k]:ends[k]] = np.maximum(alpha[idx[k]:ends[k]], conf[k])
            alpha = alpha[np.arange(plot_w) * bins // plot_w]
            top = y0 + i * lane_h
            row = 255 * (1 - alpha[:, None]) + colour[None] * alpha[:, None]
            img[top + 2:top + lane_h - 2, x0:x0 + plot_w] = row.astype(np.uint8)[None]
            put_text(img, names[lane], x0 - widest([names[lane]], px) - 12, top + (lane_h + px) // 2, px,
                     (30, 30, 30))
            cv2.line(img, (x0, top + lane_h), (x0 + plot_w - 1, top + lane_h), (221, 221, 221), 1)
        bottom = y0 + lane_h * len(lanes)
        cv2.rectangle(img, (x0, y0), (x0 + plot_w - 1, bottom), (120, 120, 120), 1)
        step = _tick_step(duration)
        for k in range(int(duration / step) + 1):
            x = x0 + round(k * step / duration * (plot_w - 1))
            cv2.line(img, (x, bottom), (x, bottom + 5), (120, 120, 120), 1)
            label = f"{k * step:g}"
            put_text(img, label, x - widest([label], 11) // 2, bottom + 20, 11, (60, 60, 60))
        caption = "time in the video (s)"
        put_text(img, caption, x0 + (plot_w - widest([caption], px)) // 2, bottom + 44, px, (30, 30, 30))
        return img

    def _contact_sheet(self) -> np.ndarray:
        tw, th = THUMB
        cap_h = 26
        chosen = sorted(self._heap, key=lambda c: (-c.neg_conf, c.frame_index))
        if not chosen:
            sheet = np.full((th + cap_h, tw, 3), 40, np.uint8)
            put_text(sheet, "no frames with a region", 10, th // 2, 12, (230, 230, 230))
            return sheet
        cols = min(SHEET_COLUMNS, len(chosen))
        rows = -(-len(chosen) // cols)
        sheet = np.full((rows * (th + cap_h), cols * tw, 3), 30, np.uint8)
        for k, cand in enumerate(chosen):
            r, c = divmod(k, cols)
            x, y = c * tw, r * (th + cap_h)
            sheet[y:y + th, x:x + tw] = cand.thumb
            # Long names get a smaller type rather than a cut-off percentage; one too long even
            # then is shortened before its percentage.
            px = max(6, min(11, 11 * (tw - 8) // max(1, text_width(cand.caption, 11))))
            head, pct = cand.caption.rsplit(" ", 1)
            put_text(sheet, fit(head, px, tw - 8, suffix=" " + pct), x + 4, y + th + 18, px, (235, 235, 235))
            cv2.rectangle(sheet, (x, y), (x + tw - 1, y + th + cap_h - 1), (80, 80, 80), 1)
        return sheet


def _caption(frame_index: int, time_s: float, predictions: Sequence[Prediction]) -> str:
    worst = min(predictions, key=lambda p: p.confidence)
    return f"#{frame_index}  {time_s:.1f} s  {worst.label} {worst.confidence * 100:.0f}%"


def _thumbnail(frame: np.ndarray, predictions: Sequence[Prediction], classes) -> np.ndarray:
    """The frame letterboxed into THUMB, with each region's box in its label's colour."""
    tw, th = THUMB
    h, w = frame.shape[:2]
    s = min(tw / w, th / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    thumb = np.zeros((th, tw, 3), np.uint8)
    ox, oy = (tw - nw) // 2, (th - nh) // 2
    thumb[oy:oy + nh, ox:ox + nw] = small
    for p in predictions:
        bx, by, bw, bh = p.region.box
        p0 = (ox + round(bx * s), oy + round(by * s))
        p1 = (ox + round((bx + bw) * s) - 1, oy + round((by + bh) * s) - 1)
        cv2.rectangle(thumb, p0, p1, label_colour(p.label, classes), 2)
    return thumb


def _tick_step(duration: float) -> float:
    """1, 2 or 5 times a power of ten: about eight ticks along `duration` seconds."""
    raw = max(duration / 8, 1e-3)
    power = 10 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
