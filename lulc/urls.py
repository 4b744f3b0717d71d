"""One parse of every URL or path lulc-stac reads: the tricks refused, the rest normalised.

``parse_location`` is the only place a URL or local path is taken apart. Its result's ``href`` is what
the HTTP clients and GDAL receive, so the allow-list judges exactly what gets fetched:

- refused: control characters, backslashes, raw spaces in URLs, user info (``user@host``), schemes
  other than ``http``, ``https``, ``s3`` and ``file``, GDAL virtual file systems other than
  ``/vsicurl/`` and ``/vsis3/`` (which are read as the URLs they wrap), encoded slashes or backslashes in a
  path, ``..`` climbing above the root, ports out of range, hosts that are not plain names or IPs;
- normalised: scheme and host lower-cased, default ports dropped, the path percent-decoded once,
  dot segments removed and re-encoded, the fragment dropped. The query is kept byte for byte (signed
  URLs need it exact).

Plain local paths are taken literally (no percent-decoding); ``file://`` URLs are decoded once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urljoin, urlsplit

from lulc.errors import LimitError

REMOTE_SCHEMES = ("http", "https", "s3")
"""Schemes read over the network."""

DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_+.-]*):")  # with "_": GDAL prefixes like GTIFF_DIR:
_HOST = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class HostNotAllowedError(LimitError):
    """A URL or path is malformed or not on the allow-list; it was not fetched."""


@dataclass(frozen=True)
class Location:
    """A parsed, normalised URL (``http``, ``https``, ``s3``) or local path (``file``)."""

    scheme: str
    host: str
    """Lower-case host name or IP (the bucket for ``s3``); empty for local paths."""
    port: int | None
    """An explicit non-default port, else None."""
    path: str
    """Decoded path without dot segments (remote: empty or starting with ``/``), or the local path."""
    query: str = ""

    @property
    def is_local(self) -> bool:
        """Whether this is a local file path."""
        return self.scheme == "file"

    @property
    def host_port(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def href(self) -> str:
        """What to fetch: the normalised URL, or the local path."""
        if self.is_local:
            return self.path
        path = "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in self.path.split("/"))
        return f"{self.scheme}://{self.host_port}{path}" + (f"?{self.query}" if self.query else "")


_URL_AS_PATH = re.compile(r"^(https?|s3|gs|az):/+", re.IGNORECASE)  # file: URLs name local files


def missing_file(what: str, path: object, hint: str = "") -> str:
    """Why a local file named ``what`` is not at ``path``, in words: it is a URL, or it does not exist.

    ``hint`` follows "does not exist". A URL where a local file is wanted (``--image``, a points or AOI
    file) read as a path named "https:/host/..." (``pathlib`` folds "//"): it is said as the URL it was,
    and that a local file is asked.
    """
    text = str(path)
    match = _URL_AS_PATH.match(text)
    if match:
        url = f"{match.group(1).lower()}://{text[match.end() :]}"
        return f"{what} {url} is a URL: give a file on this machine (lulc-stac reads URLs only from STAC)"
    return f"{what} {text} does not exist{hint}"


def refuse(what: str, text: str, reason: str) -> HostNotAllowedError:
    """The error for ``text`` refused because of ``reason`` (the text shortened and made printable)."""
    shown = text if len(text) <= 300 else text[:300] + "..."
    return HostNotAllowedError(f"{what} {shown!r} is not allowed: {reason}")


def parse_location(text: str, what: str = "URL") -> Location:
    """The normalised ``Location`` of a URL or local path; ``HostNotAllowedError`` when it is refused.

    Args:
        text: A URL (``http``, ``https``, ``s3``, ``file``), ``/vsicurl/<url>``, ``/vsis3/<bucket>/<key>``
            or a local path.
        what: What the text is, for the error message (``"STAC source"``, ``"asset 'red'"``).
    """
    if not isinstance(text, str) or not text.strip():
        raise refuse(what, str(text), "empty")
    if _CONTROL.search(text):
        raise refuse(what, text, "control characters and backslashes are not allowed")
    if text.startswith("/vsi"):
        return _vsi(text, what)
    match = _SCHEME.match(text)
    if match is None:
        if "://" in text:
            raise refuse(what, text, "not a URL with a known scheme, nor a local path")
        return Location("file", "", None, text)
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    if scheme == "file":
        return _file_url(text, rest, what)
    if scheme not in REMOTE_SCHEMES:
        raise refuse(what, text, f"the scheme {scheme!r} is not allowed (http, https, s3 or a local path)")
    if not rest.startswith("//"):
        raise refuse(what, text, "a URL needs '//' and a host after the scheme")
    return _remote(scheme, rest[2:], text, what)


def redirect_url(current: str, location: str) -> str:
    """The URL a ``Location`` header leads to from ``current``, or HostNotAllowedError if it is malformed.

    Only a full URL (``scheme://host/...``) or a reference without a scheme is resolved (as ``urljoin``
    does). Refused: a scheme without ``//`` (``http:/host/x``, ``http:host``, ``http:///host``),
    ``///host``, backslashes and ASCII control characters. ``urljoin`` reads ``http:/other/x`` or
    ``///other/x`` as a path on the same host, where libcurl goes to ``other`` (reviews). Spaces and
    bytes beyond ASCII are percent-encoded as libcurl sends them (a space in the query as ``+``; HTTP
    clients decode the header as Latin-1: its bytes are encoded as they came).
    """
    text = location.strip(" \t")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in text):
        raise HostNotAllowedError(f"{current} redirects to a malformed location {location!r}; not followed")
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    path, mark, query = raw.partition(b"?")
    text = quote(path, safe=_PRINTABLE_ASCII) + mark.decode()
    text += quote(query.replace(b" ", b"+"), safe=_PRINTABLE_ASCII)
    parts = urlsplit(text)
    malformed = (
        bool(parts.scheme) and (not parts.netloc or not text.lower().startswith(f"{parts.scheme}://"))
    ) or (text.startswith("//") and not parts.netloc)
    if malformed:
        raise HostNotAllowedError(f"{current} redirects to a malformed location {location!r}; not followed")
    return urljoin(current, text)


_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
"""What a redirect's location keeps as it is: ASCII but space and control characters."""


def _vsi(text: str, what: str) -> Location:
    """``/vsicurl/<url>`` and ``/vsis3/<bucket>/<key>`` as their URLs; other GDAL file systems refused."""
    if text.startswith("/vsicurl/"):
        inner = text[len("/vsicurl/") :]
        location = parse_location(inner, what)
        if location.scheme not in ("http", "https"):
            raise refuse(what, text, "/vsicurl/ must wrap an http(s) URL")
        return location
    if text.startswith("/vsis3/"):
        return parse_location("s3://" + text[len("/vsis3/") :], what)
    raise refuse(what, text, "GDAL virtual file systems (/vsi...) are not allowed")


def _file_url(text: str, rest: str, what: str) -> Location:
    if not rest.startswith("//"):
        raise refuse(what, text, "a file URL must be file:///absolute/path")
    host, _, path = rest[2:].partition("/")
    if host.lower() not in ("", "localhost"):
        raise refuse(what, text, "file URLs on other hosts are not allowed")
    decoded = _decode(path.split("?", 1)[0].split("#", 1)[0], text, what, allow_slash=True)
    return Location("file", "", None, "/" + decoded)


def _remote(scheme: str, rest: str, text: str, what: str) -> Location:
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    netloc, tail = rest[:end], rest[end:]
    if " " in text:
        raise refuse(what, text, "spaces must be percent-encoded in a URL")
    if "@" in netloc:
        raise refuse(what, text, "user names and passwords in URLs are not allowed")
    host, port = _host_port(scheme, netloc, text, what)
    raw_path, _, query = tail.split("#", 1)[0].partition("?")
    return Location(scheme, host, port, _normal_path(raw_path, text, what), query)


def _host_port(scheme: str, netloc: str, text: str, what: str) -> tuple[str, int | None]:
    netloc = netloc.lower()
    if netloc.startswith("["):
        close = netloc.find("]")
        host, port_text = netloc[: close + 1], netloc[close + 1 :]
    else:
        host, sep, port_text = netloc.partition(":")
        port_text = sep + port_text
    host = host[:-1] if host.endswith(".") else host
    if not host or not (_HOST.match(host) or _IPV6.match(host)):
        raise refuse(what, text, "the URL has no valid host name")
    if scheme == "s3" and port_text:
        raise refuse(what, text, "an s3:// URL names a bucket, not host:port")
    port: int | None = None
    if port_text:
        digits = port_text[1:]
        if not port_text.startswith(":") or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise refuse(what, text, "the port is not a number from 1 to 65535")
        port = int(digits)
    if port == DEFAULT_PORTS.get(scheme):
        port = None
    return host, port


def _decode(raw: str, text: str, what: str, *, allow_slash: bool) -> str:
    """``raw`` percent-decoded once; encoded control characters, backslashes (and slashes) refused."""
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(what, text, "the path is not UTF-8 once percent-decoded") from None
    if _CONTROL.search(decoded) or (not allow_slash and "/" in decoded):
        raise refuse(what, text, "encoded slashes, backslashes and control characters are not allowed")
    return decoded


def _normal_path(raw: str, text: str, what: str) -> str:
    """The decoded path with ``.`` and ``..`` segments resolved; ``..`` above the root refused."""
    if not raw:
        return ""  # http://host stays as given (the same resource as http://host/)
    segments: list[str] = []
    parts = raw.split("/")[1:] if raw.startswith("/") else [raw]
    for index, part in enumerate(parts):
        segment = _decode(part, text, what, allow_slash=False)
        last = index == len(parts) - 1
        if segment == ".":
            if last:
                segments.append("")
            continue
        if segment == "..":
            if not segments or segments == [""]:
                raise refuse(what, text, "'..' climbs above the root of the host")
            segments.pop()
            if last:
                segments.append("")
            continue
        segments.append(segment)
    return "/" + "/".join(segments)
