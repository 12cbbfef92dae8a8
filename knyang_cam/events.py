"""The retrain events: the JSON lines `python -m train.retrain` prints and the app's background retrain reads.

One JSON object per line on stdout (docs/contracts.md, "Retrain events"):
`{"event": "progress", "phase": ..., "text": ...}` any number of times, then exactly one of
`{"event": "done", "out": ..., "accepted": ..., "reason": ..., ...}` or `{"event": "error", "message": ...}`.
Both sides use these functions, so the writer and the reader cannot drift apart. No TensorFlow here:
the live app imports this module.
"""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO

PROGRESS, DONE, ERROR = "progress", "done", "error"

# The fields each kind must carry, with their types; a done event may carry more (the retrain's figures).
_REQUIRED: dict[str, dict[str, type]] = {
    PROGRESS: {"phase": str, "text": str},
    DONE: {"out": str, "accepted": bool, "reason": str},
    ERROR: {"message": str},
}


def progress(phase: str, text: str) -> dict:
    """A progress event: `phase` names the stage (features, head, export), `text` is the status line."""
    return {"event": PROGRESS, "phase": phase, "text": text}


def done(out: str, accepted: bool, reason: str, **details: Any) -> dict:
    """The last event of a finished retrain: the model directory written, whether it was accepted, why."""
    return {"event": DONE, "out": str(out), "accepted": bool(accepted), "reason": reason, **details}


def error(message: str) -> dict:
    """The last event of a retrain that ended on a user error (the one line also printed on stderr)."""
    return {"event": ERROR, "message": message}


def write(event: dict, stream: TextIO | None = None) -> None:
    """Print `event` as one JSON line and flush, so the reader sees it at once."""
    print(json.dumps(event), file=stream or sys.stdout, flush=True)


def parse(line: str) -> dict | None:
    """The event on `line`, or None when the line is not a well-formed event (other output, a torn line)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("event")
    fields = _REQUIRED.get(kind) if isinstance(kind, str) else None
    if fields is None or not all(isinstance(event.get(k), t) for k, t in fields.items()):
        return None
    return event
