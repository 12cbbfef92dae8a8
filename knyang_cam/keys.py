"""The keys: a key provider's codes -> the action each asks for, and what the keys change (Controls).

A key provider is a callable like `cv2.waitKeyEx(delay_ms) -> code or -1`, so tests drive every key
without a display.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .results import NOT_MINE, UNLABELED

KEY_ESC = 27
KEY_ENTER = (10, 13)
KEY_BACKSPACE = (8, 127)
# cv2.waitKeyEx's codes beyond ASCII. X11 windows give keysyms (GTK adds the modifiers above bit 16): the
# editing keys are mapped to their ASCII codes, the rest (arrows, F keys) do nothing, where their low byte
# would have typed a letter (Left is 0xFF51, 'Q'). OpenCV's Qt window (opencv-python's on Linux) gives every
# letter in lower case, Shift held or not, and Shift itself as a key: it makes the next typed letter a capital.
X11_KEYS = {0xFF08: 8, 0xFF0D: 13, 0xFF8D: 13, 0xFF1B: KEY_ESC}
KEY_SHIFT = (0xFFE1, 0xFFE2)

KeyProvider = Callable[[int], int]


def scripted(keys: Iterable) -> KeyProvider:
    """A key provider that replays `keys` (characters or codes, -1 = none), then -1 forever."""
    codes = iter([ord(k) if isinstance(k, str) else int(k) for k in keys])

    def provider(delay_ms: int) -> int:
        if delay_ms > 1:
            time.sleep(delay_ms / 1000)
        return next(codes, -1)

    return provider


def no_keys(delay_ms: int) -> int:
    """The key provider without a window: waits `delay_ms` like cv2.waitKeyEx and never has a key (-1)."""
    if delay_ms > 1:
        time.sleep(delay_ms / 1000)
    return -1


@dataclass
class Controls:
    """What the keys change."""

    crop_mode: str
    bars: bool
    help: bool = False
    paused: bool = False
    quit: bool = False
    typing: str | None = None  # the new cat's name while `n` collects it
    shift: bool = False  # the last key was Shift (KEY_SHIFT): the next letter typed is a capital
    toast: str = ""
    toast_until: float = 0.0

    def notify(self, message: str, seconds: float) -> None:
        """Show `message` as the toast for `seconds`; an empty message leaves the current toast."""
        if message:
            self.toast, self.toast_until = message, time.monotonic() + seconds


@dataclass(frozen=True)
class Action:
    """What a key asks for: `do` names it; `arg` is a class index, a folder name or a typed character."""

    do: str
    arg: object = None


KEY_ACTIONS = {ord(" "): "pause", ord("b"): "bars", ord("h"): "help", ord("c"): "crop", ord("n"): "new_cat",
           ord("t"): "retrain", ord("s"): "snapshot"}
SET_ASIDE = {ord("u"): UNLABELED, ord("x"): NOT_MINE}


def handle_key(key: int, ui: Controls) -> Action | None:
    """The action `key` asks for, or None; while a new cat's name is typed, keys edit the name."""
    if key == -1:
        return None
    key = X11_KEYS.get(key & 0xFFFF, key & 0xFFFF)
    if key in KEY_SHIFT:
        return Action("shift")
    if key > 0xFF:
        return None
    if ui.typing is not None:
        if key in KEY_ENTER:
            return Action("add_class")
        if key == KEY_ESC:
            return Action("cancel_typing")
        if key in KEY_BACKSPACE:
            return Action("backspace")
        return Action("type", chr(key)) if 32 <= key < 127 else None
    if ord("A") <= key <= ord("Z"):
        # Caps Lock (or Shift) gives the capital, which no key means: 'Q' quits as 'q' does.
        key += ord("a") - ord("A")
    if key in (ord("q"), KEY_ESC):
        return Action("quit")
    if key in KEY_ACTIONS:
        return Action(KEY_ACTIONS[key])
    if key in SET_ASIDE:
        return Action("set_aside", SET_ASIDE[key])
    if ord("1") <= key <= ord("9"):
        return Action("label", key - ord("1"))
    return None
