"""The pieces every section of bench/RESULTS.md is made of."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict | None:
    path = HERE / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def heading(title: str, script: str, result: dict, about: str) -> list[str]:
    """A section's title and the line saying where and when its numbers were taken."""
    m = result["machine"]
    return [f"## {title} (`bench/{script}`)", "", f"{m['cpus']} CPUs, {m['date']}; {about}", ""]


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"
