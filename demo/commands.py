"""``lulc demo-data``: generate the offline Sentinel-2 world and say what was made."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``demo-data`` to the ``lulc`` app."""
    app.command("demo-data")(demo_data)


def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (empty, new, or a previous demo world).")],
    size: Annotated[int, typer.Option(help="Grid width/height in 10 m pixels (even, 128 to 4096).")] = 1024,
    seed: Annotated[int, typer.Option(min=0, help="Seed of every random choice; same seed, same bytes.")] = 0,
    asset_base_url: Annotated[
        str | None, typer.Option(help="Make asset hrefs absolute: URL/cogs/<item>/<band>.tif.")
    ] = None,
    seasons: Annotated[
        bool, typer.Option(help="Add spring, summer and autumn items of one year and a seasonal recipe.")
    ] = False,
    change: Annotated[
        bool,
        typer.Option(
            help="Add two items of a later year after real land-cover change, and its truth raster."
        ),
    ] = False,
) -> None:
    """Generate a deterministic synthetic Sentinel-2 L2A world: COGs, STAC catalog, points, truth."""
    from rich.console import Console
    from rich.table import Table

    from demo.report import summarize
    from demo.world import generate

    console = Console()
    world = generate(
        out_dir, size=size, seed=seed, asset_base_url=asset_base_url, seasons=seasons, change=change
    )
    summary = summarize(world)
    console.print(
        f"[bold green]demo world[/] {world.root} (size {world.size}, seed {world.seed}, EPSG:{world.epsg})"
    )
    files = Table("file", "path", title="files")
    for name, path in (
        ("STAC catalog", world.catalog),
        ("AOI", world.aoi),
        ("class table", world.classes),
        ("training points", world.train_points),
        ("validation points", world.validation_points),
        ("truth raster", world.truth),
        *([("later truth raster", world.later_truth)] if world.later_truth else []),
        ("training recipe", world.training_config),
        *([("seasonal recipe", world.seasonal_config)] if world.seasonal_config else []),
        ("COGs", world.cogs_dir),
    ):
        files.add_row(name, str(path))
    console.print(files)
    items = Table("date", "baseline", "cloud %", "nodata %", title="items")
    items.add_column("item", no_wrap=True)
    for row in summary.items:
        items.add_row(row.datetime[:10], row.baseline, f"{row.cloud_cover:.2f}", f"{row.nodata:.2f}", row.id)
    console.print(items)
    points = Table("value", "class", "train", "validation", "truth share %", title="classes and points")
    for cls in summary.classes:
        points.add_row(str(cls.value), cls.name, str(cls.train), str(cls.validation), f"{cls.share:.1f}")
    console.print(points)
    console.print(f"datetime window: {world.datetime_window}")
    if world.later_datetime_window:
        console.print(f"later datetime window (after the change): {world.later_datetime_window}")
