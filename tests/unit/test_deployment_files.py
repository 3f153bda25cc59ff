"""Static checks of the deployment files (issue 7): what CI can check without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.processes import documented_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILES = [ROOT / "compose" / "docker-compose.yml", ROOT / "compose" / "docker-compose.cluster.yml"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it comes with the project's dev extras")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    result = subprocess.run([tool("hadolint"), str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_files_follow_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_names_exactly_the_settings_the_code_reads() -> None:
    text = (ROOT / "compose" / ".env.example").read_text()
    named = set(re.findall(r"^#?\s*(IMAGES_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named == {name for name, _, _ in documented_settings()}


def test_every_process_command_in_compose_is_documented_in_the_operations_page() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text()
    compose = yaml.safe_load(COMPOSE_FILES[0].read_text())
    ours = {"api", "worker", "relay"}
    commands = {" ".join(compose["services"][name]["command"]) for name in ours}
    assert commands == {"python -m api", "python -m workers worker", "python -m outbox"}
    assert all(command in readme for command in commands)
    assert "compose/" in readme


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_images_run_as_a_non_root_user_with_a_healthcheck(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE) and "HEALTHCHECK" in text


def test_the_monitoring_files_parse_and_every_alert_says_what_it_means() -> None:
    from tests import monitoring

    prometheus = yaml.safe_load((ROOT / "compose" / "prometheus" / "prometheus.yml").read_text())
    assert {job["job_name"] for job in prometheus["scrape_configs"]} == {"api", "worker", "relay"}
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    rules = monitoring.alert_rules()
    assert rules and all(r["alert"] and r["expr"] and r["for"] and r["annotations"]["summary"] for r in rules)
    assert all(monitoring.dashboard_exprs())
    compose = yaml.safe_load(COMPOSE_FILES[0].read_text())
    assert {"prometheus", "grafana"} <= set(compose["services"])
    runbook = (ROOT / "docs" / "operations.md").read_text().split("## Runbook", 1)[1]
    assert all(f"`{r['alert']}`" in runbook for r in rules), "every alert has its runbook entry"


def test_metric_names_are_read_out_of_promql() -> None:
    from tests.monitoring import metric_names

    expr = 'sum by (le) (rate(a_seconds_bucket{route="/x"}[5m])) / max(b_total) and deriv(sum(c)[10m:1m]) > 0'
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}


def test_nginx_conf_includes_only_site_files_that_compose_and_the_fleet_both_provide(tmp_path: Path) -> None:
    from scripts import fleet

    included = set(re.findall(r"include site/([a-z-]+\.conf);", (ROOT / "compose" / "nginx.conf").read_text()))
    assert included == {p.name for p in (ROOT / "compose" / "nginx").glob("*.conf")}
    fleet.nginx_files(tmp_path, listen_port=1, api_ports=[2, 3], s3_port=4)
    assert included == {p.name for p in (tmp_path / "site").glob("*.conf")}
    compose = yaml.safe_load(COMPOSE_FILES[0].read_text())
    assert "./nginx:/etc/nginx/site:ro" in compose["services"]["nginx"]["volumes"]


def test_the_replicas_share_no_volume_and_store_in_the_bucket() -> None:
    compose = yaml.safe_load(COMPOSE_FILES[0].read_text())
    for name in ("api", "worker", "relay"):
        service = compose["services"][name]
        assert not service.get("volumes"), f"{name} mounts a volume"
        assert service["environment"]["IMAGES_STORAGE_URL"] == "s3://images"
    assert "uploads" not in compose["volumes"] and {"minio", "minio-init"} <= set(compose["services"])
