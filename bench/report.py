"""``bench/RESULTS.md`` from ``results.json``: one table of every figure with its target and pass/fail."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str]
TILE_TARGET = 1.1


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return f"{text}{unit}"
    return f"{value}{unit}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def classify_rows(entry: dict[str, Any]) -> list[Row]:
    """Rows of one model's classification benchmark."""
    m = entry["model"]
    size = round(entry["megapixels"] ** 0.5 * 1000)
    part = f"1. classify {m} ({size:,} px², {entry['megapixels']:.1f} Mpx)"
    svc, floor, ratios, targets = entry["service"], entry["floor"], entry["ratios"], entry["targets"]
    rows: list[Row] = [
        (
            part,
            "(A) `lulc classify` end to end: wall / throughput",
            f"{svc['wall_s']} s / {svc['mpx_s']} Mpx/s",
            "",
            "",
        ),
        (
            part,
            "(A) peak RSS",
            _fmt(svc["peak_rss_mib"], " MiB"),
            "< 1024 MiB",
            _verdict(targets["service_peak_rss_lt_1GiB"]),
        ),
        (
            part,
            "(C) ONNX inference alone (in memory, 2 blocks at a time)",
            f"{floor['mpx_s']} Mpx/s ({floor['pixels'] / 1e6:.1f} Mpx in {floor['seconds']} s)",
            "",
            "",
        ),
        (
            part,
            "A / C throughput",
            _fmt(ratios["service_over_floor"]),
            ">= 0.8",
            _verdict(targets["service_over_floor_ge_0.8"]),
        ),
    ]
    for tut in entry.get("tutorial", []):
        rows.append(
            (
                part,
                f"(B) tutorial approach at {tut['size']:,} px²: wall / throughput / peak RSS",
                f"{tut['wall_s']} s / {tut['mpx_s']} Mpx/s / {_fmt(tut['peak_rss_mib'], ' MiB')}",
                "RSS grows with the scene",
                "",
            )
        )
    if "tutorial_skipped" in entry:
        rows.append(
            (part, "(B) tutorial approach at full size", f"not run: {entry['tutorial_skipped']}", "", "n/a")
        )
    rows.append(
        (
            part,
            "B wall / A wall (speed-up of the service)",
            _fmt(ratios["speedup_over_tutorial"], "x"),
            ">= 1.5x (A wall <= 2/3 B wall)",
            _verdict(targets["speedup_over_tutorial_ge_1.5"]),
        )
    )
    growth = entry.get("tutorial_rss_growth")
    if growth is not None:
        rows.append(
            (
                part,
                "(B) peak RSS full size / small size",
                _fmt(growth, "x"),
                "grows with the scene",
                _verdict(growth > 1.5),
            )
        )
    agreement = entry.get("agreement")
    if agreement:
        rows.append(
            (
                part,
                "label agreement A vs B (and each vs truth)",
                f"{100 * agreement['agreement']:.2f} % ({100 * agreement['truth_agreement_service']:.1f} % / "
                f"{100 * agreement['truth_agreement_tutorial']:.1f} %)",
                "",
                "",
            )
        )
    return rows


def sampling_rows(s: dict[str, Any]) -> list[Row]:
    """Rows of the sampling benchmark."""
    part = f"2. sampling {s['points']:,} points x {s['bands']} bands ({s['scene_size']:,} px² item)"
    g, n = s["grouped"], s["naive"]
    naive_note = f" (measured on {n['points']:,} points, scaled)" if n["extrapolated"] else ""
    return [
        (
            part,
            "block-grouped sampler: time / HTTP requests / blocks read",
            f"{g['seconds']} s / {g['requests']:,} / {g['blocks_read']:,}",
            "",
            "",
        ),
        (
            part,
            "naive loop (open per point and band): time / HTTP requests",
            f"{n['seconds_for_all_points']} s / {n['requests_for_all_points']:,}{naive_note}",
            "",
            "",
        ),
        (
            part,
            "requests bounded by blocks touched",
            f"{g['requests']:,} <= {s['bound']}",
            "bounded",
            _verdict(s["targets"]["requests_bounded_by_blocks"]),
        ),
        (
            part,
            "naive requests / grouped requests",
            _fmt(s["ratios"]["fewer_requests"], "x"),
            ">= 10x",
            _verdict(s["targets"]["fewer_requests_ge_10x"]),
        ),
        (part, "naive time / grouped time", _fmt(s["ratios"]["faster"], "x"), "", ""),
        (
            part,
            "grouped: requests per block and band / repeated byte ranges",
            f"{_fmt(s['ratios']['requests_per_block_and_band'])} / {s['grouped_repeated_range_requests']:,}",
            "",
            "",
        ),
    ]


def tiles_rows(t: dict[str, Any]) -> list[Row]:
    """Rows of the tile benchmark (whatever ``bench/tiles.py`` returned)."""
    part = "3. tiles"
    if "skipped" in t:
        return [(part, "tile latency / throughput", f"not run: {t['skipped']}", "within 1.1x", "n/a")]
    rows: list[Row] = []
    ratio = t.get("ratio")
    servers = [t.get(name) for name in ("lulc", "titiler")]
    if isinstance(ratio, dict) and all(isinstance(v, dict) for v in servers):
        errors = sum(int(v.get("errors", 0)) for v in servers if isinstance(v, dict))
        ok = (
            errors == 0
            and ratio.get("p50", 9.0) <= TILE_TARGET
            and ratio.get("p95", 9.0) <= TILE_TARGET
            and ratio.get("throughput", 0.0) >= 1 / TILE_TARGET
        )
        rows.append(
            (
                part,
                "our tiler / bare TiTiler: p50, p95 latency, throughput; errors",
                f"{_fmt(ratio.get('p50'))}, {_fmt(ratio.get('p95'))}, "
                f"{_fmt(ratio.get('throughput'))}; {errors}",
                "latency <= 1.1x, throughput >= 1/1.1x, 0 errors",
                _verdict(ok),
            )
        )
    for key, value in t.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if not isinstance(v, dict | list))
            rows.append((part, key, text, "", ""))
        elif not isinstance(value, list):
            ok = value if isinstance(value, bool) else None
            rows.append((part, key, _fmt(value), "", _verdict(ok) if ok is not None else ""))
    return rows


def scaleout_rows(s: dict[str, Any]) -> list[Row]:
    """Rows of the scale-out benchmark."""
    part = f"4. scale-out {s['model']} ({s['scene_size']:,} px²)"
    rows: list[Row] = [
        (part, f"{label}: wall / throughput", f"{r['wall_s']} s / {r['mpx_s']} Mpx/s", "", "")
        for label, r in s["runs"].items()
    ]
    rows.append(
        (
            part,
            "2 Dask workers / 1 Dask worker throughput",
            _fmt(s["speedup_2_over_1_workers"], "x"),
            "(2 cores)",
            "",
        )
    )
    rows.append(
        (
            part,
            "classes.tif byte-identical across the three runs",
            _fmt(s["outputs_byte_identical"]),
            "yes",
            _verdict(s["outputs_byte_identical"]),
        )
    )
    return rows


def _pair(figures: dict[str, Any] | None, key: str) -> str:
    return _fmt(figures[key]) if figures is not None else "no thread option"


def runtime_rows(r: dict[str, Any]) -> list[Row]:
    """Rows of the model runtime benchmark: our graph vs ONNX Runtime's stock operators vs scikit-learn."""
    return _model_runtime_rows(f"5. model runtimes ({r['pixels']:,} px)", r["models"])


def _model_runtime_rows(part: str, models: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for m in models:
        name, target = m["model"], m.get("target_per_core")
        ours = m["ours_1t"]["mpx_cpu_s"]
        rows.append(
            (
                part,
                f"{name}: per core, Mpx per CPU second (1 thread): ours / ONNX Runtime stock / scikit-learn",
                f"{_fmt(ours)} / {_fmt(m['stock_1t']['mpx_cpu_s'])} / {_fmt(m['sklearn_1t']['mpx_cpu_s'])}",
                f"ours >= {target}" if target else "",
                _verdict(ours >= target) if target else "",
            )
        )
        rows.append(
            (
                part,
                f"{name}: ours / stock, ours / scikit-learn (per core)",
                f"{_fmt(m['ours_over_stock_per_core'])}x, {_fmt(m['ours_over_sklearn_per_core'])}x",
                "",
                "",
            )
        )
        rows.append(
            (
                part,
                f"{name}: wall Mpx/s, 1 / 2 threads: ours; stock; scikit-learn",
                f"{_fmt(m['ours_1t']['mpx_s'])} / {_fmt(m['ours_2t']['mpx_s'])}; "
                f"{_fmt(m['stock_1t']['mpx_s'])} / {_fmt(m['stock_2t']['mpx_s'])}; "
                f"{_fmt(m['sklearn_1t']['mpx_s'])} / {_pair(m['sklearn_2t'], 'mpx_s')}",
                "",
                f"load {m['load_average_at_start'][0]} -> {m['load_average_at_end'][0]}",
            )
        )
        forms = m.get("forms") or {}
        if forms:
            rows.append(
                (
                    part,
                    f"{name}: other exact forms, Mpx per CPU second (1 thread; label agreement)",
                    "; ".join(
                        f"{form} {_fmt(f['1t']['mpx_cpu_s'])} ({100 * f['label_agreement']:.4f} %)"
                        if "1t" in f
                        else f"{form} {f['skipped']}"
                        for form, f in forms.items()
                    ),
                    "",
                    "",
                )
            )
        agree = min(m["ours_label_agreement"], m["stock_label_agreement"])
        rows.append(
            (
                part,
                f"{name}: label agreement with scikit-learn, ours / stock (decide_labels on all)",
                f"{100 * m['ours_label_agreement']:.4f} % / {100 * m['stock_label_agreement']:.4f} %",
                ">= 99.99 % (training's parity gate)",
                _verdict(agree >= 0.9999),
            )
        )
    return rows


def peers_rows(p: dict[str, Any]) -> list[Row]:
    """Rows of issue 14's side-by-side part: lulc classify vs the tutorial's workflow vs pyspatialml."""
    rows: list[Row] = []
    targets = p.get("targets", {})
    for note in ("pyspatialml_error", "pyspatialml_skipped"):
        if note in p:
            rows.append(("6. peers", "pyspatialml", f"not run: {p[note]}", "", "n/a"))
    if "runtimes" in p:
        r = p["runtimes"]
        part = f"6. peers, the tutorial's SVM per core ({r['pixels']:,} px of {r['scene']})"
        rows += _model_runtime_rows(part, [r])
    for index, s in enumerate(p.get("scenes", [])):
        tiled = index == 0
        part = f"6. peers, {s['scene']} ({s['width']:,} x {s['height']:,} px, {s['megapixels']:.1f} Mpx)"
        svc, floor, ratios = s["service"], s["floor"], s["ratios"]
        rows.append(
            (
                part,
                "(A) `lulc classify --image`: wall / CPU / peak RSS",
                f"{svc['wall_s']} s / {svc['cpu_s']} s / {_fmt(svc['peak_rss_mib'], ' MiB')}",
                "" if tiled else "< 60 s, < 1024 MiB",
                ""
                if tiled
                else _verdict(targets.get("full_tile_lt_60s") and targets.get("full_tile_rss_lt_1GiB")),
            )
        )
        rows.append(
            (
                part,
                "(C) inference alone (blocks in memory, 2 at a time): Mpx/s (Mpx per CPU second)",
                f"{floor['mpx_s']} ({floor['mpx_cpu_s']}) on {floor['pixels'] / 1e6:.1f} Mpx",
                "",
                "",
            )
        )
        rows.append(
            (
                part,
                "A / C throughput: wall (per CPU second)",
                f"{_fmt(ratios['service_over_floor'])} ({_fmt(ratios['service_over_floor_cpu'])})",
                ">= 0.85",
                _verdict(
                    None if ratios["service_over_floor"] is None else ratios["service_over_floor"] >= 0.85
                ),
            )
        )
        for key, name, ratio_key, target_key in (
            ("tutorial", "(B) tutorial workflow", "tutorial_over_service", "tiled_over_tutorial_ge_4"),
            (
                "pyspatialml",
                "(P) pyspatialml Raster.predict",
                "pyspatialml_over_service",
                "tiled_over_pyspatialml_ge_4",
            ),
        ):
            run = s.get(key)
            if run is None:
                reason = s.get(f"{key}_skipped", "not run")
                rows.append((part, name, f"not run: {reason}", "", "n/a"))
                continue
            rows.append(
                (
                    part,
                    f"{name}: wall / CPU / peak RSS",
                    f"{run['wall_s']} s / {run['cpu_s']} s / {_fmt(run['peak_rss_mib'], ' MiB')}",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    part,
                    f"{name.split(' ')[0]} wall / A wall (CPU seconds / A's)",
                    f"{_fmt(ratios[ratio_key], 'x')} ({_fmt(ratios.get(ratio_key + '_cpu'), 'x')})",
                    ">= 4x" if tiled else "",
                    _verdict(targets.get(target_key)) if tiled else "",
                )
            )
        if not tiled and p.get("marginal", {}).get("floor_over_service") is not None:
            m = p["marginal"]
            rows.append(
                (
                    "6. peers, from the tiled scene to the full tile",
                    "CPU seconds per extra Mpx: A / C (startup cancels out); C / A",
                    f"{m['service_cpu_s_per_mpx']} / {m['floor_cpu_s_per_mpx']}; "
                    f"{_fmt(m['floor_over_service'])}",
                    "",
                    "",
                )
            )
        agreement = ", ".join(
            f"{k.split('_vs_')[1]} {100 * v:.2f} %" for k, v in s.get("agreement", {}).items()
        )
        if agreement:
            rows.append((part, "label agreement of A with", agreement, "", ""))
    return rows


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    machine = results["machine"]
    lib = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
    lines = [
        "# lulc-stac benchmark results",
        "",
        f"- Date (UTC): {results['started']} to {results.get('finished', 'unfinished')}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}",
        f"- Python {machine['python']}; {lib}",
        f"- Load average at start / end: {machine['load_average_at_start']} / "
        f"{results.get('load_average_at_end', 'n/a')} (the machine is shared: every figure is compared with "
        "a baseline run in the same script)",
        f"- Command: `{results['command']}`",
    ]
    if set(results) & {"classify", "sampling", "tiles", "scaleout", "runtimes"}:  # part 6 has its own scenes
        lines.append(
            f"- Scene: {results['size']:,} x {results['size']:,} px, 4 bands (blue, green, red, nir), uint16 "
            "COGs (512 tiles, deflate) served over loopback HTTP (uvicorn + Starlette StaticFiles, "
            "Range -> 206)"
        )
    for note in results.get("notes", []):
        lines.append(f"- Note: {note}")
    lines += ["", "| Part | Figure | Value | Target | Result |", "|---|---|---|---|---|"]
    rows: list[Row] = []
    for entry in results.get("classify", []):
        rows += classify_rows(entry)
    if "sampling" in results:
        rows += sampling_rows(results["sampling"])
    if "tiles" in results:
        rows += tiles_rows(results["tiles"])
    if "scaleout" in results:
        rows += scaleout_rows(results["scaleout"])
    if "runtimes" in results:
        rows += runtime_rows(results["runtimes"])
    if "peers" in results:
        rows += peers_rows(results["peers"])
    for part, error in results.get("errors", {}).items():
        rows.append((part, "error", error.replace("\n", " ")[:300], "", "FAIL"))
    for part, reason in results.get("skipped", {}).items():
        rows.append((part, "not run", reason, "", "n/a"))
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines += ["", "What each figure means: see `bench/README.md`. Raw numbers: `bench/results.json`.", ""]
    return "\n".join(lines)
