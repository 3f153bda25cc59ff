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
