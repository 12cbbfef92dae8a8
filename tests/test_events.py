"""The retrain events contract (knyang_cam.events): what train.retrain writes, the app reads back."""
from __future__ import annotations

import io

import pytest

from knyang_cam import events


def written(event: dict) -> str:
    stream = io.StringIO()
    events.write(event, stream)
    return stream.getvalue()


@pytest.mark.parametrize("event", [
    events.progress("features", "features (train): 3/18 new"),
    events.done("models/v1-retrained-1", True, "validation accuracy 0.9 vs current 0.8 (accepted)",
                classes=["Alpha", "Beta"], seconds=1.5),
    events.done("models/v1-retrained-1-refused", False, "refused: worse"),
    events.error("model directory not found: nope"),
])
def test_every_event_round_trips_as_one_line(event):
    line = written(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert events.parse(line) == event


def test_done_keeps_the_details_and_stringifies_the_path(tmp_path):
    event = events.parse(written(events.done(tmp_path / "new", 1, "ok", features_computed=7)))
    assert event["out"] == str(tmp_path / "new") and event["accepted"] is True
    assert event["features_computed"] == 7


def test_non_ascii_text_survives():
    assert events.parse(written(events.progress("head", "나비: epoch 3/150")))["text"] == "나비: epoch 3/150"


@pytest.mark.parametrize("line", [
    "", "2026-11-25 16:00:00 I tensorflow: some log line\n", "[1, 2]\n", '"done"\n',
    '{"event": "done", "out": "x", "accepted": true}\n',  # a torn done event: no reason
    '{"event": "progress", "phase": "head"}\n',
    '{"event": "error", "message": 3}\n',
    '{"event": "finished", "message": "x"}\n',
    '{"event": ["done"], "message": "x"}\n',
    '{"text": "no kind"}\n',
])
def test_lines_that_are_not_events_parse_to_none(line):
    assert events.parse(line) is None
