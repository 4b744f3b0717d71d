"""The model directory's MLM item (``model.json``) as STAC sees it: core + every extension it declares."""

from __future__ import annotations

import json
from pathlib import Path

from lulc.contract import load_contract
from tests.support.stac_validation import assert_valid_stac_file


def test_the_trained_models_item_validates(static_model: Path) -> None:
    item = assert_valid_stac_file(static_model / "model.json")
    model = item["assets"]["model"]
    assert model["href"] == "model.onnx"
    contract = load_contract(static_model / "model.json")
    assert [b["name"] for b in model["raster:bands"]] == contract.feature_names
    for row in item["properties"]["mlm:output"][0]["classification:classes"]:
        assert row["title"] == contract.classes.by_value(row["value"]).name
    assert json.loads((static_model / "metrics.json").read_text())  # the asset it lists exists
