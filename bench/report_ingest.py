"""The ingest sections of bench/RESULTS.md: this machine's run and the 16-core machine's, with their verdicts."""

from __future__ import annotations

from report_parts import heading, load, table, verdict


def ingest_sections() -> list[str]:
    """The ingest tables, from bench/results/ingest.json and ingest-device.json (each when present)."""
    out: list[str] = []
    if ingest := load("ingest"):
        out += heading("Ingest", "ingest.py", ingest, f"load from {ingest['load_generator']} on the same machine.")
        out += ingest_table(ingest)
    if device := load("ingest-device"):
        out += heading(
            "Ingest on a 16-core machine",
            "device/ingest.py",
            device,
            f"{device['machine'].get('host', '')}; MariaDB, {device['load_generator']}, the api and the bare "
            "handler on one host with cores to spare.",
        )
        if device["machine"]["date"] < FILE_WRITER_SINCE:
            out += [
                f"**Taken before the api's file writer process** ({FILE_WRITER_SINCE[:16]}) and the other "
                "ingest changes before it; see the notes below. Not rerun on 16 cores since.",
                "",
            ]
        out += ingest_table(device, issue_26=False)
    return out


def ingest_table(ingest: dict, *, issue_26: bool = True) -> list[str]:
    """The ingest table and its verdicts (issue 26's only for runs taken since it: `issue_26`)."""
    out: list[str] = []
    rows = [
        [
            r["server"],
            r["size"],
            r["concurrency"],
            r["uploads_per_s"],
            " / ".join(str(v) for v in r.get("runs_uploads_per_s", [])),
            r["p50_ms"],
            r["p99_ms"],
            r.get("server_cpu_ms_per_upload", ""),
            r["errors"],
            f"{r['vs_bare']} ({' / '.join(str(v) for v in r['runs_vs_bare'])})" if "runs_vs_bare" in r else "",
        ]
        for r in ingest["rows"]
    ]
    out += [
        "Each case ran both servers in turn, several rounds; the table shows the median round by rate "
        "(its latencies and CPU), every round's rate beside it; vs bare is the median of the rounds' ratios, "
        "each taken in the same minutes. CPU is the server's per upload: its process, all threads, and its "
        "children (the api's file writer).",
        "",
        table(
            [
                "server",
                "file",
                "concurrency",
                "uploads/s",
                "rounds (uploads/s)",
                "p50 ms",
                "p99 ms",
                "CPU ms/upload",
                "errors",
                "vs bare",
            ],
            rows,
        ),
        "",
    ]
    c16 = [r for r in ingest["rows"] if r["server"] == "image-server" and r["concurrency"] == 16]
    out += [
        "Target >= 0.8x the bare handler: "
        + "; ".join(
            f"{r['size']} at {r['concurrency']}: {verdict(r['vs_bare'] >= 0.8)}"
            for r in ingest["rows"]
            if "vs_bare" in r
        )
        + ". Target p99 < 100 ms at concurrency 16: "
        + "; ".join(p99_verdict(r, ingest["rows"]) for r in c16)
        + (". Issue 26, with uploads streamed (c16): " if issue_26 else "")
        + "; ".join(
            f"{r['size']} >= {ISSUE_26_TARGETS[r['size']]}x: {verdict(r['vs_bare'] >= ISSUE_26_TARGETS[r['size']])}"
            f" ({r['vs_bare']}x)"
            for r in c16
            if issue_26 and r["size"] in ISSUE_26_TARGETS
        )
        + ".",
        "",
    ]
    return out


ISSUE_26_TARGETS = {"100KiB": 0.85, "1.5MiB": 1.3}


# When uploads' files moved to the api's helper process (commit 50c5b26): results older than this
# measured the service as it was before.
FILE_WRITER_SINCE = "2026-11-26T14:43:32+00:00"


def p99_verdict(row: dict, rows: list[dict]) -> str:
    """Whether p99 < 100 ms was met, and where no server could: by Little's law, `concurrency`
    uploads in flight at the faster server's rate take concurrency / rate on average."""
    text = f"{row['size']}: {verdict(row['p99_ms'] < 100)} ({row['p99_ms']} ms"
    same = [r for r in rows if r["size"] == row["size"] and r["concurrency"] == row["concurrency"]]
    bare = next((r for r in same if r["server"] != row["server"]), None)
    if row["p99_ms"] >= 100 and bare is not None:
        fastest = max(r["uploads_per_s"] for r in same)
        mean_ms = round(row["concurrency"] / fastest * 1000)
        text += f"; bare handler {bare['p99_ms']} ms"
        if mean_ms >= 100:
            text += (
                f"; out of reach on this machine: {row['concurrency']} in flight at {fastest}/s, "
                f"the faster server's rate, is a {mean_ms} ms mean"
            )
    return text + ")"
