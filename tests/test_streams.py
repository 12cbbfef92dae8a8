"""Network cameras: a real MPEG-TS stream served on 127.0.0.1 by an FFmpeg process, read by the app; a
camera's still-image URL served by Python's own HTTP server."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from knyang_cam.config import CameraConfig
from knyang_cam.errors import UserError
from knyang_cam.sources import SNAPSHOT_EVERY_S, Recording, SourceLost, Stream, open_source, redacted
from knyang_cam.stream_answer import unreachable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc (a probe connection would
    use up the single client that `ffmpeg -listen 1` serves)."""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        return True  # no /proc: the caller has waited a moment already
    return any(f"0100007F:{port:04X}" in line.split()[1] and line.split()[3] == "0A"
               for line in table.splitlines()[1:])


def interrupted(app: subprocess.Popen) -> tuple[str, str, float]:
    """Ctrl-C to the running app: its stdout, its stderr and the seconds it took to end."""
    app.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = app.communicate(timeout=60)
    return out, err, time.monotonic() - sent


@pytest.fixture
def stream_server():
    """Start an FFmpeg HTTP server of a live 320x240, 15 fps MPEG-TS stream; yields (url, process)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): no stream server to test against")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/cam.ts"
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
         "-i", "testsrc=size=320x240:rate=15", "-t", "60", "-c:v", "mpeg2video", "-q:v", "5",
         "-f", "mpegts", "-listen", "1", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    time.sleep(0.2)
    while not _listening(port) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_stream_is_read_like_a_camera_and_ends_with_source_lost(stream_server):
    url, server = stream_server
    cfg = CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.05)
    src = open_source(url, cfg)
    assert isinstance(src, Stream) and src.live and src.size == (320, 240)
    frames, statuses = 0, []
    with pytest.raises(SourceLost, match="127.0.0.1"), src:
        for frame in src:
            if frame.status:
                statuses.append(frame.status)
                continue
            if frame.waiting:
                continue
            assert frame.image.shape == (240, 320, 3)
            frames += 1
            if frames == 10:
                server.kill()  # the camera goes away mid-run
    assert frames >= 10
    assert statuses == [f"{url} lost: reconnecting (1/1)"]


@pytest.fixture
def snapshot_server():
    """An IP camera's /snapshot.jpg on 127.0.0.1: a JPEG one shade brighter at each request; yields (url, server)."""
    class Snapshot(BaseHTTPRequestHandler):
        shade = 0

        def do_GET(self):
            Snapshot.shade += 1
            ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), Snapshot.shade * 8 % 256, np.uint8))
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg.tobytes())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Snapshot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/snapshot.jpg", server
    finally:
        server.shutdown()
        server.server_close()


def test_a_still_image_url_is_fetched_again_for_every_frame(snapshot_server):
    # FFmpeg reads a snapshot URL as a one-frame video: without fetching it again, every frame after the
    # first came from a reconnect, with "reconnecting" on screen between them.
    url, server = snapshot_server
    src = open_source(url, CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.05))
    assert isinstance(src, Stream) and src.size == (160, 120) and src.fps == 1 / SNAPSHOT_EVERY_S
    shades, statuses, start = [], [], time.monotonic()
    with pytest.raises(SourceLost, match="snapshot.jpg"), src:
        for frame in src:
            if frame.status:
                statuses.append(frame.status)
            elif not frame.waiting:
                shades.append(int(frame.image[60, 80, 0]))
                if len(shades) == 6:
                    elapsed = time.monotonic() - start
                    server.shutdown()  # the camera goes away
                    server.server_close()
    assert len(set(shades)) == 6, shades  # a new picture each time
    assert elapsed >= 4 * SNAPSHOT_EVERY_S  # fetched no faster than the camera is asked to serve
    assert statuses == [f"{url} lost: reconnecting (1/1)"]  # only once the camera was gone


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_finished_playlist_is_read_like_a_file_to_its_end(tmp_path):
    # A VOD .m3u8 (or a video file on a web server) was read as a camera: the newest frame only, and its
    # end taken for a lost camera, whose reconnect played it again from the start, forever.
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): no playlist to serve")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-t", "3", "-c:v", "mpeg2video", "-f", "hls", "-hls_time", "1",
                    "-hls_playlist_type", "vod", str(tmp_path / "vod.m3u8")], check=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/vod.m3u8"
    try:
        with open_source(url, CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.05)) as src:
            assert isinstance(src, Recording) and not src.live and src.fps == 10 and src.name == url
            frames = [frame.index for frame, _ in zip(src, range(100))]  # ends at the end, no SourceLost
    finally:
        server.shutdown()
        server.server_close()
    assert frames == list(range(30))


def test_wrong_address_fails_up_front_in_one_line_naming_it():
    url = f"http://127.0.0.1:{_free_port()}/cam.ts"
    with pytest.raises(UserError, match="cannot open stream " + url.replace(".", r"\.")):
        open_source(url, CameraConfig())
    with pytest.raises(UserError, match="unsupported stream address ftp://"):
        open_source("ftp://example.invalid/cam", CameraConfig())


@pytest.fixture
def locked_camera():
    """A camera on 127.0.0.1 that wants admin:s3cret (HTTP basic), then has only /video.mjpg, a web page; yields its
    host:port."""
    class Locked(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"admin:s3cret").decode():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path.partition("?")[0] != "/video.mjpg":
                self.send_error(404)
            else:  # the camera's web page, not its stream
                page = b"<html><body>Live view</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Locked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("address, why", [
    ("http://{camera}/video.mjpg", "the camera asks for a user name and password (401): put them in the address, "
                                   "http://USER:PASSWORD@{camera}/video.mjpg"),
    ("http://admin:wrong@{camera}/video.mjpg", "the camera refused the user name and password in the address "
                                               "(401): check them"),
    ("http://admin:s3cret@{camera}/videostream.cgi?pwd=wrong", "the camera has no /videostream.cgi (404 Not "
                                                               "Found): check the path in its manual"),
    # FFmpeg reads a %-escaped password: so does the look at what the camera answers (right, but a wrong path).
    ("http://admin:s3c%72et@{camera}/cam.cgi?pwd=wrong", "the camera has no /cam.cgi (404 Not Found): check the "
                                                         "path in its manual"),
    ("http://admin:s3cret@{camera}/video.mjpg?pwd=wrong", "it answers with a page (text/html), not a video stream: "
                                                          "check the path"),
    ("rtsp://127.0.0.1:{free}/live", "nothing answers on port {free} of 127.0.0.1: check the port, and that the "
                                     "camera's server is on"),
    # It answers at once, with an error FFmpeg does not pass on (here: not RTSP at all).
    ("rtsp://admin:wrong@{camera}/live", "it answers, but with no video OpenCV/FFmpeg can read: check the path "
                                         "and password (try it with ffplay or VLC)"),
])
def test_a_stream_that_cannot_open_says_what_the_camera_answered(locked_camera, address, why):
    # It said "no answer within 5 s, or not a video stream" for a camera that answered at once that the
    # password was wrong, or that it has no such path.
    free = _free_port()
    url, why = address.format(camera=locked_camera, free=free), why.format(camera=locked_camera, free=free)
    started = time.monotonic()
    with pytest.raises(UserError) as refused:
        open_source(url, CameraConfig())
    assert str(refused.value) == f"cannot open stream {redacted(url)}: {why}"
    assert "wrong" not in str(refused.value) and time.monotonic() - started < 4


def test_an_address_the_look_at_the_answer_cannot_use_is_still_one_line():
    # The look at what the camera answered raised where FFmpeg had only failed: a server on the port that speaks
    # no HTTP (BadStatusLine), a host name DNS cannot hold (UnicodeError), a broken IPv6 address (ValueError).
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()

        def serve():
            while True:  # FFmpeg, then the look at the port and the look at the answer; until it is closed
                try:
                    client, _ = other.accept()
                except OSError:
                    return
                with client:
                    client.sendall(b"SSH-2.0-OpenSSH_8.9\r\n")

        threading.Thread(target=serve, daemon=True).start()
        for url, why in ((f"http://127.0.0.1:{other.getsockname()[1]}/video", "it answers, but with no video"),
                         ("rtsp://cam..local/live", "no host is named cam..local"),
                         ("rtsp://[::1/live", "it is no valid address")):
            with pytest.raises(UserError, match=f"cannot open stream .*: {why}"):
                open_source(url, CameraConfig())


@pytest.mark.parametrize("url", ["rtsp:///stream1", "http://:8080/video", "rtsp://admin:pw@/live"])
def test_an_address_without_a_host_says_it_names_no_camera(url):
    # rtsp://$CAM/stream1 with CAM unset read 'it answers, but with no video': nothing had answered.
    with pytest.raises(UserError, match=r"cannot open stream .*: it names no camera: give its address after"):
        open_source(url, CameraConfig())


def test_a_udp_stream_is_not_looked_for_over_tcp():
    # Nothing listens for TCP on a UDP stream's port: a TCP look would call it off, and refuse every reconnect.
    port = _free_port()
    assert unreachable(f"udp://127.0.0.1:{port}", 1) is None and unreachable(f"srt://127.0.0.1:{port}", 1) is None
    assert unreachable(f"tcp://127.0.0.1:{port}", 1).startswith(f"nothing answers on port {port} of 127.0.0.1")


def test_passwords_stay_out_of_messages():
    assert redacted("rtsp://admin:s3cret@10.0.0.2:554/live") == "rtsp://admin:***@10.0.0.2:554/live"
    assert redacted("http://10.0.0.2/cam.ts") == "http://10.0.0.2/cam.ts"
    # FFmpeg takes the password to the last @ of the address: none of it may show.
    assert redacted("rtsp://admin:p@ss@10.0.0.2/live?x=a@b") == "rtsp://admin:***@10.0.0.2/live?x=a@b"
    assert redacted("http://me@home:pw@cam:8080/") == "http://me@home:***@cam:8080/"
    assert redacted("http://token@cam/a:b@c") == "http://token@cam/a:b@c"
    assert redacted("http://cam/videostream.cgi?user=admin&PWD=s3cret&rate=0") == \
        "http://cam/videostream.cgi?user=admin&PWD=***&rate=0"
    assert redacted("https://cam/live.m3u8?token=abc#t") == "https://cam/live.m3u8?token=***#t"
    assert redacted("http://cam/a?keyframe=1&passenger=x") == "http://cam/a?keyframe=1&passenger=x"


@pytest.mark.slow
def test_app_processes_a_live_stream_and_exits_3_when_it_goes_away(stream_server, tmp_path):
    """The whole app on a live HTTP stream: frames logged and recorded until the server is killed,
    then exit status 3 with a complete log and a playable video of the same frames."""
    url, server = stream_server
    config = tmp_path / "config.yaml"
    config.write_text("camera:\n  reconnect_attempts: 1\n  reconnect_delay_s: 0.1\n")
    log, video = tmp_path / "log.jsonl", tmp_path / "out.mp4"
    app = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source", url, "--headless",
                            "--config", str(config), "--log", str(log), "--output", str(video)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and app.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 20:
            break
        time.sleep(0.1)
    server.kill()
    out, err = app.communicate(timeout=60)
    assert app.returncode == 3, err
    assert "Traceback" not in err
    assert f"source {url} 320x240 live" in out  # the start line
    assert "stopped delivering frames" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) >= 20
    assert [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)
    cap.release()


def test_the_app_refuses_a_wrong_address_in_one_line(capsys):
    from knyang_cam.__main__ import main

    url = f"rtsp://admin:secret@127.0.0.1:{_free_port()}/live"
    assert main(["--source", url, "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot open stream rtsp://admin:***@127.0.0.1:")
    assert "secret" not in err


@pytest.mark.slow
def test_ctrl_c_ends_the_app_at_once_while_a_stream_connects(tmp_path):
    """A camera that takes the connection and never answers: FFmpeg's open waits out its 5 s timeout, and
    Ctrl-C waited with it."""
    with socket.socket() as camera:
        camera.bind(("127.0.0.1", 0))
        camera.listen()
        camera.settimeout(60)
        app = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source",
                                f"http://127.0.0.1:{camera.getsockname()[1]}/video.mjpg", "--headless",
                                "--log", str(tmp_path / "log.jsonl")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        connection, _ = camera.accept()
        with connection:
            time.sleep(0.5)
            _, err, took = interrupted(app)
    assert app.returncode == 130, err
    assert took < 2.0, f"Ctrl-C took {took:.1f} s to end the run during a connect"
    assert not list(tmp_path.iterdir())


def test_a_missing_device_is_named(tmp_path):
    with pytest.raises(UserError, match=r"no camera device /dev/video97 \(`ls /dev/video\*` lists"):
        open_source("/dev/video97", CameraConfig())


@pytest.mark.slow
def test_ctrl_c_ends_the_app_at_once_while_the_stream_stalls(stream_server, tmp_path):
    """A frozen server (SIGSTOP) blocks FFmpeg's read for its 5 s timeout: the app must still notice
    Ctrl-C within a moment, and end with a complete log and a playable video."""
    url, server = stream_server
    log, video = tmp_path / "log.jsonl", tmp_path / "out.mp4"
    app = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source", url, "--headless",
                            "--log", str(log), "--output", str(video)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and app.poll() is None:
        if sum(p.read_text().count("\n") for p in tmp_path.glob(".log.tmp-*")) >= 10:
            break
        time.sleep(0.1)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)  # the last frames already on their way are read; then nothing comes
        out, err, took = interrupted(app)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert app.returncode == 130, err
    assert took < 2.5, f"Ctrl-C took {took:.1f} s to end the run during a stall"
    assert "interrupted by SIGINT" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) >= 10 and [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)
    cap.release()


@pytest.fixture
def unplugged_camera():
    """An MJPEG camera on 127.0.0.1 that serves 20 frames, then is as if unplugged: its connections are never
    answered (a full backlog drops them); yields (url, an Event set when it went away)."""
    camera = socket.socket()
    camera.bind(("127.0.0.1", 0))
    camera.listen(0)
    port, gone, fillers = camera.getsockname()[1], threading.Event(), []

    def serve():
        client, _ = camera.accept()
        with client:
            client.recv(4096)
            client.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for shade in range(20):
                jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), shade * 10, np.uint8))[1].tobytes()
                client.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%b\r\n"
                               % (len(jpeg), jpeg))
                time.sleep(0.1)
            for _ in range(3):  # never accepted: the backlog is full, and the next connection is dropped
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
        gone.set()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/video.mjpg", gone
    finally:
        for sock in [camera, *fillers]:
            sock.close()


@pytest.mark.slow
def test_ctrl_c_ends_the_app_at_once_while_a_camera_that_is_off_reconnects(unplugged_camera, tmp_path):
    """OpenCV holds one lock over each FFmpeg open: finishing --output (which reads the video back) waited for
    a reconnect to a camera that is off to time out, up to 5 s after Ctrl-C."""
    url, gone = unplugged_camera
    log, video = tmp_path / "log.jsonl", tmp_path / "out.mp4"
    app = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source", url, "--headless",
                            "--log", str(log), "--output", str(video)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gone.wait(60)
    time.sleep(1.5)  # the stream ended, reconnect_delay_s (0.5 s) passed: the reconnect waits for an answer
    out, err, took = interrupted(app)
    assert app.returncode == 130, err
    assert took < 1.5, f"Ctrl-C took {took:.1f} s to end the run during a reconnect"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)
    cap.release()
