"""The soak's figures from its samples and tally: a summary (memory, lag, rates,
latencies), the text printed at the end, the JSON and the SVG plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import svg
from bench.traffic import READERS, READS, WINDOW, Tally

SMOOTH_SECONDS = 10.0
REORGS = (
    "org.moved",
    "org.merged",
    "org.dissolved",
    "org.renamed",
)  # the rates in the plot: the mean over this many seconds


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "n": len(values),
    }


def summary(
    tally: Tally,
    samples: list[dict[str, Any]],
    load_seconds: float,
    drain_seconds: float,
    rebuild_seconds: float | None,
) -> dict[str, Any]:
    load = [s for s in samples if s["phase"] == "load"]
    memory: dict[str, dict[str, float | None]] = {}
    for name in samples[0]["rss_mib"] if samples else []:
        seen = [s["rss_mib"][name] for s in samples if s["rss_mib"].get(name) is not None]
        memory[name] = {
            "start": seen[0] if seen else None,
            "end": seen[-1] if seen else None,
            "max": max(seen) if seen else None,
        }
    backends = [s["postgres"]["private_mib"] for s in samples]
    memory["postgres backends (private)"] = {
        "start": backends[0] if backends else None,
        "end": backends[-1] if backends else None,
        "max": max(backends) if backends else None,
    }
    reads = sum(tally.reads.values())
    return {
        "types": dict(tally.types.most_common()),
        "claims": sum(n for t, n in tally.types.items() if t.startswith("claim.")),
        "reorgs": sum(n for t, n in tally.types.items() if t in REORGS),
        "load_seconds": round(load_seconds, 1),
        "samples": len(samples),
        "events": tally.events,
        "write_requests": tally.write_requests,
        "events_per_s": tally.events / load_seconds if load_seconds else None,
        "write_requests_per_s": tally.write_requests / load_seconds if load_seconds else None,
        "write_ms": spread(tally.write_ms),
        "reads": reads,
        "reads_per_s": reads / load_seconds if load_seconds else None,
        "read_ms": {kind: spread(ms) for kind, ms in tally.read_ms.items()},
        "replays": tally.replays,
        "races": tally.races,
        "conflicts": tally.conflicts,
        "retried": tally.retried,
        "abandoned": tally.abandoned,
        "lagging_reads": tally.lagging,
        "not_asked": tally.not_asked,
        "as_of_503": tally.waited_out,
        "statuses": dict(sorted(tally.statuses.items())),
        "transport_errors": dict(tally.transport),
        "rss_mib": memory,
        "postgres_backends": spread([float(s["postgres"]["backends"]) for s in samples]),
        "lag": spread([float(s["lag"]) for s in load]),
        # Readiness probes not answered 200, by API: a sign of trouble, or of a busy machine.
        "not_ready": {name: sum(s["ready"][name] != 200 for s in samples) for name in samples[0]["ready"]}
        if samples
        else {},
        # How long /readyz took: a process whose event loop is held up answers it late.
        "readyz_ms": {name: spread([s["ready_ms"][name] for s in samples]) for name in samples[0]["ready"]}
        if samples
        else {},
        "drain_seconds": round(drain_seconds, 1),
        "rebuild_seconds": None if rebuild_seconds is None else round(rebuild_seconds, 1),
        "load_1m": spread([float(s["load_1m"]) for s in samples]),
    }


def _ms(found: dict[str, Any]) -> str:
    if not found["n"]:
        return "none"
    return f"p50 {found['p50']:.0f} ms, p99 {found['p99']:.0f} ms"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def text(results: dict[str, Any]) -> str:
    s = results["summary"]
    lines = [
        f"soak of {s['load_seconds'] / 60:.1f} min on {results['date']}, database {results['database']}, "
        f"{results['deployment']} ({', '.join(results['processes'])})",
        f"writes: {s['events']} events in {s['write_requests']} requests, {s['events_per_s']:.1f} events/s "
        f"({s['write_requests_per_s']:.1f} requests/s), {_ms(s['write_ms'])}; {s['replays']} replays, "
        f"{s['races']} races, {s['conflicts']} conflicts answered 409, {s['retried']} retries, "
        f"{s['abandoned']} given up; {s['claims']} claims (denied, retracted, confirmed), {s['reorgs']} reorgs "
        "(orgs moved, merged, dissolved, renamed)",
        f"reads: {s['reads']} ({s['reads_per_s']:.1f}/s); "
        + "; ".join(f"{kind} {_ms(found)}" for kind, found in s["read_ms"].items())
        + f"; {s['lagging_reads']} answered behind the log (Projection-Lag), {s['as_of_503']} as_of reads 503, "
        f"{s['not_asked']} not asked ({READERS} in flight already)",
        "memory, MiB (start / end / max): "
        + "; ".join(
            f"{n} {_mib(m['start'])} / {_mib(m['end'])} / {_mib(m['max'])}" for n, m in s["rss_mib"].items()
        ),
        f"lag, events: p50 {s['lag']['p50']:.0f}, p99 {s['lag']['p99']:.0f}, max {s['lag']['max']:.0f}; "
        f"at the head {s['drain_seconds']:.1f} s after the load; rebuild {s['rebuild_seconds']} s; "
        f"readiness probes not answered 200: {s['not_ready']}; /readyz took (p50 / p99 / max ms): "
        + "; ".join(
            f"{n} {m['p50']:.0f} / {m['p99']:.0f} / {m['max']:.0f}" for n, m in s["readyz_ms"].items()
        ),
        f"statuses: {s['statuses']}; transport errors: {s['transport_errors'] or 'none'}; "
        f"machine load (1 min): p50 {s['load_1m']['p50']}, max {s['load_1m']['max']}",
        "invariants:",
    ]
    for name, found in results["invariants"].items():
        lines.append(f"  {'held' if found['held'] else 'BROKEN'}: {name}: {found['detail']}")
    return "\n".join(lines)


def rates(samples: list[dict[str, Any]], field: str) -> list[tuple[float, float]]:
    """Per second, the mean over the last SMOOTH_SECONDS (from the first full window on),
    of a cumulative count."""
    out = []
    j = 0
    for i, sample in enumerate(samples):
        while samples[i]["t"] - samples[j]["t"] > SMOOTH_SECONDS:
            j += 1
        span = sample["t"] - samples[j]["t"]
        if span >= SMOOTH_SECONDS - 1.5 and sample["phase"] == "load":
            out.append((sample["t"] / 60, (sample[field] - samples[j][field]) / span))
    return out


def chart(results: dict[str, Any]) -> str:
    samples = results["samples"]
    s = results["summary"]
    cfg = results["config"]
    minutes = [x["t"] / 60 for x in samples]
    memory = [
        svg.Series(
            name,
            [(m, x["rss_mib"][name]) for m, x in zip(minutes, samples, strict=True) if x["rss_mib"][name]],
        )
        for name in samples[0]["rss_mib"]
    ]
    memory.append(
        svg.Series(
            "PostgreSQL backends (private)",
            [(m, x["postgres"]["private_mib"]) for m, x in zip(minutes, samples, strict=True)],
            dashed=True,
        )
    )
    lag = [svg.Series("head − checkpoint", [(m, x["lag"]) for m, x in zip(minutes, samples, strict=True)])]
    traffic = [
        svg.Series(f"events written/s ({SMOOTH_SECONDS:.0f} s mean)", rates(samples, "events")),
        svg.Series(f"reads/s ({SMOOTH_SECONDS:.0f} s mean)", rates(samples, "reads")),
    ]
    latency = [
        svg.Series(
            kind,
            [(m, x["ms"][kind]["p50"]) for m, x in zip(minutes, samples, strict=True) if kind in x["ms"]],
        )
        for kind in ["write", *READS]
    ]
    end = max((x["t"] for x in samples if x["phase"] == "load"), default=0.0) / 60
    return svg.render(
        svg.Chart(
            title=f"hiring-news soak: {s['load_seconds'] / 60:.3g} minutes of {results['deployment']}",
            subtitle=(
                f"{results['date']}; {cfg['rate']:g} events/s written by {cfg['writers']} writers, {cfg['reads']:g} "
                f"reads/s; {s['events']:,} events; database {results['database']}; "
                f"{results['machine']['nproc']} cores shared (load p50 {s['load_1m']['p50']})"
            ),
            x_label="minutes since the load began",
            panels=[
                svg.Panel("Resident memory per process (children included)", "MiB", memory),
                svg.Panel("Projection lag: events in the log not yet projected", "events", lag),
                svg.Panel("Traffic", "per second", traffic),
                svg.Panel(
                    f"Latency: median of the requests answered in the last {WINDOW:.0f} s, by kind (log scale)",
                    "ms",
                    latency,
                    log=True,
                ),
            ],
            markers=[svg.Marker(end, "load ends, projector catches up →")],
        )
    )


def write(results: dict[str, Any], json_path: Path | None, plot_path: Path | None) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if plot_path is not None:
        plot_path.parent.mkdir(parents=True, exist_ok=True)
        plot_path.write_text(chart(results))
