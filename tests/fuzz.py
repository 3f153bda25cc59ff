"""Schemathesis against a running api's `/openapi.json`: used by the e2e test and bench/fuzz.py.

Every check runs except two that cannot hold for this API by design: `positive_data_acceptance`
(a schema cannot say "the bytes of a decodable image" or "a reference type from the table", so
schema-valid uploads and confirms are rightly refused with 400) and `ignored_auth` (no auth).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_CHECKS = "positive_data_acceptance,ignored_auth"


@dataclass(frozen=True)
class FuzzRun:
    returncode: int
    cases: int  # test cases schemathesis generated and sent
    output: str

    def failures(self) -> str:
        """The report's FAILURES section (empty when none)."""
        start = self.output.find("FAILURES")
        return self.output[start : self.output.find("SUMMARY", start)] if start >= 0 else ""


def run(base_url: str, *, examples: int, seed: int | None, report_dir: Path, timeout_s: float) -> FuzzRun:
    """Run schemathesis with `examples` cases per operation and phase; return what it found."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(examples),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *(["--seed", str(seed)] if seed is not None else []),
    ]
    # From the report folder: schemathesis keeps a crash cache in its working directory.
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=report_dir)
    output = done.stdout + done.stderr
    found = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    return FuzzRun(done.returncode, int(found.group(1)) if found else 0, output)
