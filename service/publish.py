"""Copy a finished output directory to its destination (local directory or ``s3://``), the STAC item last."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lulc.errors import InputError, LulcError, UpstreamError
from lulc.signals import held as held_signals
from service.folders import made_folders

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from obstore.store import ObjectStore

ITEM_NAME = "item.json"
"""The file published last: once it exists at the destination, every asset it points to does too."""


class PublishError(LulcError):
    """Outputs could not be copied to their destination (store unreachable, permission denied, ...)."""


class PublishUnavailableError(PublishError, UpstreamError):
    """The store failed in a way that may pass: unreachable, a server error (not a missing bucket, denied)."""


class PublishConflictError(PublishError, UpstreamError):
    """Another run is being published to the destination (its claim refreshed within ``CLAIM_STALE_S``)."""


CLAIM_NAME = ".lulc-publishing"
"""Created (only if absent: a conditional PUT) before a publication writes anything, deleted after it: two
runs published to one destination at once mixed their files, and one's failure deleted the other's."""

CLAIM_STALE_S = 900.0
"""A claim not refreshed for this long (a publication refreshes it after every file) is taken to be a
crashed publication's and is taken over."""


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible store (AWS, MinIO, moto); unset fields fall back to AWS_* variables."""

    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    allow_http: bool = False
    virtual_hosted_style: bool = False

    def config(self) -> dict[str, Any]:
        """Keyword arguments for obstore's ``S3Store`` (``S3Config``): only the fields set."""
        options: dict[str, Any] = {"region": self.region}
        if self.endpoint:
            options["endpoint"] = self.endpoint
        if self.access_key_id:
            options["access_key_id"] = self.access_key_id
        if self.secret_access_key:
            options["secret_access_key"] = self.secret_access_key
        if self.session_token:
            options["session_token"] = self.session_token
        if self.virtual_hosted_style:
            options["virtual_hosted_style_request"] = True
        return options


@dataclass(frozen=True)
class Published:
    """Where a published output directory ended up."""

    url: str
    """The destination folder (a local path or ``s3://bucket/prefix``), without trailing slash."""
    files: Mapping[str, str] = field(default_factory=dict)
    """URL of every published file, keyed by its path relative to the folder (``classes.tif``)."""


def is_local(url: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(url: str) -> Path:
    """The filesystem path of a plain path or ``file://`` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InputError(f"output URL {url!r} names a remote host; use file:///absolute/path")
        return Path(unquote(parsed.path))
    return Path(url)


def join_url(base: str, relative: str) -> str:
    """``base`` + ``/`` + ``relative`` with exactly one slash between them."""
    return f"{base.rstrip('/')}/{relative.lstrip('/')}"


def leaves_folder(href: str, where: str = ITEM_NAME) -> bool:
    """Whether ``href``, a link of the document at ``where`` (its path in the run folder), leads out of it.

    URLs stay where they are; a relative href is resolved against the document's folder (``../item.json``
    of ``clean/item.json`` is the run's own item); a local absolute path is outside by definition.
    """
    if urlparse(href).scheme:
        return False
    if href.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(where), href))
    return resolved == ".." or resolved.startswith("../")


def travelling_links(item: dict[str, Any], where: str = ITEM_NAME) -> dict[str, Any]:
    """A copy of STAC ``item`` without the links that lead out of its run folder.

    The engine writes links to local inputs (the model's item on the service's disk, a local image)
    relative to the run folder, which is right while the folder stays there. Published elsewhere
    (another directory, S3), such a link would lead nowhere: it is dropped (the model stays named in
    ``lulc:model``). A model reached by URL (the service's ``models_public_url``) keeps its link.
    An item whose ``collection`` link is dropped (a series period's, published alone) loses its
    ``collection`` field too: STAC requires the link wherever the field is.
    """
    links = item.get("links", [])
    kept = [
        link
        for link in links
        if not (
            isinstance(link, dict)
            and isinstance(link.get("href"), str)
            and leaves_folder(link["href"], where)
        )
    ]
    out = {**item, "links": kept}
    if "collection" in out and not any(isinstance(k, dict) and k.get("rel") == "collection" for k in kept):
        del out["collection"]
    return out


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
"""S3 bucket names (lower-case letters, digits, dots and hyphens; 3 to 63 characters)."""


def destination_folder(url: str) -> str:
    """Canonical form of a destination: absolute path for local ones, ``s3://bucket/prefix`` otherwise.

    Checked before any work, so a destination the store would refuse fails now, not after the run.

    Raises:
        InputError: not a local path, ``file://`` or ``s3://`` URL, or one no store can write to.
    """
    if is_local(url):
        try:
            path = local_path(url).expanduser().resolve()
        except (ValueError, RuntimeError, OSError) as exc:  # NUL bytes, ~unknown-user, ...
            raise InputError(f"output URL {url[:200]!r} is no usable path: {exc}") from None
        if any(parent.exists() and not parent.is_dir() for parent in (path, *path.parents)):
            raise InputError(f"output URL {url[:200]!r} leads through a file, not a folder")
        return str(path)
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "s3a"):
        raise InputError(
            f"output URL {url[:200]!r} is neither a local directory, a file:// URL nor s3://bucket/prefix"
        )
    if not parsed.netloc:
        raise InputError(f"output URL {url[:200]!r} names no bucket")
    if not _BUCKET.match(parsed.netloc):
        raise InputError(f"output URL {url[:200]!r}: {parsed.netloc!r} is not an S3 bucket name")
    if parsed.query or parsed.fragment or parsed.params:
        raise InputError(f"output URL {url[:200]!r} has a query or fragment; give s3://bucket/prefix")
    prefix = parsed.path.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise InputError(f"output URL {url[:200]!r} has an empty, '.' or '..' path segment")
    return f"s3://{parsed.netloc}" + (f"/{prefix}" if prefix else "")


def open_store(url: str, s3: S3Options | None = None) -> ObjectStore:
    """An obstore store rooted at destination ``url`` (created for local directories)."""
    from obstore.store import LocalStore, S3Store

    folder = destination_folder(url)
    if is_local(url):
        Path(folder).mkdir(parents=True, exist_ok=True)
        return LocalStore(prefix=folder)
    options = s3 or S3Options()
    parsed = urlparse(folder)
    prefix = parsed.path.strip("/") or None
    return S3Store(
        parsed.netloc,
        prefix=prefix,
        client_options={"allow_http": options.allow_http},
        retry_config={"max_retries": 3},
        **options.config(),
    )


def output_files(src_dir: Path) -> list[str]:
    """Relative paths of the files to publish: every regular, non-hidden file, the items last.

    Every ``item.json`` follows all other files, deeper folders' first and the run's own last: a reader
    that finds an item finds the files it lists, and one that finds the run's item finds everything.
    """
    if not src_dir.is_dir():
        raise InputError(f"output directory {src_dir} does not exist")
    names = sorted(
        p.relative_to(src_dir).as_posix()
        for p in src_dir.rglob("*")
        if (p.is_file() or p.is_symlink())
        and not any(part.startswith(".") for part in p.relative_to(src_dir).parts)
    )
    return _items_last(names)


def check_complete(src: Path, names: list[str]) -> None:
    """Refuse a folder whose items list an asset in the folder that is not there, or not as it was written.

    Review: a run missing ``confidence.tif`` was published with an item listing it; one whose
    ``confidence.tif`` was cut short was published with the item's old ``file:size`` and ``file:checksum``
    (products review).

    Raises:
        InputError: an item's asset inside the folder is missing or differs from its ``file:size`` or
            ``file:checksum``, or an item is not JSON.
    """
    present = set(names)
    for name in names:
        if posixpath.basename(name) != ITEM_NAME:
            continue
        try:
            item = json.loads((src / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{src / name} is not a readable STAC item: {exc}") from None
        assets = item.get("assets") if isinstance(item, dict) else None
        for asset in (assets or {}).values() if isinstance(assets, dict) else ():
            href = asset.get("href") if isinstance(asset, dict) else None
            if not isinstance(href, str) or "://" in href or href.startswith("/"):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), href))
            if not target.startswith("../") and target not in present:
                raise InputError(
                    f"{src / name} lists {href}, which is missing from {src}: the run is incomplete; "
                    "run it again"
                )
            if target in present:
                _check_written(src / target, asset, src / name)


def _check_written(path: Path, asset: Mapping[str, Any], item: Path) -> None:
    """Refuse an asset file whose size or multihash is not the ``file:size`` or ``file:checksum`` given."""
    from lulc.checksum import multihash_sha256

    size, checksum, actual = asset.get("file:size"), asset.get("file:checksum"), path.stat().st_size
    if isinstance(size, int) and actual != size:
        changed = f"is {actual:,} bytes, not the {size:,} of"
    elif isinstance(checksum, str) and multihash_sha256(path) != checksum:
        changed = "does not have the file:checksum of"
    else:
        return
    raise InputError(f"{path} {changed} {item}: it changed since the run wrote it; run it again")


def _items_last(names: list[str]) -> list[str]:
    """``names`` with every ``item.json`` after the other files, deeper folders' first, the run's own last."""
    items = sorted((n for n in names if posixpath.basename(n) == ITEM_NAME), key=lambda n: (-n.count("/"), n))
    return [n for n in names if posixpath.basename(n) != ITEM_NAME] + items


def publish(
    src_dir: str | Path, dest: str, *, s3: S3Options | None = None, replace: bool = False
) -> Published:
    """Copy the files of ``src_dir`` to ``dest``, assets first and ``item.json`` last.

    Each file is written atomically by the store (temporary name + rename locally, one PUT on S3),
    so a reader never sees half a file. If any copy fails, the files copied by this call are deleted
    again and ``item.json`` is not written: the destination never announces an incomplete result.
    A destination that already holds a published run is refused unless ``replace``: then that run's
    files are first moved aside into ``REPLACED_FOLDER`` (its ``item.json`` first, so no reader pairs it
    with new files), put back if the new run's copy fails, and deleted once the new ``item.json`` is in
    place: a failed replacement leaves the earlier run as it was. The whole publication holds the
    destination's claim (``CLAIM_NAME``, created only where absent), so two publications never mix their
    files.

    Raises:
        PublishError: a copy failed; the message names the file and the destination (the store's own
            error goes to the log: it can name internal hosts and paths).
        PublishConflictError: another run is being published there (``CLAIM_NAME``).
        InputError: ``src_dir`` does not exist, ``dest`` is not a supported URL, or it holds a run.
    """
    src = Path(src_dir).resolve()
    names = output_files(src)
    check_complete(src, names)
    folder = destination_folder(dest)
    files = {name: join_url(folder, name) for name in names}
    if is_local(dest) and Path(folder) == src:
        return Published(url=folder, files=files)
    if is_local(dest) and Path(folder).is_relative_to(src):  # products review: published into itself, then
        # carried along by its next publication
        raise InputError(f"destination {folder} is inside the run {src}: publish it to a folder outside it")
    store = _open(dest, s3, folder)
    with _claimed(store, folder) as claim:
        return _publish_claimed(store, claim, src, names, files, replace)


def _publish_claimed(
    store: ObjectStore, claim: _Claim, src: Path, names: list[str], files: dict[str, str], replace: bool
) -> Published:
    folder = claim.folder
    import obstore
    from obstore.exceptions import BaseError as StoreError

    _recover_replaced(store, folder)
    held = _holds_run(store, folder)
    if held and not replace:
        raise InputError(f"{folder} already holds a published run (item.json): {_ELSEWHERE}")
    aside = _move_aside(store, folder, _runs_own(store, _listing(store, folder))) if held else []
    done: list[str] = []
    for name in names:
        try:
            if done:
                claim.refresh()  # another publication taking over a stale claim would mix the files
            obstore.put(store, name, src / name, use_multipart=None)
        except PublishConflictError:
            _undo(store, folder, done, aside)
            raise
        except (OSError, ValueError, StoreError) as exc:
            _undo(store, folder, done, aside)
            raise _failed(f"cannot publish {name} to {files[name]}", exc) from None
        except BaseException:  # Ctrl-C, SIGTERM: the earlier run back too (a second one waits for it)
            with held_signals():
                _undo(store, folder, done, aside)
            raise
        done.append(name)
    _remove(store, [_aside(name) for name in aside])
    _prune_local(folder)
    _prune_emptied(folder, aside)
    return Published(url=folder, files=files)


REPLACED_FOLDER = ".lulc-replaced"
"""Where a replaced run's files wait (hidden, so never taken for a run's own) until its replacement is in
place: put back if the replacement fails (it was deleted first, and a failed copy lost the earlier run)."""


def _aside(name: str) -> str:
    return f"{REPLACED_FOLDER}/{name}"


def _move_aside(store: ObjectStore, folder: str, names: list[str]) -> list[str]:
    """Move a replaced run's files into ``REPLACED_FOLDER``, ``item.json`` first; the names moved.

    A rename on a local folder; a copy and a delete on S3. If a move fails, those moved go back and the
    replacement is refused with nothing changed.
    """
    import obstore
    from obstore.exceptions import BaseError as StoreError

    moved: list[str] = []
    for name in list(reversed(_items_last(names))):
        try:
            obstore.rename(store, name, _aside(name), overwrite=True)
        except (OSError, ValueError, StoreError) as exc:
            _put_back(store, folder, moved)
            raise _failed(f"cannot replace the run published at {folder}", exc) from None
        except BaseException:
            with held_signals():
                _put_back(store, folder, moved)
            raise
        moved.append(name)
    return moved


def _recover_replaced(store: ObjectStore, folder: str) -> None:
    """Put back a run a killed publication left in ``REPLACED_FOLDER``, or clear what a finished one left.

    A publication killed while it replaced a run (SIGKILL, a pod evicted) left the earlier run aside and
    the folder without an ``item.json``: the next publication would have gone ahead without ``replace``
    and left it there for good (diff review).
    """
    import obstore
    from obstore.exceptions import BaseError as StoreError

    prefix = f"{REPLACED_FOLDER}/"
    try:
        aside = [str(m["path"]) for batch in obstore.list(store, prefix=REPLACED_FOLDER) for m in batch]
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot read output destination {folder}", exc) from None
    names = [n.removeprefix(prefix) for n in aside if n.startswith(prefix)]
    if not names:
        return
    if ITEM_NAME in names and not _holds_run(store, folder):
        log.warning("putting back the run a cut-short replacement left at %s/%s", folder, REPLACED_FOLDER)
        _put_back(store, folder, names)
    else:  # its replacement finished, or a put-back left files: drop only those the folder has again
        present = set(_listing(store, folder))
        _remove(store, [_aside(n) for n in names if n in present])
        kept = [n for n in names if n not in present]
        if kept:
            log.warning("%s/%s keeps %s: not put back after a replacement", folder, REPLACED_FOLDER, kept)
    _prune_local(folder)


def _prune_local(folder: str) -> None:
    """Remove ``REPLACED_FOLDER``'s empty directories in a local destination (object stores have none)."""
    if not is_local(folder):
        return
    root = local_path(folder) / REPLACED_FOLDER
    if not root.is_dir() or root.is_symlink():
        return
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            path.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def _prune_emptied(folder: str, replaced: list[str]) -> None:
    """Remove the local folders a replaced run's files left empty (its ``clean/`` when the new run has none).

    Object stores have no folders; a folder holding anything else (the new run's, another's) stays.
    """
    if not is_local(folder):
        return
    root = local_path(folder)
    parents = {parent for name in replaced for parent in Path(name).parents if parent != Path(".")}
    for parent in sorted(parents, key=lambda p: -len(p.parts)):
        path = root / parent
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty


def _undo(store: ObjectStore, folder: str, done: list[str], aside: list[str]) -> None:
    """After a failed copy: delete what this publication wrote, put the replaced run back."""
    _remove(store, done)
    _put_back(store, folder, aside)
    _prune_local(folder)


def _put_back(store: ObjectStore, folder: str, names: list[str]) -> None:
    """Move files back from ``REPLACED_FOLDER``, ``item.json`` last (best effort: what fails stays aside)."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    for name in _items_last(names):
        try:
            obstore.rename(store, _aside(name), name, overwrite=True)
        except (OSError, ValueError, StoreError):
            log.warning("could not put %s back at %s: it is in %s", name, folder, _aside(name))


_ELSEWHERE = (
    'choose another output folder, or replace that run (lulc publish --overwrite; "overwrite": true in a '
    "handler event)"
)


def _failed(message: str, exc: BaseException) -> PublishError:
    """``PublishError`` of ``message`` with the store's reason in one line (its full text logged at debug).

    An object store's error runs over many lines (obstore's ``Debug source: ...``): on a command line the
    error is one line, in the service's log the 5xx line carries it. Its URLs (the store's endpoint, which
    a service's client need not learn), timings and response body are left out.
    """
    log.debug("%s", message, exc_info=exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0].split(": <", 1)[0] if lines else type(exc).__name__
    reason = _TIMING.sub("", _URL.sub("<url>", reason))
    kind = PublishUnavailableError if _may_pass(exc) else PublishError
    return kind(f"{message}: {reason[:300]}")


def _may_pass(exc: BaseException) -> bool:
    """Whether a store's failure may pass if tried again: any but a refusal of what was asked.

    Refusals: no such bucket or key, access denied or not signed in, a bad path, an unsupported operation or
    setting, and any other 4xx answer but a timeout, a lost conditional write or throttling (a 403 can come
    as a generic error: README review, a proxy's denial of the destination exited 75). The rest (the
    network, a server error, a conditional write lost to another writer) may pass.
    """
    from obstore import exceptions as store

    refusals = (
        store.NotFoundError,
        store.PermissionDeniedError,
        store.UnauthenticatedError,
        store.InvalidPathError,
        store.NotSupportedError,
        store.UnknownConfigurationKeyError,
    )
    if not isinstance(exc, store.BaseError) or isinstance(exc, refusals):
        return False
    status = _STATUS.search(str(exc))
    return status is None or not status.group(1).startswith("4") or int(status.group(1)) in _PASSING_4XX


_STATUS = re.compile(r"status code: (\d{3})\b")
_PASSING_4XX = {408, 409, 412, 425, 429}
"""Request timeout, conflict, precondition failed (a conditional write lost to another writer), too early,
too many requests: tried again later, they may pass."""


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_TIMING = re.compile(r" in [0-9.]+\s*(?:µs|us|ms|s)\b")


class _Claim:
    """This publication's claim of a destination: made, refreshed between files, released (if still ours)."""

    def __init__(self, store: ObjectStore, folder: str) -> None:
        import uuid

        self.store, self.folder = store, folder
        self.token = uuid.uuid4().hex

    def _body(self) -> bytes:
        return json.dumps({"token": self.token, "refreshed": time.time()}).encode()

    def take(self) -> None:
        """Create the claim where none is, take over a stale one; another's fresh claim is a conflict."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self.store, CLAIM_NAME, self._body(), mode="create")
            return
        except AlreadyExistsError:
            refuse_claimed(self.store, self.folder)
        obstore.put(self.store, CLAIM_NAME, self._body())  # a crashed publication's: taken over
        self.refresh()  # two that took it over at once: the one whose claim was overwritten stops here

    def refresh(self) -> None:
        """Keep the claim fresh (between files): PublishConflictError if another took it over."""
        import obstore

        if _read_claim(self.store).get("token") != self.token:
            raise PublishConflictError(f"another publication took over {self.folder} meanwhile")
        obstore.put(self.store, CLAIM_NAME, self._body())

    def release(self) -> None:
        """Remove the claim, if it is still this publication's."""
        if _read_claim(self.store).get("token") == self.token:
            _remove(self.store, [CLAIM_NAME])


@contextlib.contextmanager
def _claimed(store: ObjectStore, folder: str) -> Iterator[_Claim]:
    """Hold the destination's claim (``CLAIM_NAME``) while publishing."""
    from obstore.exceptions import BaseError as StoreError

    claim = _Claim(store, folder)
    try:
        claim.take()
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot write to output destination {folder}", exc) from None
    try:
        yield claim
    finally:
        with contextlib.suppress(OSError, ValueError, StoreError):
            claim.release()


def _read_claim(store: ObjectStore) -> dict[str, Any]:
    """The claim at a destination ({} where there is none or it is unreadable)."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    try:
        data = json.loads(bytes(obstore.get(store, CLAIM_NAME).bytes()))
    except (OSError, ValueError, StoreError):
        return {}
    return data if isinstance(data, dict) else {}


def refuse_claimed(store: ObjectStore, folder: str) -> None:
    """PublishConflictError if another publication's claim at ``folder`` is fresh (refreshed lately)."""
    claim = _read_claim(store)
    refreshed = claim.get("refreshed")
    if not isinstance(refreshed, int | float) or time.time() - refreshed >= CLAIM_STALE_S:
        return
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(refreshed))
    raise PublishConflictError(
        f"another run is being published to {folder} (its claim {CLAIM_NAME} was refreshed at {at}): try "
        "again when it is done, or choose another output folder; a crashed publication's claim is taken "
        f"over {CLAIM_STALE_S / 60:g} minutes after its last refresh"
    )


def check_destination(dest: str, *, s3: S3Options | None = None, replace: bool = False) -> None:
    """Refuse, before any work, a destination that cannot be written or holds a published run.

    A small file is written there and deleted again (review: `/proc/lulc-x` failed only after the whole
    classification); folders made for it are removed. A run already published there is refused unless
    ``replace``.

    Raises:
        InputError: not a supported URL, or it holds a run's ``item.json``.
        PublishError: the store cannot be reached or written.
    """
    folder = destination_folder(dest)
    with contextlib.ExitStack() as stack:
        if is_local(dest):
            try:
                stack.enter_context(made_folders(Path(folder)))
            except OSError as exc:
                raise _failed(f"cannot open output destination {folder}", exc) from None
        store = _open(dest, s3, folder)
        refuse_claimed(store, folder)  # before the work, not after it
        _probe_write(store, folder)
        if not replace and _holds_run(store, folder):
            raise InputError(f"{folder} already holds a published run (item.json): {_ELSEWHERE}")


def _probe_write(store: ObjectStore, folder: str) -> None:
    import uuid

    import obstore
    from obstore.exceptions import BaseError as StoreError

    name = f".lulc-probe-{uuid.uuid4().hex}"
    try:
        obstore.put(store, name, b"")
        obstore.delete(store, name)
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot write to output destination {folder}", exc) from None


def _open(dest: str, s3: S3Options | None, folder: str) -> ObjectStore:
    from obstore.exceptions import BaseError as StoreError

    try:
        return open_store(dest, s3)
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot open output destination {folder}", exc) from None


def _holds_run(store: ObjectStore, folder: str) -> bool:
    """Whether a destination holds a published run's ``item.json`` (a missing bucket raises, not False)."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    try:
        try:
            obstore.head(store, ITEM_NAME)
        except FileNotFoundError:
            next(iter(obstore.list(store, chunk_size=1)), None)  # a missing bucket fails here, not later
            return False
        return True
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot read output destination {folder}", exc) from None


def _listing(store: ObjectStore, folder: str) -> list[str]:
    """Every file under a destination, relative to it."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    try:
        return [str(meta["path"]) for batch in obstore.list(store) for meta in batch]
    except (OSError, ValueError, StoreError) as exc:
        raise _failed(f"cannot read output destination {folder}", exc) from None


def _runs_own(store: ObjectStore, names: list[str]) -> list[str]:
    """Which of a destination's files belonged to the run published there, so a replacement removes them.

    Its own folder's files and those of its products' subfolders (``clean/``: an ``item.json`` derived
    from ``../item.json``); not other runs published in subfolders, nor models or hidden files.
    """
    import obstore
    from obstore.exceptions import BaseError as StoreError

    visible = [n for n in names if not any(part.startswith(".") for part in n.split("/"))]
    own = [n for n in visible if "/" not in n]
    for sub in sorted({n.split("/")[0] for n in visible if n.count("/") == 1}):
        try:
            item = json.loads(bytes(obstore.get(store, f"{sub}/{ITEM_NAME}").bytes()))
        except (OSError, ValueError, StoreError):
            continue
        links = item.get("links", []) if isinstance(item, dict) else []
        if any(isinstance(link, dict) and link.get("href") == f"../{ITEM_NAME}" for link in links):
            own += [n for n in visible if n.startswith(f"{sub}/") and n.count("/") == 1]
    return own


def _remove(store: ObjectStore, names: list[str]) -> None:
    """Best effort: delete ``names`` (what a failed publication wrote, or a replaced run's leftovers)."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    for name in names:
        try:
            obstore.delete(store, name)
        except (OSError, ValueError, StoreError):
            continue
