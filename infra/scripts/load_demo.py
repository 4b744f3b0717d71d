"""Load a static STAC catalog (the demo world's ``catalog.json``) into pgstac with pypgstac.

Walks the catalog's child and item links, writes the collections and the items as NDJSON, and upserts
both with pypgstac's loader (connection from the standard ``PG*`` environment variables). Used by the
compose stack's ``loader`` service: ``python load_demo.py /work/demo-world/catalog.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin


class CatalogError(Exception):
    """The catalog cannot be read or is not what this loader expects."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read STAC JSON {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path} is not a STAC object")
    return data


def _absolute_hrefs(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    """Asset hrefs made absolute (relative ones against the file's location); self/parent links dropped."""
    base = path.resolve().as_uri()
    for asset in obj.get("assets", {}).values():
        asset["href"] = urljoin(base, asset["href"])
    obj["links"] = [
        link for link in obj.get("links", []) if link.get("rel") not in {"self", "parent", "root"}
    ]
    return obj


def walk(catalog: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The collections and items reachable from ``catalog`` (each item carries its ``collection``)."""
    collections: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    stack: list[tuple[Path, str | None]] = [(catalog, None)]
    seen: set[Path] = set()
    while stack:
        path, collection = stack.pop()
        path = path.resolve()
        if path in seen:
            continue
        seen.add(path)
        obj = _read(path)
        kind = obj.get("type")
        if kind == "Feature":
            if collection is not None:
                obj.setdefault("collection", collection)
            if "collection" not in obj:
                raise CatalogError(f"item {obj.get('id')} in {path} belongs to no collection")
            items.append(_absolute_hrefs(obj, path))
            continue
        if kind == "Collection":
            collection = str(obj["id"])
        children = [
            (path.parent / link["href"], collection)
            for link in obj.get("links", [])
            if link.get("rel") in {"child", "item"}
        ]
        if kind == "Collection":
            collections.append(_absolute_hrefs(dict(obj), path))
        stack.extend(reversed(children))
    if not items:
        raise CatalogError(f"{catalog} links to no items")
    return collections, items


def write_ndjson(objects: list[dict[str, Any]], path: Path) -> Path:
    """``objects`` as newline-delimited JSON at ``path``."""
    path.write_text("".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in objects))
    return path


def load(catalog: Path) -> tuple[int, int]:
    """Upsert the catalog's collections and items into pgstac; returns (collections, items)."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    collections, items = walk(catalog)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with PgstacDB(dsn="") as db:
            loader = Loader(db=db)
            loader.load_collections(
                str(write_ndjson(collections, folder / "collections.ndjson")), Methods.upsert
            )
            loader.load_items(str(write_ndjson(items, folder / "items.ndjson")), Methods.upsert)
    return len(collections), len(items)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``load_demo.py CATALOG_JSON``."""
    parser = argparse.ArgumentParser(description="Load a static STAC catalog into pgstac.")
    parser.add_argument("catalog", type=Path)
    args = parser.parse_args(argv)
    try:
        n_collections, n_items = load(args.catalog)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {n_collections} collection(s) and {n_items} item(s) from {args.catalog}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
