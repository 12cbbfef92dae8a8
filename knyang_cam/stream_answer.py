"""What a network camera answers, in words, for the message when no video comes from it: FFmpeg only says
that it failed, while a wrong password, a wrong path and a camera that is off each need another fix."""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

# Schemes FFmpeg reads over TCP, with their usual ports; udp:// and srt:// are UDP, where a TCP look tells nothing.
TCP_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935, "tcp": None}


def unreachable(url: str, timeout_s: float) -> str | None:
    """Why nothing can be read from `url` (no such host, nothing on its port, no answer) and what to do; None
    when it takes a connection, or where a plain connection cannot tell (udp://, srt://)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:  # rtsp://[::1/live: FFmpeg refuses it as well
        return f"it is no valid address ({e}): check it"
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in TCP_PORTS:
        return None
    if not host:  # rtsp://$CAM/stream1 with CAM unset: it read 'it answers, but with no video'
        return f"it names no camera: give its address after {scheme}://, e.g. {scheme}://192.168.1.20/"
    try:
        port = parts.port or TCP_PORTS[scheme]
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if port is None or (scheme in ("http", "https") and os.environ.get("http_proxy")
                                    and not urllib.request.proxy_bypass(host)):
        return None  # FFmpeg reaches it through the proxy (http_proxy, for https too)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except (socket.gaierror, UnicodeError):  # UnicodeError: a name no DNS can hold (cam..local, a label over 63)
        return f"no host is named {host}: check the address"
    except ConnectionRefusedError:
        return f"nothing answers on port {port} of {host}: check the port, and that the camera's server is on"
    except OSError:
        return f"no answer from {host}:{port} within {timeout_s:g} s: is the camera on and on this network?"
    return None


def http_answer(url: str, timeout_s: float) -> str | None:
    """What an HTTP(S) camera answered where FFmpeg found no video, and what to do: a user name and password
    wanted or refused, no such path, a page that is not video; None where it cannot tell (or not HTTP)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    plain = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    if parts.username is not None:
        # FFmpeg sends them %-decoded (p%40ss is p@ss), as a browser does.
        passwords.add_password(None, plain, unquote(parts.username), unquote(parts.password or ""))
    # FFmpeg does not check a camera's certificate (most are self-signed): neither does this.
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords),
                                         urllib.request.HTTPDigestAuthHandler(passwords),
                                         urllib.request.HTTPSHandler(context=insecure))
    try:
        with opener.open(plain, timeout=timeout_s) as answer:
            kind = answer.headers.get_content_type()
    except urllib.error.HTTPError as e:
        if e.code == 401:
            return ("the camera refused the user name and password in the address (401): check them" if parts.username
                    else "the camera asks for a user name and password (401): put them in the address, "
                         f"{parts.scheme}://USER:PASSWORD@{parts.netloc}{parts.path}")
        if e.code == 404:
            return f"the camera has no {parts.path or '/'} (404 Not Found): check the path in its manual"
        return f"the camera answered {e.code} {e.reason}: try the address in a browser or VLC"
    except (OSError, ValueError, http.client.HTTPException):  # a timeout, a dropped connection, a reply not HTTP
        return None
    if not kind.startswith(("text/", "application/json", "application/xml")):
        return None  # something FFmpeg could not read as video, which a look at its type does not explain
    return f"it answers with a page ({kind}), not a video stream: check the path"
