"""Long schemathesis run (issue 13): at least 5,000 generated requests against the whole stack.

The api, a relay and a worker run as processes; schemathesis runs rounds with fresh random seeds
until `--cases` requests were sent, every check on (tests/fuzz.py says which two are off and
why). Reports each round's seed, cases and failures, the api's memory before and after, and any
error-level log line of any process. The CI test (tests/e2e/test_fuzz.py) is the short version.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

import psutil
from harness import bench_environment, logs, start, wait_port, with_api_port, write_results

from tests import fuzz


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=5000, help="run rounds until this many requests were sent")
    parser.add_argument("--examples", type=int, default=300, help="cases per operation and phase in one round")
    args = parser.parse_args()
    with bench_environment("fuzz") as settings:
        settings = with_api_port(settings, log_level="INFO")
        port = settings.api_port
        log_dir = logs("fuzz")
        procs = [
            start("relay", ["outbox"], settings, log_dir),
            start("workers", ["workers", "worker"], settings, log_dir),
            start("api", ["api"], settings, log_dir),
        ]
        api = psutil.Process(procs[-1].popen.pid)
        rounds: list[dict] = []
        try:
            wait_port(port)
            rss_before = api.memory_info().rss
            while sum(r["cases"] for r in rounds) < args.cases:
                seed = secrets.randbelow(2**63)
                with tempfile.TemporaryDirectory() as report_dir:
                    done = fuzz.run(
                        f"http://127.0.0.1:{port}",
                        examples=args.examples,
                        seed=seed,
                        report_dir=Path(report_dir),
                        timeout_s=1800,
                    )
                rounds.append({"seed": seed, "cases": done.cases, "ok": done.returncode == 0})
                print(rounds[-1], flush=True)
                if done.returncode != 0:
                    print(done.failures() or done.output[-4000:], flush=True)
                    rounds[-1]["failures"] = done.failures()[:4000]
            rss_after = api.memory_info().rss
            alive = {p.name: p.alive() for p in procs}
        finally:
            codes = {p.name: p.terminate() for p in reversed(procs)}
        errors = [
            {"process": p.name, "event": e.get("event")}
            for p in procs
            for e in p.log_events()
            if e.get("level") in ("error", "critical")
        ]
    write_results(
        "fuzz",
        {
            "cases": sum(r["cases"] for r in rounds),
            "rounds": rounds,
            "all_ok": all(r["ok"] for r in rounds),
            "api_rss_mb": {"before": round(rss_before / 2**20, 1), "after": round(rss_after / 2**20, 1)},
            "alive_at_end": alive,
            "exit_codes": codes,
            "error_log_lines": errors[:50],
        },
    )


if __name__ == "__main__":
    main()
