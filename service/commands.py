"""``lulc classify``: the classifier engine's command line (container and serverless invocations)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.local_run import DEFAULT_MAX_MPX

if TYPE_CHECKING:
    from service.engine import ClassifyResult


def classify_command(
    model: Annotated[
        Path, typer.Option("--model", help="Model directory, its model.onnx, or its MLM item model.json.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (classes.tif, confidence.tif, item.json, ...).")
    ],
    aoi: Annotated[
        str | None,
        typer.Option(
            "--aoi",
            help="w,s,e,n (EPSG:4326) or a vector file OGR reads, in any CRS it declares (GeoJSON, "
            "Shapefile, GeoPackage of one layer); optional with --image.",
        ),
    ] = None,
    datetime: Annotated[
        str | None,
        typer.Option(
            "--datetime",
            help="RFC 3339 interval, e.g. 2024-06-01/2024-08-31 (required with --stac).",
        ),
    ] = None,
    stac: Annotated[
        str | None,
        typer.Option("--stac", help="STAC API URL, or static catalog / ItemCollection path or URL."),
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="A local multi-band GeoTIFF instead of STAC.")
    ] = None,
    image_bands: Annotated[
        str | None,
        typer.Option(
            "--image-bands",
            help="Names of all the --image's bands, in order (as for lulc train), if it names none.",
        ),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale",
            help="The --image's reflectance = value * scale + offset (as for lulc train), over its own "
            "scaling: a float image of digital numbers needs it.",
        ),
    ] = None,
    offset: Annotated[float | None, typer.Option("--offset", help="See --scale.")] = None,
    collection: Annotated[
        list[str] | None, typer.Option("--collection", help="Collection(s) to search (repeatable).")
    ] = None,
    max_cloud_cover: Annotated[
        float | None,
        typer.Option(
            "--max-cloud-cover", min=0, max=100, help="Only items with eo:cloud_cover at most this."
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option("--crs", help="Output CRS (default: the AOI's UTM zone, or the image's CRS)."),
    ] = None,
    block_size: Annotated[int, typer.Option("--block-size", help="Block edge in pixels.")] = 512,
    threads: Annotated[int, typer.Option("--threads", help="ONNX Runtime intra-op threads per session.")] = 1,
    workers: Annotated[int, typer.Option("--workers", help="Blocks read and classified concurrently.")] = 2,
    dask_scheduler: Annotated[
        str | None,
        typer.Option("--dask-scheduler", help="Run blocks on Dask: a scheduler address, or local:N."),
    ] = None,
    no_confidence: Annotated[
        bool, typer.Option("--no-confidence", help="Do not write confidence.tif.")
    ] = False,
    probabilities: Annotated[
        bool,
        typer.Option("--probabilities", help="Also write probabilities.tif: one band per class, percent."),
    ] = False,
    no_aoa: Annotated[
        bool, typer.Option("--no-aoa", help="Do not write aoa.tif (the model's area of applicability).")
    ] = False,
    no_sets: Annotated[
        bool, typer.Option("--no-sets", help="Do not write sets.tif (the calibrated class sets).")
    ] = False,
    mmu_ha: Annotated[
        float | None,
        typer.Option("--mmu-ha", help="Also clean the map to this minimum mapping unit (ha) into OUT/clean."),
    ] = None,
    mmu_connectivity: Annotated[
        int, typer.Option("--mmu-connectivity", help="4 or 8: patch connectivity of --mmu-ha.")
    ] = 4,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="year, season or month: a map per period of --datetime (OUT/<period>), OUT/collection.json.",
        ),
    ] = None,
    max_mpx: Annotated[
        float,
        typer.Option(
            "--max-mpx",
            help="Largest output grid of a --stac run (the AOI's bounding box at the model's resolution), "
            "in megapixels: larger is refused before any work.",
        ),
    ] = DEFAULT_MAX_MPX,
) -> None:
    """Classify an AOI from STAC items (or a local image) with an ONNX model into a categorical COG."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.clean import clean_summary
    from service.engine import classify
    from service.local_run import prepare_run

    prepared = prepare_run(
        model,
        out=out,
        image=image,
        image_bands=image_bands,  # the text: prepare_run splits it at commas
        scale=scale,
        offset=offset,
        stac=stac,
        collection=collection,
        max_cloud_cover=max_cloud_cover,
        aoi=aoi,
        when=datetime,
        crs=crs,
        block_size=block_size,
        confidence=not no_confidence,
        probabilities=probabilities,
        aoa=not no_aoa,
        sets=not no_sets,
        mmu_ha=mmu_ha,
        mmu_connectivity=mmu_connectivity,
        workers=workers,
        threads=threads,
        every=every,
        dask_scheduler=dask_scheduler,
        max_mpx=max_mpx,
    )
    request, runner, factory = prepared.request, prepared.runner, prepared.factory
    with RichProgress(Console(stderr=True)) as progress:
        if every is not None:
            from service.series import classify_series

            series = classify_series(
                request,
                runner,
                factory,
                out,
                every,
                workers=workers,
                progress=progress,
                dask_scheduler=dask_scheduler,
            )
        else:
            result = classify(
                request,
                runner,
                factory,
                out,
                workers=workers,
                progress=progress,
                dask_scheduler=dask_scheduler,
            )
    if every is not None:
        for label, run in series.runs.items():
            typer.echo(f"{label}: wrote {run.classes.parent}")
            echo_class_areas(run.stats_dict)
            echo_unmapped(run.stats_dict, image is not None)
        for label, reason in series.skipped.items():
            typer.echo(f"{label}: skipped, {reason}")
        typer.echo(f"wrote {series.collection}")
        return
    typer.echo(written_files(result))
    echo_class_areas(result.stats_dict)
    echo_unmapped(result.stats_dict, image is not None)
    if result.clean is not None and result.clean_stats is not None:
        mmu = result.clean_stats["mmu"]
        typer.echo(
            clean_summary(result.clean, mmu["hectares"], mmu["threshold_pixels"], mmu["changed_pixels"])
        )
        echo_class_areas(result.clean_stats)


def written_files(result: ClassifyResult) -> str:
    """``wrote FOLDER/ (classes.tif, ...)``: every file the run wrote, as its item lists them, and the item.

    The files are the item's assets (the maps, their style and statistics), then ``item.json`` and the
    cleaned map's folder ``clean/`` when the run made one.
    """
    folder = result.item.parent
    names = [str(PurePosixPath(str(asset["href"]))) for asset in result.item_dict["assets"].values()]
    names.append(result.item.name)
    if result.clean is not None:
        names.append(f"{result.clean.name}/")
    return f"wrote {folder}/ ({', '.join(names)})"


def echo_class_areas(stats: dict[str, Any]) -> None:
    """One line per class of a ``stats.json``: value, name, hectares."""
    for row in stats["classes"]:
        typer.echo(f"  {row['value']:>3} {row['name']:<24} {row['hectares']:>14.2f} ha")


def echo_unmapped(stats: dict[str, Any], local_image: bool = False) -> None:
    """``service.local_run.unmapped_note`` on stderr, when there is one."""
    from service.local_run import unmapped_note

    note = unmapped_note(stats, local_image)
    if note is not None:
        typer.echo(f"note: {note}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``classify`` and ``publish`` to the ``lulc`` program (``serve``: ``service.serve_command``)."""
    from service.publish_command import publish_command

    app.command("classify")(classify_command)
    app.command("publish")(publish_command)
