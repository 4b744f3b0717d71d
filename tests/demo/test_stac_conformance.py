"""Every STAC document of the demo world (both provider flavours) validates against core + its extensions.

The items imitate providers: Earth Search declares projection v1.1.0 and Planetary Computer v1.0.0, which
have ``proj:epsg`` (all stackstac 0.5 reads); the validation holds them to exactly what they declare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.stac_validation import assert_valid_stac


def stac_documents(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(root.rglob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict) and document.get("type") in ("Feature", "Catalog", "Collection"):
            found.append((path, document))
    return found


def test_every_catalog_collection_and_item_validates(demo_world: Any) -> None:
    documents = stac_documents(Path(demo_world))
    kinds = [d["type"] for _, d in documents]
    assert kinds.count("Catalog") == 2  # the Earth Search and Planetary Computer flavours
    assert kinds.count("Collection") == 2
    assert kinds.count("Feature") >= 4
    for path, document in documents:
        assert_valid_stac(document, str(path))
        if document["type"] == "Feature":
            assert isinstance(document["properties"]["proj:epsg"], int)  # what stackstac 0.5.1 reads
