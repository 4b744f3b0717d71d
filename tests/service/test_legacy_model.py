"""A model written before the core moved to ``lulc/`` still loads and classifies to the same pixels.

The fixture model (tests/data/models/pre-move-demo) was written by ``lulc demo`` at commit d9c1cd9; the
digests below are of the class and confidence arrays it produced then on the demo world's AOI (seed 0).
The confidence digest was renewed once, when the classifier took training's float32 scaling (``lulc.pixels``,
one pixel path): the classes stayed identical, 4 of 806,404 confidence pixels moved by 1. Both digests were
renewed when the demo world's soils got their west-east gradient (``demo.sensor.SOIL_GRADIENT``): the input
changed, not the code (the old digests held on the old world at the commit before, ce6105d). The confidence
digest was renewed again when percents came from probabilities rounded to 5 decimals
(``lulc.decision.percent``, so ONNX Runtime's thread count cannot move them): 391 of 806,404 pixels
moved by 1, each a probability of a half percent at 5 decimals, now always rounded up where its float32
noise had decided; the classes stayed identical, and the old digest held with the old rounding put back
(measured with both in one script).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import rasterio

from demo.world import DemoWorld
from lulc.contract import load_contract
from service.engine import classify
from service.readers import StacReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"
PIXELS_BEFORE_THE_MOVE = {
    "classes": "13e32dc0832088346ffb7b088906ce3f2173043fa7825f83385cf44add75e7e7",
    "confidence": "222f603e65f5e2e3c14d72d7ee657e6850698ad43f58e3363088cd01668c06f3",
}


def _pixel_digest(path: Path) -> str:
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read().tobytes()).hexdigest()


def test_the_fixture_names_the_old_modules() -> None:
    """Control: the MLM item really is from before the move."""
    item = json.loads((MODEL / "model.json").read_text())
    expression = item["properties"]["mlm:input"][0]["pre_processing_function"]["expression"]
    assert expression == "service.features:compute_features"


def test_an_old_mlm_item_still_gives_its_contract() -> None:
    contract = load_contract(MODEL / "model.json")
    assert contract.name == "demo"
    assert load_model(MODEL).contract == contract


def test_a_model_from_before_the_move_classifies_to_the_same_pixels(
    demo_world: DemoWorld, tmp_path: Path
) -> None:
    request = ClassifyRequest(aoi=json.loads(demo_world.aoi.read_text()), datetime=demo_world.datetime_window)
    source = StacReaderFactory(str(demo_world.catalog))
    result = classify(request, load_model(MODEL), source, tmp_path / "run")
    assert result.confidence is not None
    digests = {"classes": _pixel_digest(result.classes), "confidence": _pixel_digest(result.confidence)}
    assert digests == PIXELS_BEFORE_THE_MOVE


def test_the_old_item_and_todays_item_for_the_same_onnx_give_the_same_map(
    demo_world: DemoWorld, tmp_path: Path
) -> None:
    """The same ONNX file under today's MLM item classifies to the same arrays as under its pre-move one.

    Independent of the stored digests above, which hold only since their last renewal.
    """
    from lulc.checksum import multihash_sha256
    from lulc.contract import to_mlm_item

    today = tmp_path / "today"
    today.mkdir()
    onnx = (MODEL / "model.onnx").read_bytes()
    (today / "model.onnx").write_bytes(onnx)
    item = to_mlm_item(
        load_contract(MODEL / "model.json"), "model.onnx", multihash_sha256(onnx), "2024-06-01T00:00:00Z"
    )
    (today / "model.json").write_text(json.dumps(item))
    assert "service.features" not in (today / "model.json").read_text()  # today's module names
    request = ClassifyRequest(aoi=json.loads(demo_world.aoi.read_text()), datetime=demo_world.datetime_window)
    source = StacReaderFactory(str(demo_world.catalog))
    old = classify(request, load_model(MODEL), source, tmp_path / "old")
    new = classify(request, load_model(today), source, tmp_path / "new")
    for name in ("classes", "confidence"):
        a, b = getattr(old, name), getattr(new, name)
        assert a is not None
        assert b is not None
        with rasterio.open(a) as x, rasterio.open(b) as y:
            assert (x.read() == y.read()).all(), name


def test_an_old_contract_keeps_its_bytes() -> None:
    """Fields added since (seasons, the item selection, ...) are left out when unset.

    So an old model's contract re-serialises to the bytes it was stored with, which a run's item id hashes.
    """
    import onnx

    from lulc.contract import METADATA_KEY, contract_from_json

    model = onnx.load(str(MODEL / "model.onnx"))
    stored = {p.key: p.value for p in model.metadata_props}[METADATA_KEY]
    assert contract_from_json(stored, "model.onnx").to_json() == stored
