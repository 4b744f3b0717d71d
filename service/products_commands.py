"""``lulc clean``, ``smooth``, ``vectorize``, ``change`` and ``design``: products made from a finished map.

Each reads run folders as ``lulc classify`` writes them and writes its files atomically with a STAC item.
Heavy imports stay inside the commands so ``lulc --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lulc.errors import InputError
from service.commands import echo_class_areas

if TYPE_CHECKING:
    from service.design import DesignResult

RunArg = Annotated[
    Path, typer.Argument(metavar="RUN", help="A `lulc classify` output folder, or its classes.tif.")
]
ConnectivityOpt = Annotated[
    int, typer.Option("--connectivity", help="4 (edges) or 8 (edges and corners) for patches.")
]
BlockSizeOpt = Annotated[int, typer.Option("--block-size", help="Block edge in pixels (bounds memory).")]


def clean_command(
    run: RunArg,
    mmu_ha: Annotated[float, typer.Option("--mmu-ha", help="Minimum mapping unit in hectares.")],
    out: Annotated[Path, typer.Option("--out", help="Output run folder for the cleaned map.")],
    connectivity: ConnectivityOpt = 4,
    block_size: BlockSizeOpt = 512,
) -> None:
    """Merge patches under the minimum mapping unit into their largest neighbour (GDAL's sieve rule)."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.clean import clean_run, clean_summary
    from service.output import check_out_folder
    from service.sieve import checked_connectivity

    conn = checked_connectivity(connectivity)
    check_out_folder(out, "clean")
    with RichProgress(Console(stderr=True)) as progress:
        result = clean_run(
            run,
            out,
            mmu_ha=mmu_ha,
            connectivity=conn,
            block_size=block_size,
            progress=progress,
        )
    typer.echo(clean_summary(result.out_dir, mmu_ha, result.threshold_pixels, result.changed_pixels))
    echo_class_areas(result.stats)


def parse_smoothness(text: str) -> tuple[float, ...]:
    """``--smoothness``: one positive number, or one per class in class-table order, comma-separated."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"--smoothness {text!r} is not a number or a comma-separated list of numbers (one per class)"
        ) from None
    return values


def smooth_command(
    run: RunArg,
    out: Annotated[Path, typer.Option("--out", help="Output run folder for the smoothed map.")],
    window: Annotated[int, typer.Option("--window", help="Neighbourhood edge in pixels (odd).")] = 9,
    neigh_fraction: Annotated[
        float, typer.Option("--neigh-fraction", help="Share of the neighbourhood's highest values used.")
    ] = 0.5,
    smoothness: Annotated[
        str,
        typer.Option(
            "--smoothness",
            help="Prior variance of the logits: one number, or one per class, comma-separated.",
        ),
    ] = "20",
    block_size: BlockSizeOpt = 512,
) -> None:
    """Smooth a map's class probabilities as sits' Bayesian smoothing does, then label them again."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.output import check_out_folder
    from service.smooth import smooth_run, smoothing

    params = smoothing(window, neigh_fraction, parse_smoothness(smoothness))
    check_out_folder(out, "smooth")
    with RichProgress(Console(stderr=True)) as progress:
        result = smooth_run(run, out, params, block_size=block_size, progress=progress)
    typer.echo(
        f"wrote {result.out_dir}: Bayesian smoothing in {window} x {window} windows, "
        f"{result.changed_pixels} pixels changed class"
    )
    echo_class_areas(result.stats)


def vectorize_command(
    run: RunArg,
    out: Annotated[
        Path, typer.Option("--out", help="Output vector file: .gpkg, .fgb or .parquet (GeoParquet).")
    ],
    connectivity: ConnectivityOpt = 4,
    block_size: BlockSizeOpt = 512,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an --out file that is not an earlier vectorize output."),
    ] = False,
) -> None:
    """Write one polygon per patch: class value and name, pixels, area in hectares, mean confidence."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.sieve import checked_connectivity
    from service.vectorize import vectorize_run

    conn = checked_connectivity(connectivity)
    with RichProgress(Console(stderr=True)) as progress:
        result = vectorize_run(
            run, out, connectivity=conn, block_size=block_size, overwrite=overwrite, progress=progress
        )
    typer.echo(f"wrote {result.path} ({result.features} patches), {result.item_path}")


def change_command(
    run_a: Annotated[
        Path, typer.Argument(metavar="RUN_A", help="The earlier `lulc classify` output folder.")
    ],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B", help="The later one (same model, same grid).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (change.tif, transitions.json, ...).")],
    block_size: BlockSizeOpt = 512,
    points: Annotated[
        Path | None,
        typer.Option(
            "--points", help="Validation points labelled at both dates: change areas with 95 % CIs."
        ),
    ] = None,
    label_a: Annotated[
        str, typer.Option("--label-a", help="Points field: reference class at RUN_A's date.")
    ] = ("label_a"),
    label_b: Annotated[
        str, typer.Option("--label-b", help="Points field: reference class at RUN_B's date.")
    ] = ("label_b"),
) -> None:
    """From-to change between two maps: a coded change COG and the transition matrix (pixels, hectares)."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.change import change_runs
    from service.output import check_out_folder

    check_out_folder(out, "change")
    with RichProgress(Console(stderr=True)) as progress:
        result = change_runs(
            run_a,
            run_b,
            out,
            block_size=block_size,
            points=points,
            label_a=label_a,
            label_b=label_b,
            progress=progress,
        )
    matrix = result.matrix
    typer.echo(
        f"wrote {result.out_dir}: {matrix['changed_pixels']} of {matrix['compared_pixels']} pixels changed"
    )
    for row in matrix["by_class"]:
        typer.echo(f"  {row['name']:<24} {row['from_hectares']:>12.2f} ha -> {row['to_hectares']:>12.2f} ha")
    if result.areas is not None:
        changed = result.areas["changed"]
        typer.echo(
            f"changed area (Olofsson et al. 2014, {result.areas['points']} points): "
            f"{changed['estimated_hectares']:.2f} +/- {changed['ci95_hectares']:.2f} ha (95 %), "
            f"mapped {changed['mapped_hectares']:.2f} ha"
        )


def parse_users_accuracy(text: str | None) -> float | dict[str | int, float] | None:
    """``--users-accuracy``: one number for every class, or ``class=number`` pairs (names or values)."""
    if text is None or not text.strip():
        return None
    try:
        if "=" not in text:
            return float(text)
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        parsed: dict[str | int, float] = {key.strip(): float(value) for key, value in pairs}
        if len(parsed) < len(pairs):  # the last of a class given twice won, exit 0 (products review)
            keys = [key.strip() for key, _ in pairs]
            twice = next(key for key in keys if keys.count(key) > 1)
            raise InputError(f"--users-accuracy gives {twice!r} twice: give each class once")
        return parsed
    except ValueError as exc:
        raise InputError(
            f"--users-accuracy takes a number or class=number pairs (Forest=0.9,Water=0.95), got {text!r}"
        ) from exc


def design_command(
    run: Annotated[
        Path,
        typer.Argument(
            metavar="RUN",
            help="A `lulc classify` output folder (or its classes.tif), or a `lulc change` folder "
            "(then: change strata).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The sample file (.gpkg or .fgb); its item beside it.")],
    target_se: Annotated[
        float, typer.Option("--target-se", help="Target standard error of overall accuracy.")
    ] = 0.01,
    min_per_class: Annotated[
        int, typer.Option("--min-per-class", help="Points of every mapped class at least.")
    ] = 50,
    users_accuracy: Annotated[
        str | None,
        typer.Option(
            "--users-accuracy",
            help="Anticipated user's accuracy: one number, or class=number pairs (default 0.75 each).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed: the same seed, the same file.")] = 0,
    block_size: BlockSizeOpt = 512,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing --out file (and the labels it may hold)."),
    ] = False,
) -> None:
    """A stratified random validation sample of a map (Olofsson et al. 2014), with an empty label column."""
    from rich.console import Console

    from lulc.progress import RichProgress
    from service.design import describe, design_run

    accuracy = parse_users_accuracy(users_accuracy)
    with RichProgress(Console(stderr=True)) as progress:
        result = design_run(
            run,
            out,
            target_se=target_se,
            min_per_class=min_per_class,
            users_accuracy=accuracy,
            seed=seed,
            block_size=block_size,
            overwrite=overwrite,
            progress=progress,
        )
    typer.echo(f"wrote {result.path} and {result.item_path}: {describe(result.design)}")
    typer.echo(design_hint(result))


def design_hint(result: DesignResult) -> str:
    """What to do with a new sample: the columns to fill and the command that reads them, in one line.

    A change sample (``lulc design`` on a ``lulc change`` folder) is labelled at both dates and read by
    ``lulc change --points``; a map's by ``lulc assess``. Either reads the design from the item beside it.
    """
    design = result.item["properties"]["lulc:design"]
    columns = " and ".join(f"`{field}`" for field in design["label_fields"])
    keep = f"(keep {result.item_path.name} beside it: the design is read from it)"
    if design["kind"] == "change":
        return (
            f"fill the points' {columns} columns with the reference class at the dates of the two runs "
            f"(value or name), then: lulc change RUN_A RUN_B --out OUT --points {result.path} {keep}"
        )
    return (
        f"fill the points' {columns} column with the reference class (value or name), then: "
        f"lulc assess MAP.tif --points {result.path} {keep}"
    )


def register(app: typer.Typer) -> None:
    """Add ``clean``, ``smooth``, ``vectorize``, ``change`` and ``design`` to the ``lulc`` program."""
    app.command("clean")(clean_command)
    app.command("smooth")(smooth_command)
    app.command("vectorize")(vectorize_command)
    app.command("change")(change_command)
    app.command("design")(design_command)
