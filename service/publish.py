"""Copy a finished output directory to its destination (local directory or ``s3://``), the STAC item last."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lulc.errors import InputError, LulcError

if TYPE_CHECKING:
    from obstore.store import ObjectStore

ITEM_NAME = "item.json"
"""The file published last: once it exists at the destination, every asset it points to does too."""


class PublishError(LulcError):
    """Outputs could not be copied to their destination (store unreachable, permission denied, ...)."""


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
    return {**item, "links": kept}


def destination_folder(url: str) -> str:
    """Canonical form of a destination: absolute path for local ones, ``s3://bucket/prefix`` otherwise."""
    if is_local(url):
        return str(local_path(url).expanduser().resolve())
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "s3a"):
        raise InputError(
            f"output URL {url!r} is neither a local directory, a file:// URL nor s3://bucket/prefix"
        )
    if not parsed.netloc:
        raise InputError(f"output URL {url!r} names no bucket")
    prefix = parsed.path.strip("/")
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
    """Relative paths of the files to publish: every regular, non-hidden file, ``item.json`` last."""
    if not src_dir.is_dir():
        raise InputError(f"output directory {src_dir} does not exist")
    names = sorted(
        p.relative_to(src_dir).as_posix()
        for p in src_dir.rglob("*")
        if (p.is_file() or p.is_symlink())
        and not any(part.startswith(".") for part in p.relative_to(src_dir).parts)
    )
    if ITEM_NAME in names:
        names.remove(ITEM_NAME)
        names.append(ITEM_NAME)
    return names


def publish(src_dir: str | Path, dest: str, *, s3: S3Options | None = None) -> Published:
    """Copy the files of ``src_dir`` to ``dest``, assets first and ``item.json`` last.

    Each file is written atomically by the store (temporary name + rename locally, one PUT on S3),
    so a reader never sees half a file. If any copy fails, the assets copied by this call are
    deleted again (unless an earlier, complete publication's ``item.json`` is already there) and
    ``item.json`` is not written: the destination never announces an incomplete result.

    Raises:
        PublishError: a copy failed; the message names the file and the destination.
        InputError: ``src_dir`` does not exist or ``dest`` is not a supported URL.
    """
    import obstore
    from obstore.exceptions import BaseError as StoreError

    src = Path(src_dir).resolve()
    names = output_files(src)
    folder = destination_folder(dest)
    files = {name: join_url(folder, name) for name in names}
    if is_local(dest) and Path(folder) == src:
        return Published(url=folder, files=files)
    try:
        store = open_store(dest, s3)
    except (OSError, ValueError, StoreError) as exc:
        raise PublishError(f"cannot open output destination {folder}: {exc}") from exc
    done: list[str] = []
    try:
        for name in names:
            try:
                obstore.put(store, name, src / name, use_multipart=None)
            except (OSError, ValueError, StoreError) as exc:
                raise PublishError(f"cannot publish {src / name} to {files[name]}: {exc}") from exc
            done.append(name)
    except PublishError:
        _remove_partial(store, done)
        raise
    return Published(url=folder, files=files)


def _remove_partial(store: ObjectStore, done: list[str]) -> None:
    """Best effort: delete what this failed publication wrote, unless a complete one was already there."""
    import obstore
    from obstore.exceptions import BaseError as StoreError

    try:
        obstore.head(store, ITEM_NAME)
        return  # an earlier complete publication: its assets were overwritten atomically, keep them
    except (OSError, ValueError, StoreError):
        pass
    for name in done:
        try:
            obstore.delete(store, name)
        except (OSError, ValueError, StoreError):
            continue
