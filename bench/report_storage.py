"""The object storage section of bench/RESULTS.md (`bench/storage.py`, issue 14)."""

from __future__ import annotations

from report_parts import heading, table, verdict


def storage_section(storage: dict | None) -> list[str]:
    """Ingest and conversion on S3 next to the local store, and what bounds the S3 rate."""
    if storage is None:
        return []
    out = heading(
        "Object storage",
        "storage.py",
        storage,
        f"S3 server: {storage['s3_server']}; load from wrk on the same machine, both apis driven in turn.",
    )
    rows = []
    for r in storage["ingest"]:
        rows.append(
            [
                r["store"],
                r["size"],
                r["concurrency"],
                r["uploads_per_s"],
                " / ".join(str(v) for v in r.get("runs_uploads_per_s", [])),
                r["p50_ms"],
                r["p99_ms"],
                r.get("server_cpu_ms_per_upload", ""),
                r.get("s3_server_cpu_ms_per_upload", ""),
                f"{r['vs_local']} ({' / '.join(str(v) for v in r['runs_vs_local'])})" if "vs_local" in r else "",
                r.get("bare_aiobotocore_puts_per_s", ""),
            ]
        )
    out += [
        table(
            [
                "store",
                "file",
                "concurrency",
                "uploads/s",
                "rounds (uploads/s)",
                "p50 ms",
                "p99 ms",
                "api CPU ms/upload",
                "S3 server CPU ms/upload",
                "vs local",
                "bare aiobotocore PUT/s",
            ],
            rows,
        ),
        "",
    ]
    target = [r for r in storage["ingest"] if "vs_local" in r and r["size"] == "100KiB" and r["concurrency"] == 16]
    out += [
        "Target: S3 ingest >= 0.7x the local store at 100 KiB c16: "
        + "; ".join(
            f"{verdict(r['vs_local'] >= 0.7)} ({r['vs_local']}x; "
            f"{round(r['uploads_per_s'] / r['bare_aiobotocore_puts_per_s'], 2)}x of what the bare client PUTs "
            "to the same server)"
            for r in target
        )
        + ".",
        "",
    ]
    c = storage["conversion"]
    out += [
        f"Conversion, {c['images']} {c['set']} photos at full size on {c['cores']} cores, steady state: local "
        f"{c['local_images_per_s']} images/s, S3 {c['s3_images_per_s']} images/s (**{c['vs_local']}x**; runs: "
        f"local {' / '.join(str(x) for x in c['runs']['local'])}, S3 {' / '.join(str(x) for x in c['runs']['s3'])}); "
        f"the S3 server used {c.get('s3_server_cpu_ms_per_image', '?')} ms of CPU per image on the same cores.",
        "",
    ]
    return out
