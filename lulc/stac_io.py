"""Reading STAC JSON through the allow-list: every href, link and redirect checked; failures retried.

``CheckedHttp`` is the one HTTP client for STAC metadata. It sends only normalised, allow-listed URLs
(``AllowList.check``), never lets ``requests`` follow a redirect (each ``Location`` is checked like
any other URL, at most ``max_redirects`` hops), retries 429/5xx answers and dropped connections with
bounded exponential back-off, reads each body up to ``max_response_bytes`` and ``max_response_seconds``
(an endless or dripping body is cut, not accumulated), and reports failures by status or reason only: an
upstream body never reaches an error message.

``CheckedStacIO`` (pystac: static catalogs, their child and item links) and ``CheckedStacApiIO``
(pystac-client: API root, search, every page link) route all their reads through it.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import pystac
import requests
import urllib3
from pystac.stac_io import DefaultStacIO
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from lulc.allowlist import LOCAL_REFUSAL, AllowList
from lulc.errors import ItemLimitError, SourceError, SourceUnavailableError
from lulc.local_files import not_utf8
from lulc.urls import HostNotAllowedError, parse_location, redirect_url, refuse

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers worth asking again (a 500 is the server's own bug: asking again gives the same)."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

MAX_RESPONSE_BYTES = 64 * 2**20
"""Largest body one STAC response may have (decoded); a search page of 100 items is about 1 MB."""

MAX_RESPONSE_SECONDS = 60.0
"""Longest one STAC response may take, from sending the request to the body's last byte."""

READ_CHUNK = 64 * 1024
"""Most bytes taken from the connection at a time (one network read; what has arrived, never waited for)."""

_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # the body is read from urllib3 itself: a read timeout, a dropped body
)


class HttpStatusError(SourceError):
    """A server answered an error status (after retries); ``status`` holds it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def temporary_status(status: int) -> bool:
    """A status a later request may not get: a server error (5xx), 408 Request Timeout, 429 Too Many."""
    return status >= 500 or status in (408, 429)


class ResponseLimitError(SourceError):
    """A server's answer is larger than ``max_response_bytes`` or slower than ``max_response_seconds``."""


def _size(n: int) -> str:
    """``64 MiB`` for whole MiB, else ``1,500 bytes``."""
    return f"{n // 2**20} MiB" if n >= 2**20 and n % 2**20 == 0 else f"{n:,} bytes"


def short_reason(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 failure, e.g. ``[Errno 111] Connection refused``."""
    text = " ".join(str(exc).split())
    match = re.search(r"(\[Errno [^\]]+\][^\"')]*)", text)
    if match:
        return match.group(1).strip()
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text[:200] or type(exc).__name__


@dataclass
class CheckedHttp:
    """GET/POST of allow-listed URLs: redirects checked hop by hop, transient failures retried.

    Args:
        allow: what may be fetched.
        max_retries: extra attempts after a 429/5xx answer or a dropped connection.
        backoff: first delay in seconds, doubled per attempt (with jitter), capped at ``max_backoff``.
        timeout: seconds to connect and between bytes.
        max_redirects: redirect hops followed (each target checked); more is an error.
        max_response_bytes: largest body of one answer (decoded); a larger ``Content-Length`` is refused
            before reading, a body growing past it is cut: ``ResponseLimitError``, not retried.
        max_response_seconds: longest one answer may take, request to last byte (checked after each
            network read, so it is overrun by ``timeout`` at most): ``ResponseLimitError``, not retried.
    """

    allow: AllowList
    max_retries: int = 4
    backoff: float = 0.2
    max_backoff: float = 4.0
    timeout: float = 30.0
    max_redirects: int = 5
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_response_seconds: float = MAX_RESPONSE_SECONDS
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def send(
        self,
        url: str,
        what: str,
        *,
        method: str = "GET",
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """The 2xx response (body read) to ``method url``; ``HostNotAllowedError`` or ``SourceError``."""
        href = self.allow.check(url, what)
        if not href.startswith(("http://", "https://")):
            raise SourceError(f"{what} {href}: only http(s) URLs can be fetched here")
        for _ in range(self.max_redirects + 1):
            response = self._send_with_retries(method, href, what, json, params, headers)
            if response.status_code in REDIRECT_STATUSES and response.headers.get("location"):
                target = redirect_url(response.url or href, response.headers["location"])
                if method != "GET" and response.status_code not in (307, 308):
                    method, json = "GET", None  # what browsers do for 301/302/303 after a POST
                href = self.allow.check(target, f"redirect from {href} to")
                params = None  # already part of the URL that redirected
                continue
            if not 200 <= response.status_code < 300:
                status = response.status_code
                raise HttpStatusError(f"{what} {href} answered HTTP {status}", status)
            return response
        raise SourceError(f"{what} {url} redirects more than {self.max_redirects} times")

    def get_text(self, url: str, what: str) -> str:
        """The body of ``GET url`` as text (UTF-8 unless the server says otherwise)."""
        response = self.send(url, what)
        response.encoding = response.encoding or "utf-8"
        return response.text

    def _send_with_retries(
        self,
        method: str,
        href: str,
        what: str,
        json: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> requests.Response:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    href,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                self._read_body(response, href, what, started)  # now, so a dropped body is retried here
            except _TRANSIENT as exc:
                if last:
                    reason = short_reason(exc)
                    raise SourceUnavailableError(f"{what} {href} could not be reached: {reason}") from None
                self._pause(attempt, None)
                continue
            except requests.RequestException as exc:
                raise SourceError(f"{what} {href} could not be read: {short_reason(exc)}") from None
            if response.status_code in RETRY_STATUSES and not last:
                self._pause(attempt, response.headers.get("retry-after"))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_body(self, response: requests.Response, href: str, what: str, started: float) -> None:
        """Read the body of a streamed ``response`` into it, within the size and time limits.

        One network read at a time (``read1``: what has arrived, never waiting for a full chunk), so a
        body dripping a byte at a time meets the deadline too. Raises ``ResponseLimitError`` (the
        connection is closed, not reused) or what urllib3 raises for a dropped or timed-out body.
        """
        limit = self.max_response_bytes
        body = bytearray()
        try:
            declared = response.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > limit:
                raise ResponseLimitError(
                    f"{what} {href} is larger than {_size(limit)} (Content-Length {int(declared):,}), "
                    "the limit of one response"
                )
            deadline = started + self.max_response_seconds
            while chunk := response.raw.read1(READ_CHUNK, decode_content=True):
                body += chunk
                if len(body) > limit:
                    raise ResponseLimitError(
                        f"{what} {href} is larger than {_size(limit)}, the limit of one response"
                    )
                if time.monotonic() > deadline:
                    raise ResponseLimitError(
                        f"{what} {href} took longer than {self.max_response_seconds:g} s to send, "
                        "the limit of one response"
                    )
        except BaseException:
            response.close()  # unread: the connection is dropped
            raise
        response._content = bytes(body)
        response._content_consumed = True
        response.close()  # read to its end: the connection goes back to the pool

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(self.max_backoff, float(retry_after)))
        time.sleep(delay)


def read_local_text(allow: AllowList, href: str, what: str) -> str:
    """The text of an allow-listed local file (missing and refused files get the same error).

    An allowed file that is not UTF-8 says so (it read as "not allowed", which sent users to the
    allow-list): the allow-list passed it, so that tells nothing of files outside.
    """
    path = allow.check(href, what)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise SourceError(f"{not_utf8(f'{what} {href}', exc)}: STAC JSON is UTF-8") from None
    except OSError:
        raise refuse(what, href, LOCAL_REFUSAL) from None


def is_local_href(href: str) -> bool:
    """Whether ``href`` names a local file (a path or ``file://`` URL); False for anything refused."""
    try:
        return parse_location(href).is_local
    except HostNotAllowedError:
        return False


def links_resolved(document: dict[str, Any], url: str) -> dict[str, Any]:
    """``document`` with every link's href resolved against ``url`` (RFC 3986: ``urljoin``).

    A shallow copy when a link changes; absolute hrefs stay as they are (each is checked when read).
    """
    links = document.get("links")
    if not isinstance(links, list):
        return document
    resolved = [
        {**link, "href": urljoin(url, link["href"])}
        if isinstance(link, dict) and isinstance(link.get("href"), str)
        else link
        for link in links
    ]
    return document if resolved == links else {**document, "links": resolved}


class CheckedStacIO(DefaultStacIO):
    """pystac I/O for static catalogs: every read (root, children, items) through ``CheckedHttp``.

    Documents read from a remote URL may not send the reader to local files: links found in them are
    checked against the allow-list without its local folders.
    """

    def __init__(self, http: CheckedHttp, root: str, max_documents: int | None = None) -> None:
        super().__init__()
        self.http = http
        self.root = root
        self.links_allow = http.allow.without_local() if not is_local_href(root) else http.allow
        self.max_documents = max_documents
        """The most documents (the root, children, items) one walk reads; None: no limit."""
        self.documents = 0

    def read_text(self, source: pystac.link.HREF, *args: Any, **kwargs: Any) -> str:
        """The text at ``source``: an allow-listed URL or local file.

        Raises:
            ItemLimitError: over ``max_documents`` read (HTTP review: a tree of catalogs linking 20 children
                each and no item was walked without end, past the client's leaving and the server's stop).
        """
        self.documents += 1
        if self.max_documents is not None and self.documents > self.max_documents:
            raise ItemLimitError(
                f"catalog {self.root} links more than {self.max_documents:,} documents (catalogs and items), "
                "over the limit one search may read: search a collection of it, or an API"
            )
        href = str(source)
        what = "catalog" if href == self.root else "STAC document"
        if is_local_href(href):
            return read_local_text(self.links_allow, href, what)
        self.links_allow.check(href, what)
        try:
            return self.http.get_text(href, what)
        except HttpStatusError as exc:  # not its own type: SourceError, or SourceUnavailableError to retry
            kind = SourceUnavailableError if temporary_status(exc.status) else SourceError
            raise kind(str(exc)) from None

    def stac_object_from_dict(
        self,
        d: dict[str, Any],
        href: pystac.link.HREF | None = None,
        root: pystac.Catalog | None = None,
        preserve_dict: bool = True,
    ) -> pystac.STACObject:
        """pystac's, after the links of a document read over HTTP are made absolute against its URL.

        pystac takes a root-relative link (``/stac/item.json``) of a remote document for a local path
        (``Link.resolve_stac_object`` checks it without the document's URL), so it was refused as a local
        file (HTTP review); RFC 3986 resolves it on the document's host, as a browser and STAC Browser do.
        """
        if href is not None and not is_local_href(str(href)):
            d = links_resolved(d, str(href))
        return super().stac_object_from_dict(d, href, root, preserve_dict)

    def write_text(self, dest: pystac.link.HREF, txt: str, *args: Any, **kwargs: Any) -> None:
        """Refused: catalogs are only read here."""
        raise SourceError(f"writing {dest} is not supported by the catalog reader")


class CheckedStacApiIO(StacApiIO):
    """pystac-client I/O: the API root, searches and every page link through ``CheckedHttp``.

    Errors are ``APIError`` with the status (as pystac-client expects), never the server's body.
    """

    def __init__(self, http: CheckedHttp) -> None:
        super().__init__(max_retries=None, timeout=http.timeout)
        self.http = http
        http.session = self.session

    def read_text(self, source: pystac.link.HREF, *args: Any, **kwargs: Any) -> str:
        """Local paths are not API documents: only allow-listed URLs are read."""
        if isinstance(source, str) and is_local_href(source):
            raise refuse("STAC API document", source, "a STAC API is read over http(s) only")
        return super().read_text(source, *args, **kwargs)

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        """``method href`` (GET parameters as query, POST as JSON body) through the checked client."""
        verb = (method or "GET").upper()
        body = parameters if verb in ("POST", "PUT", "PATCH") else None
        query = None if body is not None else (dict(parameters) if parameters else None)
        try:
            response = self.http.send(href, "STAC API", method=verb, json=body, params=query, headers=headers)
        except HttpStatusError as exc:
            error = APIError(f"HTTP {exc.status}")
            error.status_code = exc.status
            raise error from None
        return response.content.decode("utf-8")
