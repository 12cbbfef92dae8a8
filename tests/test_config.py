import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from knyang_cam import config
from knyang_cam.config import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_repository_config_yaml_equals_defaults():
    assert config.load(config.DEFAULT_CONFIG_FILE) == Config()


def dotted_keys(section, prefix: str = "") -> list[str]:
    """Every leaf key of a config (an instance of its dataclasses), dotted."""
    keys = []
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        keys += dotted_keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return keys


def test_every_key_is_documented_in_config_yaml():
    text = config.DEFAULT_CONFIG_FILE.read_text()
    keys = dotted_keys(Config())
    assert "smoothing.alpha" in keys and "train.seed" in keys and "smoothing" not in keys
    for key in keys:
        name = key.split(".")[-1]
        line = next((row for row in text.splitlines() if row.strip().startswith(name + ":")), None)
        assert line is not None, key
        assert "#" in line, f"{key} has no comment in config.yaml"


def test_unknown_key_names_dotted_key_and_suggestion(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("smoothing:\n  alpah: 0.5\n")
    with pytest.raises(ConfigError, match=r"'smoothing.alpah'.*did you mean 'smoothing.alpha'"):
        config.load(p)


@pytest.mark.parametrize("text, suggested", [("smoothng:\n  alpha: 0.5\n", "smoothing"),  # read 'smoothing.hold'
                                             ("overlays:\n  bars: false\n", "overlay"),
                                             ("unknown_threshhold: 0.5\n", "smoothing.unknown_threshold")])
def test_a_misspelt_section_suggests_the_section_and_a_stray_key_the_key(tmp_path, text, suggested):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=rf"; did you mean '{re.escape(suggested)}'\?$"):
        config.load(p)


def test_wrong_type_names_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\n  fps: fast\n")
    with pytest.raises(ConfigError, match=r"'camera.fps' must be an integer"):
        config.load(p)


def test_out_of_range_names_key_and_range(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("smoothing:\n  alpha: 3\n")
    with pytest.raises(ConfigError, match=r"'smoothing.alpha' = 3.0 is out of range \[0.01, 1.0\]"):
        config.load(p)


def test_bad_choice(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("regions:\n  crop: face\n")
    with pytest.raises(ConfigError, match=r"'regions.crop' must be one of center, detect"):
        config.load(p)


def test_invalid_yaml_names_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\n  fps: 30\n  width: [1, 2\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in .* at line \d+"):
        config.load(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")


def test_partial_file_keeps_other_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\n  fps: 15\n")
    cfg = config.load(p)
    assert cfg.camera.fps == 15
    assert cfg.camera.width == Config().camera.width
    assert cfg.smoothing == Config().smoothing


def test_override_validates():
    cfg = config.override(Config(), **{"regions.crop": "detect", "camera.fps": None})
    assert cfg.regions.crop == "detect" and cfg.camera.fps == 30
    with pytest.raises(ConfigError, match="regions.crop"):
        config.override(Config(), **{"regions.crop": "nose"})


def test_with_values_sets_null_where_a_key_allows_it():
    # What a bench's `--set regions.centre_view=null` does: override() would skip it as a flag not given.
    cfg = config.with_values(Config(), {"regions.centre_view": None, "smoothing.unknown_threshold": 0.7})
    assert cfg.regions.centre_view is None and cfg.smoothing.unknown_threshold == 0.7
    with pytest.raises(ConfigError, match="regions.zooms"):
        config.with_values(Config(), {"regions.zooms": None})


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().camera.fps = 3


@pytest.mark.parametrize("text, words", [
    ("smoothing:\n  alpha: " + "9" * 400 + "\n", r"'smoothing.alpha' must be a finite number, got an integer of 400"),
    ("camera: 0\n", r"'camera' must be a mapping"),
    ("camera: false\n", r"'camera' must be a mapping"),
    ("camera: ''\n", r"'camera' must be a mapping"),
    ("app:\n  model: ''\n", r"'app.model' is empty"),
    ("overlay:\n  font: '  '\n", r"'overlay.font' is empty"),
    ("smoothing:\n  alpha: 0.3\n  alpha: 0.4\n", r"at line 3: key 'alpha' is given twice"),
    ("app:\n  realtime: true\napp:\n  realtime: false\n", r"at line 3: key 'app' is given twice"),
    ("app:\n  dataset_root: \"data\\0x\"\n", r"'app.dataset_root' contains a NUL character"),
    ("[" * 5000, r"nested too deeply"),
    ("---\nsmoothing:\n  alpha: 0.3\n---\napp:\n  realtime: true\n",  # it read "line 4: but found another document"
     r"at line 4: expected a single document in the stream, but found another document$"),
])
def test_values_that_would_be_misread_or_crash_name_the_key(tmp_path, text, words):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=words):
        config.load(p)


def test_a_section_left_empty_keeps_its_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\nsmoothing:\n  alpha: 0.5\n")
    assert config.load(p).camera == Config().camera


def test_a_folder_as_the_config_file_says_so(tmp_path):
    # It read "cannot read config file DIR: [Errno 21] Is a directory: 'DIR'".
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(tmp_path))} is a folder: give a YAML file$"):
        config.load(tmp_path)


def test_a_config_file_that_is_not_utf8_says_so(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("smoothing:\n  alpha: 0.5\n", encoding="utf-16")  # Notepad's "Unicode"
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(p))} is not UTF-8 text \(byte 0xff at "
                                          r"offset 0\): save it as UTF-8$"):
        config.load(p)


def test_a_device_as_the_config_file_is_refused_not_read_until_memory_runs_out():
    # /dev/zero decodes as UTF-8 for ever: the system killed the run once memory was gone. Checked in a
    # process with little memory, so that without the check it fails (MemoryError) and harms nothing.
    script = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
              "from knyang_cam import config; config.load('/dev/zero')")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "ConfigError: config file /dev/zero is a device, not a file" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("written, value", [("1e-4", 1e-4), ("1.0e4", 1e4), ("5E+2", 500.0), (".5e-1", 0.05)])
def test_a_number_in_scientific_notation_is_a_number(tmp_path, written, value):
    # YAML 1.1 (PyYAML) read 1e-4 as the string '1e-4': 'must be a number, got '1e-4''.
    p = tmp_path / "c.yaml"
    p.write_text(f"train:\n  head_l2: {written}\n")
    assert config.load(p).train.head_l2 == pytest.approx(value)


def test_dump_writes_a_name_like_a_number_in_quotes(tmp_path):
    # The background retrain hands the app's train settings to its child this way: with 1e5 read as a
    # number, a feature_cache folder named '1e5' would come back as 100000.0 and end the retrain.
    train = dataclasses.replace(config.TrainConfig(), feature_cache="1e5", fine_tune_learning_rate=1e-7)
    p = tmp_path / "c.yaml"
    p.write_text(config.dump({"train": dataclasses.asdict(train)}))
    assert config.load(p).train == train


def test_a_merge_key_merges_and_a_key_beside_it_wins(tmp_path):
    # The duplicate check read `<<` as a key: 'could not determine a constructor for the tag ...merge'.
    p = tmp_path / "c.yaml"
    p.write_text("smoothing:\n  <<: [{alpha: 0.3, hold: 4}, {hold: 5}]\n  hold: 6\n")
    s = config.load(p).smoothing
    assert (s.alpha, s.hold) == (0.3, 6)
    p.write_text("smoothing:\n  <<: {alpha: 0.3, alpha: 0.4}\n")
    with pytest.raises(ConfigError, match=r"at line 2: key 'alpha' is given twice"):
        config.load(p)


def test_a_dotted_key_at_the_top_says_to_nest_it(tmp_path):
    # It read "unknown config key 'smoothing.alpha'; did you mean 'smoothing.alpha'?"
    p = tmp_path / "c.yaml"
    p.write_text("smoothing.alpha: 0.3\n")
    with pytest.raises(ConfigError, match=r"^config key 'smoothing.alpha' is one key with a dot in its name: "
                                          r"write 'alpha:' indented under 'smoothing:'$"):
        config.load(p)


QUOTE = "put the name in quotes"
BOOL_READ = "YAML reads no, yes, on and off as false and true; " + QUOTE


@pytest.mark.parametrize("key, written, words", [
    ("app.dataset_root", "no", "got False: " + BOOL_READ),
    ("overlay.font", "on", "got True: " + BOOL_READ),
    ("app.snapshots_dir", "2024-05-01", "got datetime.date(2024, 5, 1): YAML reads it as a date; " + QUOTE),
    ("retrain.models_dir", "1e3", "got 1000.0: YAML reads it as a number; " + QUOTE),
])
def test_a_name_yaml_reads_as_another_type_says_to_quote_it(tmp_path, key, written, words):
    # It read "must be a string, got False" for a folder the user named `no`.
    section, name = key.split(".")
    p = tmp_path / "c.yaml"
    p.write_text(f"{section}:\n  {name}: {written}\n")
    with pytest.raises(ConfigError, match=re.escape(words) + "$"):
        config.load(p)
    p.write_text(f"{section}:\n  {name}: '{written}'\n")
    assert getattr(getattr(config.load(p), section), name) == written


@pytest.mark.parametrize("text, kind", [("- camera:\n    fps: 15\n", "a list"),
                                        ("models/knyang\n", "the single value 'models/knyang'")])
def test_a_config_that_is_no_mapping_says_what_a_config_is(tmp_path, text, kind):
    # It read "config key '<root>' must be a mapping", naming a key no file has.
    p = tmp_path / "c.yaml"
    p.write_text(text)
    words = f"the config must be sections of keys (camera:, smoothing:, ...), got {kind}"
    with pytest.raises(ConfigError, match=re.escape(words)):
        config.load(p)


def test_a_config_name_over_255_bytes_is_a_config_error(tmp_path):
    # The device check's Path.is_char_device raised OSError ('File name too long'): a traceback from every
    # entry point, where reading it had been one line.
    with pytest.raises(ConfigError, match="cannot read config file .*File name too long"):
        config.load(tmp_path / ("c" * 300 + ".yaml"))


def test_an_environment_variable_in_a_path_is_expanded_as_a_shell_would(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/mina")
    monkeypatch.setenv("CATS", "/srv/cats")
    p = tmp_path / "c.yaml"
    p.write_text("app:\n  dataset_root: $HOME/cats\n  snapshots_dir: ${CATS}/snaps\nregions:\n  crop: detect\n")
    cfg = config.load(p)
    assert (cfg.app.dataset_root, cfg.app.snapshots_dir) == ("/home/mina/cats", "/srv/cats/snaps")


def test_an_unset_environment_variable_in_a_path_is_refused(tmp_path, monkeypatch):
    # Left as written, the label keys saved into a folder named '$NO_SUCH_VAR' of the current one.
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    for text in ("$NO_SUCH_VAR/cats", "${NO_SUCH_VAR}/cats"):
        p = tmp_path / "c.yaml"
        p.write_text(f"app:\n  dataset_root: {text}\n")
        with pytest.raises(ConfigError, match=r"'app.dataset_root' names \$\{?NO_SUCH_VAR\}?, which is not set"):
            config.load(p)
