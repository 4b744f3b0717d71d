"""``lulc demo``: the whole job on the offline demo world, then the web map.

Data (with a later year after land-cover change), model, map and its accuracy, the map cleaned to a minimum
mapping unit (with the change in accuracy), the later year's map and the from-to change between the two.
Every map and product is a folder under ``<out>/runs`` with its STAC item.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from lulc.listening import check_port_free
from lulc.signals import sigterm_for_servers

DEFAULT_OUT = Path("demo-output")


MMU_HA = 0.5
"""The demo's minimum mapping unit (hectares) for the cleaned map."""
RUNS = (("demo", None), ("demo-clean", "clean"), ("demo-later", None), ("demo-change", "change"))
"""The run folders under ``<out>/runs`` and their ``lulc:product`` (None: a map)."""


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, and how good the model and the maps are."""

    world: Path
    model: Path
    run: Path
    holdout_accuracy: float
    map_accuracy: float
    clean: Path | None = None
    """The map cleaned to ``MMU_HA`` (a run folder: ``lulc:product`` ``clean``)."""
    clean_accuracy: float | None = None
    later_run: Path | None = None
    """The same model's map of the later year, after the world's land-cover change."""
    change: Path | None = None
    """From-to change between the two maps (``change.tif``, transitions, item with ``lulc:product``)."""


def check_demo_folder(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or that holds files but no demo world.

    The demo replaces its model and runs there: a folder of someone's own models and runs lost them (CLI
    review).
    """
    from lulc.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a folder of the demo's own, e.g. --out demo-output")
    if not out.is_dir() or (out / "world" / "catalog.json").is_file():
        return
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise InputError(
            f"--out {out} holds {shown} but no demo world (world/catalog.json): the demo would replace "
            "models and runs there; give a new or empty folder, or an earlier demo's"
        )


def run_demo(out: Path, size: int | None = None, seed: int = 0, echo: Any = print) -> DemoResult:
    """The whole demo job (world, model, map, cleaned map, later map, change); where it all is."""
    from demo.world import DEFAULT_SIZE, generate
    from service.change import change_runs
    from service.clean import clean_run
    from service.engine import classify
    from service.output import check_out_folder, refuse_here_or_root
    from service.readers import StacReaderFactory
    from service.request import ClassifyRequest
    from service.runner import load_model
    from training.assess import assess_map
    from training.config import load_config
    from training.pipeline import train

    refuse_here_or_root(out, "--out", "give a folder of the demo's own, e.g. --out demo-output")
    check_demo_folder(out)
    out = out.resolve()
    for name, product in RUNS:  # before any work, as every other command checks its --out (review)
        check_out_folder(out / "runs" / name, product)
    world_dir = out / "world"
    # generate() overwrites an earlier demo world in place (same bytes) and refuses foreign files
    world = generate(world_dir, size=size or DEFAULT_SIZE, seed=seed, change=True)
    echo(
        f"1/6 demo world: {len(world.item_ids)} Sentinel-2 items (the map's window {world.datetime_window}, "
        f"the later map's {world.later_datetime_window}) -> {world_dir}"
    )

    model_dir = out / "models" / "demo"
    config = load_config(world.training_config, {"out": str(model_dir)})
    trained = train(config)
    holdout = float(trained.metrics["holdout"]["overall_accuracy"])
    echo(
        f"2/6 model: {trained.contract.provenance.model_type} "
        f"hold-out accuracy {holdout:.1%} -> {trained.out}"
    )

    model = load_model(trained.out)
    aoi = json.loads(world.aoi.read_text())
    items = StacReaderFactory(str(world.catalog))
    run_dir = out / "runs" / "demo"
    result = classify(ClassifyRequest(aoi=aoi, datetime=world.datetime_window), model, items, run_dir)
    assessment = assess_map(result.classes, world.validation_points, "label")
    map_accuracy = float(assessment["overall_accuracy"])
    echo(
        f"3/6 map: {result.classes}, accuracy on {world.validation_points.name} {map_accuracy:.1%} "
        "(Olofsson et al. 2014)"
    )

    cleaned = clean_run(run_dir, out / "runs" / "demo-clean", mmu_ha=MMU_HA)
    clean_assessment = assess_map(cleaned.out_dir / "classes.tif", world.validation_points, "label")
    clean_accuracy = float(clean_assessment["overall_accuracy"])
    gain = clean_assessment["accuracy_change"]
    echo(
        f"4/6 cleaned map (minimum mapping unit {MMU_HA:g} ha, {cleaned.changed_pixels:,} pixels changed): "
        f"accuracy {clean_accuracy:.1%} ({100 * gain['overall_accuracy']:+.2f} points) -> {cleaned.out_dir}"
    )

    later_window = world.later_datetime_window
    if later_window is None:
        raise RuntimeError("generate(change=True) gave no later datetime window")
    later_dir = out / "runs" / "demo-later"
    later = classify(ClassifyRequest(aoi=aoi, datetime=later_window), model, items, later_dir)
    echo(f"5/6 map of {later_window}: {later.classes}")

    change = change_runs(run_dir, later_dir, out / "runs" / "demo-change")
    hectares = np.asarray(change.matrix["hectares"], dtype=np.float64)
    compared = float(hectares.sum())
    echo(
        f"6/6 change: {compared - float(np.trace(hectares)):,.1f} ha of {compared:,.1f} ha "
        f"mapped as changed -> {change.out_dir}"
    )
    return DemoResult(
        world_dir,
        trained.out,
        run_dir,
        holdout,
        map_accuracy,
        clean=cleaned.out_dir,
        clean_accuracy=clean_accuracy,
        later_run=later_dir,
        change=change.out_dir,
    )


def program_name(argv0: str, on_path: str | None) -> str:
    """How to run this ``lulc`` again: ``lulc`` if the shell finds this one (``on_path``), else its path.

    ``make demo`` runs ``.venv/bin/lulc``, which a shell without the virtual environment does not find
    (review: the printed hint said ``lulc``: "command not found").
    """
    here = Path(argv0)
    if here.name != "lulc" or (on_path is not None and Path(on_path).resolve() == here.resolve()):
        return "lulc"
    return str(here)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the world, model and map.")] = DEFAULT_OUT,
    size: Annotated[
        int | None, typer.Option(help="Demo world edge in pixels (default: the generator's).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the demo world and the model.")] = 0,
    serve: Annotated[bool, typer.Option(help="Serve the web map when done.")] = True,
    host: Annotated[str, typer.Option(help="Interface the web map listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the web map listens on.")] = 8080,
) -> None:
    """Run the whole job on the offline demo world (map, cleaned map, change), then serve the web map."""
    if serve:
        check_port_free(  # before the job: a second demo would redo it all, then fail to listen
            host,
            port,
            "the web map",
            "another lulc demo? give another port, --port 8090 (make demo DEMO_PORT=8090), or --no-serve",
        )
    run_demo(out, size, seed, echo=typer.echo)
    program = program_name(sys.argv[0], shutil.which("lulc"))
    reopen = f"{program} tiler --allow {out} --runs {out / 'runs'} --host {host} --port {port}"
    typer.echo(f"outputs in {out}/ (world, models, runs); to reopen the map later: {reopen}")
    if not serve:
        return
    import uvicorn

    from tiler.app import MISSING_LIBRARY, create_app, web_map_library_present
    from tiler.settings import TilerSettings

    if not web_map_library_present():
        typer.echo(MISSING_LIBRARY, err=True)

    settings = TilerSettings(
        host=host,
        port=port,
        allow=[str(out.resolve())],
        runs_dir=out.resolve() / "runs",
        models_dir=out.resolve() / "models",
    )
    typer.echo(f"web map: http://{host}:{port}/  (Ctrl-C to stop)")
    sigterm_for_servers()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``lulc`` program."""
    app.command("demo")(demo)
