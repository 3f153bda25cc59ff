"""Authentication's cost on ingest (issue 23): uploads/s with IMAGES_AUTH=jwt next to the same api with it off.

Two api processes on one database, driven in turn by wrk (100 KiB JPEGs, concurrency 16, 5
paired rounds by default). The jwt api verifies RS256 tokens with keys from a JWKS served over
HTTP by a test issuer, fetched in the background: no network on the request path. Two cases:
- `one token`: every request carries the same token, as one client keeps its token; after the
  first request the verification is a cache hit.
- `a new token each request`: 5,000 tokens in turn (more than the cache holds), as many clients
  each uploading once: every request is a full RS256 verification.
Target: the one-token case at least 0.95x the api without authentication.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from harness import ROOT, bench_environment, logs, start, wait_port, write_results
from ingest import SIZES, body, jpeg_of_size, measured

sys.path.insert(0, str(ROOT))
from tests import services
from tests.issuer import AUDIENCE, ISSUER, TestIssuer

TOKENS = 5000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    payload = body(jpeg_of_size(SIZES["100KiB"]))
    with TestIssuer() as issuer, bench_environment("auth") as settings:
        token = issuer.token(sub="bench", scope="images:upload", exp=2**31 - 1)
        tokens_file = Path("/tmp/images-bench-auth-tokens.txt")
        tokens_file.write_text(
            "\n".join(
                issuer.token(sub="bench", scope="images:upload", exp=2**31 - 1, jti=str(n)) for n in range(TOKENS)
            )
            + "\n"
        )
        off_port, on_port = services.free_port(), services.free_port()
        off = start("api-auth-off", ["api"], replace(settings, api_port=off_port), logs("auth"))
        jwt = replace(
            settings,
            api_port=on_port,
            auth="jwt",
            auth_jwks_url=issuer.url,
            auth_issuer=ISSUER,
            auth_audience=AUDIENCE,
        )
        on = start("api-auth-jwt", ["api"], jwt, logs("auth"))
        rows = []
        try:
            wait_port(off_port)
            wait_port(on_port)
            cases = {
                "one token": {"AUTHORIZATION": f"Bearer {token}"},
                "a new token each request": {"TOKENS_FILE": str(tokens_file)},
            }
            runs: dict[str, list[dict]] = {"off": [], **{case: [] for case in cases}}
            for _ in range(args.rounds):
                runs["off"].append(
                    measured(
                        f"http://127.0.0.1:{off_port}/api/images",
                        payload,
                        args.concurrency,
                        args.seconds,
                        off.popen.pid,
                    )
                )
                print("off", runs["off"][-1], flush=True)
                for case, env in cases.items():
                    os.environ.update(env)
                    try:
                        result = measured(
                            f"http://127.0.0.1:{on_port}/api/images",
                            payload,
                            args.concurrency,
                            args.seconds,
                            on.popen.pid,
                        )
                    finally:
                        for name in env:
                            os.environ.pop(name)
                    assert result["errors"] == 0, f"{case}: {result['errors']} requests failed"
                    runs[case].append(result)
                    print(case, result, flush=True)
            for name, measured_runs in runs.items():
                ratios = [
                    round(r["uploads_per_s"] / o["uploads_per_s"], 3)
                    for r, o in zip(measured_runs, runs["off"], strict=True)
                ]
                median = sorted(measured_runs, key=lambda r: r["uploads_per_s"])[(len(measured_runs) - 1) // 2]
                rows.append(
                    {
                        "auth": "off" if name == "off" else f"jwt, {name}",
                        "uploads_per_s": median["uploads_per_s"],
                        "runs_uploads_per_s": [r["uploads_per_s"] for r in measured_runs],
                        "p50_ms": median["p50_ms"],
                        "p99_ms": median["p99_ms"],
                        "server_cpu_ms_per_upload": statistics.median(
                            r["server_cpu_ms_per_upload"] for r in measured_runs
                        ),
                        "vs_off": statistics.median(ratios),
                        "runs_vs_off": ratios,
                    }
                )
        finally:
            off.terminate()
            on.terminate()
    write_results(
        "auth",
        {
            "load_generator": "wrk -t2",
            "size": "100KiB",
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
