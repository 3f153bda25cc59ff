"""The overload section of bench/RESULTS.md (`bench/overload.py`, issue 26)."""

from __future__ import annotations

from report_parts import heading, table, verdict


def _seconds(summary: dict | None) -> str:
    return "" if summary is None else f"{summary['median']} / {summary['max']}"


def overload_section(overload: dict | None) -> list[str]:
    """One api process under many clients at once: its memory, its answers, how soon a shed client hears."""
    if overload is None:
        return []
    out = heading(
        "Overload: memory and answers with many clients at once",
        "overload.py",
        overload,
        "one api process (file store, group commit), every client's request sent at once from this machine; "
        "RSS sampled every 20 ms.",
    )
    rows = [
        [
            r["scenario"],
            r["bounds"],
            f"{r['clients']} x {r['request_mib']} MiB",
            "yes" if r["expect_100_continue"] else "no",
            r["offered_mib"],
            ", ".join(f"{n} x {s}" for s, n in sorted(r["answers"].items())),
            r["peak_rss_growth_mib"],
            _seconds(r["time_to_503_s"]),
            _seconds(r["time_to_200_s"]),
            r["accepted_mib_per_s"],
            r["unloaded_mib_per_s"],
        ]
        for r in overload["rows"]
    ]
    header = [
        "scenario",
        "bounds",
        "clients x request",
        "Expect: 100-continue",
        "offered MiB",
        "answers",
        "api RSS growth MiB",
        "to 503 s (median / max)",
        "to 200 s (median / max)",
        "accepted MiB/s",
        "unloaded MiB/s",
    ]
    bounded = [r for r in overload["rows"] if r["bounds"] != "off"]
    worst = max(r["peak_rss_growth_mib"] for r in bounded)
    clean = all(set(r["answers"]) <= {"200", "503"} for r in overload["rows"])
    out += [
        table(header, rows),
        "",
        f"Target: the api's RSS grows by at most 512 MiB whatever the load: {verdict(worst <= 512)} "
        f"(at most {worst} MiB with the bounds; the same 32 clients with them off: "
        + ", ".join(f"{r['peak_rss_growth_mib']} MiB" for r in overload["rows"] if r["bounds"] == "off")
        + f"). Every answer 200 or 503, no reset: {verdict(clean)}.",
        "",
        "A request keeps at most 2 MiB of its parts in memory and spools the rest to disk as it arrives, "
        "so the api's memory follows neither the number of clients nor the size of their requests; the "
        "admission bounds (256 MiB, 256 uploads per process) now bound the disk, the CPU and the time "
        "spent per request more than memory (bench/NOTES.md has the figures before spooling).",
        "",
        "A shed client that sent `Expect: 100-continue` hears 503 within a quarter of a second and sends "
        "nothing. One that did not is answered at once too, but most clients (aiohttp's among them) read the "
        "answer only once they have sent their body, which the api reads and throws away: their 503 comes "
        "after their whole upload, and that reading costs the api CPU, so fewer bytes are accepted per "
        "second while dozens of 90 MiB bodies are being discarded. Behind nginx (compose, `make run-fleet`), "
        "nginx takes the body first and the api reads it over the loopback. Unloaded: the same requests from "
        "one client, one at a time.",
        "",
    ]
    return out


def soak_section(soak: dict | None) -> list[str]:
    """The long run at a steady load: memory, descriptors, threads, connections and lag over time."""
    if soak is None:
        return []
    out = heading(
        "Soak: mixed traffic at 70 % of capacity",
        "soak.py",
        soak,
        f"{soak['minutes']:g} minutes of tests/soak.py's mix ({', '.join(f'{k} {v}' for k, v in soak['mix'].items())}) "
        f"at {soak['rate_ops_per_s']} ops/s, open loop: 70 % of the worker's measured "
        f"{soak['photo_conversions_per_s']} photo conversions/s ({soak['photos']} real photographs from "
        "scikit-image's wheel, bench/photos.py); the api, a worker and the relay as `make run` starts them; "
        "samples every 10 s, slopes after the warm-up.",
    )
    rows = [
        [
            name,
            f"{p['rss_mib'][0]} -> {p['rss_mib'][1]}",
            p["rss_slope_mib_per_min"],
            p["main_rss_slope_mib_per_min"],
            " / ".join(str(v) for v in p["fds"]),
            " / ".join(str(v) for v in p["threads"]),
        ]
        for name, p in soak["processes"].items()
    ]
    header = [
        "process",
        "RSS MiB (after warm-up -> end)",
        "slope MiB/min (with children)",
        "slope MiB/min (process)",
        "descriptors (start / end / max)",
        "threads (start / end / max)",
    ]
    flat = all(p["main_rss_slope_mib_per_min"] < 1 for p in soak["processes"].values())
    out += [
        table(header, rows),
        "",
        f"Answers: {', '.join(f'{k}: {v}' for k, v in soak['answers'].items())}; no answer: "
        f"{soak['no_answer'] or 'none'}; upload commands: {soak['upload_commands']}. MariaDB connections at most "
        f"{soak['db_connections_max']}, consumer lag at most {soak['consumer_lag_max']} messages, outbox pending at "
        f"most {soak['outbox_pending_max']} rows.",
        "",
        f"Targets: RSS flat after warm-up (< 1 MiB/min per process): {verdict(flat)}; no FAILED image: "
        f"{verdict(soak['failed_images'] == 0)}; no 5xx: {verdict(soak['server_errors'] == 0)}.",
        "",
    ]
    return out
