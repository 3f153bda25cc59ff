"""The authentication section of bench/RESULTS.md (`bench/auth.py`, issue 23)."""

from __future__ import annotations

from report_parts import heading, table, verdict


def auth_section(auth: dict | None) -> list[str]:
    """Ingest with bearer tokens verified next to the same api without authentication."""
    if auth is None:
        return []
    out = heading(
        "Authentication's cost on ingest",
        "auth.py",
        auth,
        f"{auth['size']} JPEGs at concurrency {auth['concurrency']}, {auth['rounds']} paired rounds of "
        f"{auth['seconds']:g} s, load from {auth['load_generator']}; RS256 keys from a JWKS over HTTP.",
    )
    rows = [
        [
            r["auth"],
            r["uploads_per_s"],
            " / ".join(str(v) for v in r["runs_uploads_per_s"]),
            r["p50_ms"],
            r["p99_ms"],
            r["server_cpu_ms_per_upload"],
            f"{r['vs_off']} ({' / '.join(str(v) for v in r['runs_vs_off'])})",
        ]
        for r in auth["rows"]
    ]
    header = ["auth", "uploads/s (median)", "rounds", "p50 ms", "p99 ms", "api CPU ms/upload", "vs off (rounds)"]
    one = next(r for r in auth["rows"] if r["auth"] == "jwt, one token")
    new = next(r for r in auth["rows"] if r["auth"] == "jwt, a new token each request")
    off = next(r for r in auth["rows"] if r["auth"] == "off")
    extra_ms = round(new["server_cpu_ms_per_upload"] - off["server_cpu_ms_per_upload"], 3)
    out += [
        table(header, rows),
        "",
        f"Target: with a token verified (one token, the cache's case) at least 0.95x the api without "
        f"authentication: {verdict(one['vs_off'] >= 0.95)} ({one['vs_off']}x, median of the rounds' ratios; "
        "the rounds spread widely on this 2-core machine, the api's CPU per upload is the steadier figure). "
        f"A new token with every request (more tokens than the cache holds) is a full RS256 verification "
        f"each time: {extra_ms} ms more of the api's CPU per upload, {new['vs_off']}x (PyJWT takes ~145 us "
        "a token here, ~30 us of it the RSA check and most of the rest its per-character base64 checks).",
        "",
    ]
    return out
