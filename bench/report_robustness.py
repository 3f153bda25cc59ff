"""The crash run's and the fuzzing run's sections of bench/RESULTS.md (issue 13)."""

from __future__ import annotations

from report_parts import heading, table, verdict


def robustness_sections(crash: dict | None, fuzzed: dict | None) -> list[str]:
    """Markdown lines for bench/crash.py's and bench/fuzz.py's results (those that exist)."""
    out: list[str] = []
    if crash is not None:
        out += heading(
            "Crash run",
            "crash.py",
            crash,
            f"{crash['rounds']} rounds of kill -9 under load, each process restarted as a supervisor would "
            f"({crash['seconds']} s, {crash['kills']} kills).",
        )
        rows = [[what, r["median_s"], r["max_s"]] for what, r in crash["recovery"].items()]
        out += [table(["killed", "back to accepting and converting: median s", "max s"], rows), ""]
        out += [
            "Recovery is from the kill until uploads accepted after the restart are READY; for the relay, "
            "until the standby says it is active. A killed worker's partitions wait for the group's session "
            "timeout (10 s) before they are given to a live member, hence the worker's figure.",
            "",
        ]
        answers = ", ".join(f"{k}: {v}" for k, v in crash["upload_answers"].items())
        out += [
            f"Uploads accepted {crash['uploads_accepted']} (answers {answers}; {crash['uploads_unanswered']} "
            f"cut off by a kill); all READY with their WebP {crash['drain_s']} s after the load stopped. "
            f"Confirms committed {crash['confirms_committed']}, every one's event on the topic in commit order "
            f"({crash['duplicate_events']} duplicates from relays killed before marking a row). "
            f"Lost: {crash['lost']}; processes left behind: {crash['left_behind']}; "
            "500 INTERNAL_SERVER_ERROR: none.",
            "",
        ]
    if fuzzed is not None:
        out += heading(
            "API fuzzing",
            "fuzz.py",
            fuzzed,
            "schemathesis against the running api, relay and worker, every check but the two tests/fuzz.py names.",
        )
        rows = [[r["seed"], r["cases"], "none" if r["ok"] else "**see results/fuzz.json**"] for r in fuzzed["rounds"]]
        out += [table(["seed", "cases", "failures"], rows), ""]
        rss = fuzzed["api_rss_mb"]
        out += [
            f"{fuzzed['cases']} cases; target >= 5,000 with no server error or undocumented status: "
            f"{verdict(fuzzed['cases'] >= 5000 and fuzzed['all_ok'])}. api RSS {rss['before']} -> {rss['after']} MB; "
            f"error-level log lines: {len(fuzzed['error_log_lines'])}.",
            "",
        ]
    return out
