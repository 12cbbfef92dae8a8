"""Never destroy what the user had (issue 10): every path the program writes, walked against every
input and every other output, checked before any work starts; each refusal is one line."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from knyang_cam import atomic, model_out, paths
from knyang_cam.atomic import atomic_path, mark_work, temp_beside
from knyang_cam.dataset import Saver
from knyang_cam.paths import Input, PathError, UnsafeName

ROOT = Path(__file__).resolve().parent.parent


def refused(fn, *args, **kw) -> str:
    """The one-line message of a PathError raised by fn(*args)."""
    with pytest.raises(PathError) as e:
        fn(*args, **kw)
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def world(tmp_path):
    """A user's files: a source video, a folder of photos, a config, a model directory, earlier outputs."""
    files = {
        "video": tmp_path / "in.mp4",
        "config": tmp_path / "c.yaml",
        "earlier_video": tmp_path / "earlier.mp4",
        "earlier_log": tmp_path / "earlier.jsonl",
    }
    for name, path in files.items():
        path.write_bytes(f"{name} bytes".encode())
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"photo")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    (model / "model.tflite").write_bytes(b"net")
    return tmp_path, files, photos, model


# ---------------------------------------------------------------- app: outputs against inputs and each other

def test_each_output_onto_each_input_is_refused(world):
    _, files, photos, model = world
    inputs = [Input("--source", files["video"]), Input("--config", files["config"]),
              Input("--model", model, folder=True)]
    targets = {"--output": [files["video"].with_suffix(".mp4")],
               "--log": [files["video"], files["config"], model / "model.json", model / "model.tflite"]}
    for flag, victims in targets.items():
        for victim in victims:
            line = refused(paths.check_app, inputs, **{flag.lstrip("-"): victim})
            assert str(victim) in line or victim.name in line, line
    assert "--source" in refused(paths.check_app, [Input("--source", photos, folder=True)], log=photos / "a.jpg")
    assert "--model folder" in refused(paths.check_app, inputs, report=model)
    assert "--source folder" in refused(paths.check_app, [Input("--source", photos, folder=True)], report=photos)
    for name, path in files.items():
        assert path.read_bytes() == f"{name} bytes".encode()


def test_every_output_onto_every_other_path_is_refused_however_spelled(tmp_path):
    """The walk: each output (--output, --log, --report) onto each other path of a run (the source,
    the config, the model directory and its files, the other outputs), named directly and through
    a symlinked folder; the run with all paths apart passes."""
    base = {"source": tmp_path / "s.mp4", "config": tmp_path / "c.yaml", "model": tmp_path / "m",
            "output": tmp_path / "o.mp4", "log": tmp_path / "l.jsonl", "report": tmp_path / "r"}
    base["source"].write_bytes(b"video")
    base["config"].write_text("app: {}\n")
    base["model"].mkdir()
    (base["model"] / "model.json").write_text("{}")
    base["report"].mkdir()
    paths.mark_report(base["report"])
    landing = {"source": [base["source"]], "config": [base["config"]],
               "model": [base["model"], base["model"] / "model.json"], "output": [base["output"]],
               "log": [base["log"]], "report": [base["report"], base["report"] / "appearances.csv"]}
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path, target_is_directory=True)

    def check(p):
        inputs = [Input("--source", p["source"]), Input("--config", p["config"]),
                  Input("--model", p["model"], folder=True)]
        return paths.check_app(inputs, output=p["output"], log=p["log"], report=p["report"])

    check(base)
    cases = 0
    for role in ("output", "log", "report"):
        for other, targets in landing.items():
            if other == role:
                continue
            for target in targets:
                for spelled in (target, alias / target.relative_to(tmp_path)):
                    refused(check, {**base, role: spelled})
                    cases += 1
    assert cases == 2 * (7 + 7 + 6)  # every landing place of the other five roles, two spellings each


def test_outputs_onto_each_other_are_refused_in_every_pair(tmp_path):
    report = tmp_path / "rep"
    spellings = {"output": tmp_path / "x.mp4", "log": tmp_path / "x.mp4"}
    assert "--output and --log are the same file" in refused(paths.check_app, [], **spellings)
    # The log onto one of the report's files, by name, through a symlinked folder, and by a hard link.
    (tmp_path / "alias").symlink_to(report, target_is_directory=True)
    report.mkdir()
    for log in (report / "appearances.csv", tmp_path / "alias" / "timeline.png"):
        assert "same file" in refused(paths.check_app, [], log=log, report=report)
    (tmp_path / "a.mp4").write_bytes(b"v")
    os.link(tmp_path / "a.mp4", tmp_path / "b.mp4")
    assert "same file" in refused(paths.check_app, [], output=tmp_path / "a.mp4", log=tmp_path / "b.mp4")
    # Distinct names pass, in every combination.
    distinct = {"output": tmp_path / "o.mp4", "log": tmp_path / "l.jsonl", "report": tmp_path / "r"}
    for n in range(4):
        for keys in itertools.combinations(distinct, n):
            paths.check_app([], **{k: distinct[k] for k in keys})


def test_a_report_folder_inside_a_folder_the_app_reads_is_refused(world):
    # The report writes PNGs: inside a dataset's class folder the next training learns them as that cat.
    tmp, _, photos, model = world
    dataset = tmp / "data"
    (dataset / "Train" / "Leo").mkdir(parents=True)
    inputs = [Input("--source", photos, folder=True), Input("--model", model, folder=True),
              Input("dataset (app.dataset_root)", dataset, folder=True)]
    for report, words in ((dataset / "Train" / "Leo", "dataset"), (model / "report", "--model"),
                          (photos / "rep", "--source")):
        line = refused(paths.check_app, inputs, report=report)
        assert f"inside the {words}" in line, line
    assert not list((dataset / "Train" / "Leo").iterdir()) and not (model / "report").exists()
    paths.check_app(inputs, report=tmp / "rep")  # beside them, not in them


def test_an_input_reached_through_a_symlink_or_hard_link_is_still_the_input(world):
    tmp, files, _, _ = world
    (tmp / "link.mp4").symlink_to(files["video"])
    os.link(files["config"], tmp / "hard.yaml")
    inputs = [Input("--source", tmp / "link.mp4"), Input("--config", tmp / "hard.yaml")]
    assert "--source" in refused(paths.check_app, inputs, output=files["video"])
    assert "--config" in refused(paths.check_app, inputs, log=files["config"])


@pytest.mark.parametrize("name, words", [
    ("", "is empty"), ("out", "no extension"), ("out.txt", "extension '.txt'"),
    ("run.jsonl", "extension '.jsonl': use one of .mp4, .m4v, .mov, .avi, .mkv (--log writes the prediction log)"),
    ("folder", "is a folder"), ("/dev/full", "not a regular file"), ("blocker/o.mp4", "is a file, not a folder")])
def test_unusable_video_paths_are_one_line(tmp_path, name, words):
    (tmp_path / "folder").mkdir()
    (tmp_path / "blocker").write_text("x")
    path = name if name.startswith("/") or not name else tmp_path / name
    assert words in refused(paths.check_app, [], output=path)


def test_every_supported_video_suffix_passes(tmp_path):
    for suffix in paths.VIDEO_SUFFIXES:
        paths.check_app([], output=tmp_path / f"o{suffix}")


def test_a_log_may_be_a_stream_but_a_video_may_not(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert paths.check_app([], log=tmp_path / "pipe").log == tmp_path / "pipe"
    assert paths.check_app([], log="/dev/full").log == Path("/dev/full")
    assert "not a regular file" in refused(paths.check_app, [], output="/dev/full")


def test_a_log_to_a_redirected_stdout_is_written_through_the_descriptor(tmp_path):
    # `--log /dev/stdout > run.txt`: /dev/stdout leads to a regular file; replacing it through a temporary
    # file beside it meant a file renamed over /dev/stdout (as root), or a refusal.
    from knyang_cam.sinks import JsonlLog

    target = tmp_path / "run.txt"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        (tmp_path / "mylog").symlink_to(f"/dev/fd/{fd}")
        for name in (f"/dev/fd/{fd}", f"/proc/self/fd/{fd}", tmp_path / "mylog"):
            assert paths.descriptor(name) == fd
            assert paths.check_app([], log=name).log == Path(name)
        os.write(fd, b"start\n")
        with JsonlLog(f"/dev/fd/{fd}") as log:
            log.write({"frame": 0})
            os.write(fd, b"between\n")  # the app's own lines share the descriptor: none overwrites another
            log.write({"frame": 1})
        os.write(fd, b"end\n")
    finally:
        os.close(fd)
    assert target.read_text() == 'start\n{"frame": 0}\nbetween\n{"frame": 1}\nend\n'
    assert paths.descriptor("/dev/stdout") == 1 and paths.descriptor(target) is None


def test_a_closed_descriptor_or_a_video_to_one_is_refused():
    fd = os.open(os.devnull, os.O_WRONLY)
    os.close(fd)
    assert f"descriptor {fd}, which is not open" in refused(paths.check_app, [], log=f"/dev/fd/{fd}")
    assert "names a descriptor, not a file" in refused(paths.check_app, [], output="/dev/fd/2")


def test_no_output_lands_where_a_glob_source_would_read_it(tmp_path):
    # `--source 'shots/*.png' --report shots` was let through once; the next run read the report's pictures
    # as photos, or refused them as its inputs in a line that did not say why.
    shots = tmp_path / "shots"
    shots.mkdir()
    (shots / "a.png").write_bytes(b"png")
    spec = str(shots / "*.png")
    assert "timeline.png is one of the files --source" in refused(paths.check_app, paths.source_inputs(spec),
                                                                report=shots)
    assert "is one of the files" in refused(paths.check_app, paths.source_inputs(str(shots / "*")),
                                            log=shots / "run.jsonl")
    paths.check_app(paths.source_inputs(spec), output=shots / "run.mp4", log=shots / "run.jsonl",
                    report=shots / "report")  # out of the glob's reach: *.png does not go into folders
    assert not paths.matches(Path("photos/*/*.jpg"), Path("photos/report/timeline.png"))


def test_report_folder_holds_only_what_the_app_wrote(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "appearances.csv").write_text("the user's own table")
    assert "appearances.csv" in refused(paths.check_app, [], report=mine)
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in refused(paths.check_app, [], report=tmp_path / "file")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "timeline.png").write_bytes(b"png")
    paths.mark_report(ours)  # written by an earlier run: replacing it is fine
    paths.check_app([], report=ours)
    (ours / "appearances.csv").mkdir()  # even in a folder of ours, a folder is not replaced by a file
    assert "appearances.csv is a folder or a device" in refused(paths.check_app, [], report=ours)
    assert (mine / "appearances.csv").read_text() == "the user's own table"


def test_a_report_folder_named_like_a_video_or_log_is_taken_for_the_wrong_flag(tmp_path):
    # `--report out.mp4` made a folder named out.mp4 where the user wanted the annotated video.
    assert "give --output" in refused(paths.check_app, [], report=tmp_path / "out.mp4")
    assert "give --log" in refused(paths.check_app, [], report=tmp_path / "run.JSONL")
    assert not (tmp_path / "out.mp4").exists()
    paths.check_app([], report=tmp_path / "report.2026-12-07")  # a dotted folder name is a folder name
    (tmp_path / "old.mp4").mkdir()  # a folder of that name already there is a folder: it may hold a report
    paths.check_app([], report=tmp_path / "old.mp4")


def test_an_unwritable_report_place_is_found_before_any_frame(tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in refused(paths.check_app, [], report=tmp_path / "f" / "rep")
    with pytest.raises(PathError):
        paths.make_folder("--report", Path("/proc/knyang-cam-report"))


# ---------------------------------------------------------------- model directories

@pytest.fixture
def dataset(tmp_path):
    data = tmp_path / "data"
    for cat in ("A", "B"):
        (data / cat).mkdir(parents=True)
        (data / cat / "1.jpg").write_bytes(b"photo")
    return data


def test_model_out_never_overlaps_the_dataset(tmp_path, dataset):
    for out in (dataset, dataset / "A", dataset / "models" / "m", tmp_path):
        assert "overlaps --data" in refused(model_out.check_model_out, out, data=dataset)
    link = tmp_path / "link"
    link.symlink_to(dataset, target_is_directory=True)
    assert "overlaps --data" in refused(model_out.check_model_out, link, data=dataset)
    assert model_out.check_model_out(tmp_path / "models" / "m", data=dataset) == (tmp_path / "models" / "m").resolve()


def test_model_out_replaces_only_a_model_directory_or_an_empty_folder(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert "not a model directory" in refused(model_out.check_model_out, user)
    (tmp_path / "file").write_text("x")
    assert "is a file" in refused(model_out.check_model_out, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    model_out.check_model_out(tmp_path / "empty")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    model_out.check_model_out(model)
    weights = model / "w.weights.h5"
    weights.write_bytes(b"w")
    assert "--weights" in refused(model_out.check_model_out, model, inputs=[Input("--weights", weights)])
    # A model.json does not make a folder of user files replaceable.
    (model / "photos").mkdir()
    assert "holds photos, w.weights.h5 beside its model" in refused(model_out.check_model_out, model)
    assert (user / "notes.txt").read_text() == "keep me"


def test_a_model_report_folder_holds_what_training_writes():
    from train import report

    assert set(model_out.MODEL_REPORT_FILES) == {report.METRICS_FILE, report.CONFUSION_FILE, report.CURVES_FILE,
                                                 report.MISCLASSIFIED_FILE}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftover(folder: Path) -> Path:
    """A staging or set-aside folder as a killed training leaves it: marked, a model's files only."""
    (folder / "report").mkdir(parents=True)
    (folder / "model.json").write_text("{}")
    mark_work(folder)
    return folder


@pytest.mark.parametrize("where", ["marking the old", "renaming the new in"])
def test_ctrl_c_between_the_renames_of_a_swap_puts_the_old_model_back(tmp_path, monkeypatch, where):
    target, staging = tmp_path / "m", tmp_path / ".m.staging-1"
    for folder, text in ((target, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "model.json").write_text(text)
    mark_work(staging)
    real_replace, real_mark = os.replace, atomic.mark_work

    def replace(src, dst):
        if where == "renaming the new in" and Path(src) == staging:
            raise KeyboardInterrupt
        real_replace(src, dst)

    def mark(folder):
        if where == "marking the old":
            raise KeyboardInterrupt
        real_mark(folder)

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic, "mark_work", mark)
    with pytest.raises(KeyboardInterrupt):
        atomic.swap_dir(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["model.json"]
    assert (target / "model.json").read_text() == "old"
    assert not list(tmp_path.glob(".m.old-*"))


def test_a_killed_runs_leftovers_are_removed_by_the_next_claim(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "model.json").write_text("{}")
    stale = leftover(tmp_path / f".m.staging-{_dead_pid()}")
    notes = []
    with model_out.claim_model_dir(out, note=notes.append):
        assert not stale.exists()
    assert len(notes) == 1 and str(stale) in notes[0]
    # Beside another model directory (a retrain's, named anew each time): a dead process's only.
    other_dead = leftover(tmp_path / f".m-retrained-1.staging-{_dead_pid()}")
    other_live = leftover(tmp_path / f".m-retrained-2.staging-{os.getppid()}")
    with model_out.claim_model_dir(out, note=notes.append):
        pass
    assert not other_dead.exists() and other_live.exists()
    shutil.rmtree(other_live)
    # Killed between the two renames of the swap: the old model is put back, unmarked.
    gone = tmp_path / "g"
    aside = leftover(tmp_path / ".g.old-123")
    (aside / "model.json").write_text("old")
    with model_out.claim_model_dir(gone, note=notes.append):
        pass
    assert (gone / "model.json").read_text() == "old" and not aside.exists()
    assert sorted(p.name for p in gone.iterdir()) == ["model.json", "report"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "m"]  # the lock files went with the locks


def test_a_training_that_wrote_no_model_leaves_no_folder_it_made(tmp_path):
    """python -m train failing to download its weights (README's --weights imagenet, offline) left an empty
    models/ in the user's folder."""
    out = tmp_path / "models" / "mycats"
    with pytest.raises(RuntimeError), model_out.claim_model_dir(out):
        raise RuntimeError("no weights")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "models").mkdir()  # the user's own folder stays
    with model_out.claim_model_dir(out):
        pass
    assert list(tmp_path.iterdir()) == [tmp_path / "models"]
    with model_out.claim_model_dir(out):
        out.mkdir()
    assert out.is_dir()


def test_recovery_leaves_folders_it_did_not_make_as_they_were(tmp_path):
    """Folders named like a killed training's leftovers but not made by one: a user's, unmarked, or
    marked but holding a user's file; none is removed, restored or changed."""
    out = tmp_path / "mycats"
    dead = _dead_pid()
    users = [tmp_path / f".holiday.staging-{dead}", tmp_path / f".mycats.staging-{dead}",
             tmp_path / ".mycats.old-2023", tmp_path / ".mycats.old-backup"]
    for folder in users:
        folder.mkdir()
        (folder / "photo.txt").write_text("keep me")
    (users[2] / "model.json").write_text("{}")  # a backup of a model the user made by hand
    marked = leftover(tmp_path / f".mycats.old-{dead}")
    (marked / "report" / "notes.txt").write_text("keep me too")
    before = {p: sorted(q.name for q in p.rglob("*")) for p in [*users, marked]}
    for _ in range(2):  # out absent (a restore would happen), then present (a removal would)
        notes = []
        with model_out.claim_model_dir(out, note=notes.append):
            out.mkdir(exist_ok=True)
        assert {p: sorted(q.name for q in p.rglob("*")) for p in before} == before
        assert all("as it is" in n for n in notes) and len(notes) == 3, notes  # the ones named after out
    assert sorted(out.iterdir()) == []


@pytest.mark.slow
def test_a_second_process_on_the_same_model_directory_is_refused(tmp_path):
    out = tmp_path / "m"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from knyang_cam import model_out
        with model_out.claim_model_dir({str(out)!r}):
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = refused(lambda: model_out.claim_model_dir(out).__enter__())
        assert f"pid {holder.pid}" in line and str(out.resolve()) in line
    finally:
        holder.communicate("", timeout=30)
    with model_out.claim_model_dir(out):  # free again once the holder is gone
        pass


# ---------------------------------------------------------------- temporary files

def test_temp_files_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    target = tmp_path / "out.mp4"
    dead = tmp_path / f".out.tmp-{_dead_pid()}-00ff00ff.mp4"
    dead.write_bytes(b"half")
    live = temp_beside(target)  # this process's
    other = tmp_path / ".other.tmp-1-00ff00ff.mp4"
    other.write_bytes(b"not ours to judge")
    assert paths.sweep_temp(target) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def test_atomic_path_keeps_the_earlier_file_on_failure(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "earlier" and [p.name for p in tmp_path.iterdir()] == ["t.json"]


# ---------------------------------------------------------------- dataset saves stay inside the root

def test_plain_child_refuses_names_and_symlinks_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    for name in ("escape", "..", "../x", "a/b", ".hidden", ""):
        with pytest.raises(UnsafeName):
            paths.plain_child(root, name)
    assert paths.plain_child(root, "fine") == root.resolve() / "fine"


@pytest.mark.parametrize("folder", ["unlabeled", "not_mine"])
def test_reserved_folder_linking_out_of_the_root_is_refused(tmp_path, folder):
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / folder).symlink_to(outside, target_is_directory=True)
    with Saver(root, tmp_path / "snaps", ("A", "B")) as saver:
        saver.set_aside(folder, np.zeros((8, 8, 3), np.uint8))
    assert any(m.startswith("not saved:") and folder in m for m in saver.poll())
    assert list(outside.iterdir()) == []


def test_not_mine_crops_land_in_their_reserved_folder(tmp_path):
    with Saver(tmp_path / "data", tmp_path / "snaps", ("A", "B")) as saver:
        saver.set_aside("not_mine", np.full((8, 8, 3), 90, np.uint8))
        assert saver.add_class("unknown").startswith("not added: unknown is a reserved name")
    (saved,) = (tmp_path / "data" / "not_mine").glob("*.jpg")
    assert saved.stat().st_size > 0 and saver.labelled == 0 and saver.classes == ("A", "B")


def test_an_output_name_too_long_for_its_hidden_neighbours_is_refused_before_any_work(tmp_path):
    # A 250-byte --out is a legal name, but its staging folder .NAME.staging-PID is not: both were an
    # OSError traceback ('File name too long').
    longest = "m" * (paths.NAME_MAX - paths.BESIDE_EXTRA)
    assert model_out.check_model_out(tmp_path / longest) == tmp_path / longest
    atomic.write_text(tmp_path / (longest[:-5] + ".json"), "{}")  # the widest hidden name beside it fits
    for check in (model_out.check_model_out, lambda p: paths.check_file("--json", p),
                  lambda p: paths.check_report_dir("--report", p)):
        assert "its name is 250 bytes" in refused(check, tmp_path / ("n" * 245 + ".json"))
        assert refused(check, tmp_path / ("n" * 300) / "m.json").endswith(": File name too long")
