"""Only blocks holding a pixel of the AOI are read, and a run says how much of its AOI it mapped (AOI review).

Two fields at opposite ends of a scene, or a ring around a hole, made the engine fetch every block of the
box around them from every item (SCL and each band), then mask what lay outside. A counting reader (the
real STAC reader inside, behind the engine's ``ReaderFactory`` seam) records what is read.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import shapely.geometry

from lulc.aoi import parse_aoi
from lulc.classes import NODATA
from lulc.contract import ModelContract
from lulc.grid import Block, OutputGrid
from lulc.pixels import BlockReader, SourceRef
from service.blocks import classify_block
from service.engine import classify
from service.readers import StacReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model
from tests.service.conftest import EngineWorld


@dataclass
class CountingReader:
    """The real reader, and the index of every block read through it."""

    inner: BlockReader
    blocks: list[int] = field(default_factory=list)

    def read(self, block: Block) -> np.ndarray:
        self.blocks.append(block.index)
        return self.inner.read(block)

    def sources(self) -> list[SourceRef]:
        return self.inner.sources()


@dataclass
class CountingFactory:
    """``StacReaderFactory`` whose reader counts its reads."""

    inner: StacReaderFactory
    reader: CountingReader | None = None
    grid: OutputGrid | None = None

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        self.grid = self.inner.prepare_grid(request, contract)
        return self.grid

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> CountingReader:
        self.reader = CountingReader(self.inner.open(request, grid, contract))
        return self.reader


def test_blocks_without_an_aoi_pixel_are_not_read(engine_world: EngineWorld, tmp_path: Path) -> None:
    west, south, east, north = parse_aoi(engine_world.aoi).bounds
    dx, dy = (east - west) / 12, (north - south) / 12
    fields = shapely.geometry.MultiPolygon(
        [
            shapely.geometry.box(west + dx, south + dy, west + 2 * dx, south + 2 * dy),
            shapely.geometry.box(east - 2 * dx, north - 2 * dy, east - dx, north - dy),
        ]
    )
    factory = CountingFactory(StacReaderFactory(str(engine_world.catalog)))
    request = ClassifyRequest(
        aoi=shapely.geometry.mapping(fields), datetime=engine_world.datetime, block_size=32
    )
    result = classify(request, load_model(engine_world.model), factory, tmp_path / "run", workers=2)
    assert factory.grid is not None
    assert factory.reader is not None
    grid = factory.grid
    holding = {block.index for block in grid.blocks() if grid.aoi_mask(block).any()}
    assert sorted(factory.reader.blocks) == sorted(holding), "each block with an AOI pixel, once"
    assert len(holding) < grid.n_blocks / 2, "the premise: most blocks of the box lie between the fields"
    with rasterio.open(result.classes) as src:
        labels = src.read(1)
    inside = np.zeros(labels.shape, dtype=bool)
    for block in grid.blocks():
        inside[block.row : block.row + block.height, block.col : block.col + block.width] = grid.aoi_mask(
            block
        )
    assert (labels[~inside] == NODATA).all()
    assert (labels[inside] != NODATA).mean() > 0.9, "the fields themselves are mapped"


@pytest.mark.parametrize("workers", [1, 2])
def test_each_block_s_aoi_mask_is_computed_once(
    engine_world: EngineWorld, tmp_path: Path, workers: int
) -> None:
    """A block's AOI mask is computed once, by its read, which hands it on to the inference.

    Both computed it (~14 ms a 512 px block on the AOI's edge; notes). Only the engine's check that the AOI
    holds a pixel centre computes masks before, up to the first block holding one.
    """
    calls: Counter[int] = Counter()

    @dataclass(frozen=True)
    class CountingGrid(OutputGrid):
        def aoi_mask(self, block: Block) -> npt.NDArray[np.bool_]:
            calls[block.index] += 1
            return super().aoi_mask(block)

    class GridFactory(CountingFactory):
        def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
            grid = self.inner.prepare_grid(request, contract)
            self.grid = CountingGrid(**{f.name: getattr(grid, f.name) for f in dataclasses.fields(grid)})
            return self.grid

    west, south, east, north = parse_aoi(engine_world.aoi).bounds
    dx, dy = (east - west) / 5, (north - south) / 5
    disc = shapely.geometry.Point((west + east) / 2, (south + north) / 2).buffer(min(dx, dy) * 2)
    factory = GridFactory(StacReaderFactory(str(engine_world.catalog)))
    request = ClassifyRequest(
        aoi=shapely.geometry.mapping(disc), datetime=engine_world.datetime, block_size=128
    )
    classify(request, load_model(engine_world.model), factory, tmp_path / "run", workers=workers)
    assert factory.grid is not None
    assert factory.reader is not None
    blocks = list(factory.grid.blocks())
    first = next(n for n, block in enumerate(blocks) if OutputGrid.aoi_mask(factory.grid, block).any())
    assert 0 < len(factory.reader.blocks) < len(blocks), "the premise: the disc leaves blocks out"
    assert sum(calls.values()) == len(blocks) + first + 1
    # the Dask workers' path: one block at a time through classify_block
    calls.clear()
    model = load_model(engine_world.model)
    for block in blocks:
        classify_block(model, factory.reader, factory.grid, block, confidence=True)
    assert calls == Counter({block.index: 1 for block in blocks})


def test_an_aoi_reaching_past_the_imagery_says_how_much_of_it_is_mapped(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """AOI review: an AOI 72 % past the scene gave exit 0 and areas, no word that most of it is unmapped."""
    from tests.support.cli import lulc

    west, south, east, north = parse_aoi(engine_world.aoi).bounds
    width = east - west
    box = f"{west - width / 2},{south},{west + width / 2},{north}"  # its western half lies past the scene
    done = lulc(
        "classify",
        "--stac",
        engine_world.catalog,
        "--model",
        engine_world.model,
        "--aoi",
        box,
        "--datetime",
        engine_world.datetime,
        "--out",
        tmp_path / "run",
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["aoi_pixels"] > stats["valid_pixels"]
    assert 0.4 < stats["mapped_fraction"] < 0.6
    assert stats["mapped_fraction"] == round(stats["valid_pixels"] / stats["aoi_pixels"], 6)
    item = json.loads((tmp_path / "run" / "item.json").read_text())
    assert item["properties"]["lulc:mapped_fraction"] == stats["mapped_fraction"]
    unmapped = 100 * (1 - stats["mapped_fraction"])
    assert f"note: {unmapped:.1f} % of the AOI's {stats['aoi_pixels']:,} pixels have no class" in done.stderr
    # the whole AOI of the world: mapped, no note
    whole = lulc(
        "classify",
        "--stac",
        engine_world.catalog,
        "--model",
        engine_world.model,
        "--aoi",
        ",".join(map(str, parse_aoi(engine_world.aoi).bounds)),
        "--datetime",
        engine_world.datetime,
        "--out",
        tmp_path / "whole",
    )
    assert whole.returncode == 0, whole.stderr
    assert "have no class" not in whole.stderr
    assert json.loads((tmp_path / "whole" / "stats.json").read_text())["mapped_fraction"] > 0.99


def test_the_unmapped_note_of_a_local_image_names_its_edge_not_clouds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README review: an --image AOI past the image's edge was said to be clouds, shadows or no imagery."""
    from service.commands import echo_unmapped

    stats = {"mapped_fraction": 0.347, "aoi_pixels": 275_165}
    echo_unmapped(stats, local_image=True)
    image = capsys.readouterr().err
    echo_unmapped(stats)
    stac = capsys.readouterr().err
    assert image.startswith(
        "note: 65.3 % of the AOI's 275,165 pixels have no class (no valid pixel of the image"
    )
    assert "past its edge, or its nodata" in image
    assert "clouds" not in image
    assert "clouds, shadows" in stac


def test_the_python_api_keeps_the_unmapped_note_and_its_runs_are_paths(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """Notebook review: ``classify`` returned areas of 38 % of an AOI without a word; a run was no path."""
    import os

    from service.api import MapRun, MapSeries, classify
    from training.api import assess

    west, south, east, north = parse_aoi(engine_world.aoi).bounds
    width = east - west
    run = classify(
        engine_world.model,
        stac=str(engine_world.catalog),
        aoi=f"{west - width / 2},{south},{west + width / 2},{north}",  # its western half past the scene
        datetime=engine_world.datetime,
        out=tmp_path / "run",
    )
    unmapped = 100 * (1 - run.stats["mapped_fraction"])
    assert run.notes == (
        f"{unmapped:.1f} % of the AOI's {run.stats['aoi_pixels']:,} pixels have no class "
        "(no clear observation: clouds, shadows, or no imagery there); "
        "the class areas are of the mapped part",
    )
    assert os.fspath(run) == str(tmp_path / "run")
    assessed = assess(run, points=engine_world.validation, label_field="label")  # the run itself: its folder
    assert 0.5 < assessed.overall_accuracy <= 1.0
    whole = MapRun(**{**run.__dict__, "stats": {**run.stats, "mapped_fraction": 1.0}})
    series = MapSeries({"2023": run, "2024": whole}, {}, tmp_path)
    areas = series.areas
    assert list(areas["mapped_fraction"]) == [run.stats["mapped_fraction"], 1.0]
    assert areas.loc["2023", run.stats["classes"][0]["name"]] == run.stats["classes"][0]["hectares"]
