"""The metric names compose's dashboard and alert rules use, read out of their PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "compose"
ALERTS = COMPOSE / "prometheus" / "alerts.yml"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "image-server.json"
# PromQL's functions, aggregations and keywords that can stand where a metric name could.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "deriv", "histogram_quantile",
    "by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "offset",
}  # fmt: skip
# Series Prometheus makes itself, not the processes.
PROMETHEUS_OWN = {"up"}


def alert_rules() -> list[dict]:  # type: ignore[type-arg]
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metric names in one PromQL expression (label matchers, groupings and ranges removed)."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    return {t for t in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare) if t not in PROMQL_WORDS}


def used_metric_names() -> set[str]:
    """Every metric name the dashboard and the alert rules name."""
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    return set().union(*(metric_names(e) for e in exprs)) - PROMETHEUS_OWN
