"""`make run-fleet`: compose's topology on this host, natively, on object storage (issue 14).

nginx (Debian's package) with compose/nginx.conf in front of 3 api replicas, 2 conversion workers
and 2 relays, on MariaDB, a tansu broker and moto's S3 server. Every api and worker has a scratch
directory of its own and nothing else on disk: the replicas share only MariaDB, the broker and the
bucket, as they would across hosts. The replicas and nginx run under honcho (as `make run`'s
processes do), their logs prefixed and interleaved; the broker and the S3 server are started
before them and stopped after them, logging to var/fleet/*.log. Ctrl-C or SIGTERM stops all.

The test of the fleet (tests/e2e/test_fleet.py) starts the same members and nginx files on ports
of its own, against the session's services.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from honcho.manager import Manager

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: the project's packages, and scripts.s3

from scripts.devstack import wait_listening  # noqa: E402
from scripts.s3 import create_bucket, moto_command  # noqa: E402

API_REPLICAS, WORKERS, RELAYS = 3, 2, 2
BUCKET = "images"  # the bucket compose/nginx.conf serves under /images/
NGINX = "/usr/sbin/nginx"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")  # nginx's, kept under the fleet's prefix
# Where `make run-fleet` puts each part; the test picks free ports instead.
PORTS = {"nginx": 9200, "s3": 9000, "broker": 9092, "api": 8081, "worker_metrics": 9111, "relay_metrics": 9121}
ISSUER, AUDIENCE = "fleet", "image-server"  # the `iss` and `aud` of the fleet's tokens
# moto accepts any credentials; a real S3 reads yours from the environment.
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "fleet", "AWS_SECRET_ACCESS_KEY": "fleet-secret", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class Member:
    """One replica: its name, `python -m` arguments and the IMAGES_* settings of its own."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]


def members(
    *, api_ports: list[int], worker_metrics: list[int], relay_metrics: list[int], scratch: Path
) -> list[Member]:
    """The replicas: each api and worker with a scratch directory of its own, each with its own ports."""
    fleet = [
        Member(f"api-{n}", ("api",), {"IMAGES_API_PORT": str(port), "IMAGES_SCRATCH_DIR": str(scratch / f"api-{n}")})
        for n, port in enumerate(api_ports, start=1)
    ]
    fleet += [
        Member(
            f"worker-{n}",
            ("workers", "worker"),
            {"IMAGES_WORKER_METRICS_PORT": str(port), "IMAGES_SCRATCH_DIR": str(scratch / f"worker-{n}")},
        )
        for n, port in enumerate(worker_metrics, start=1)
    ]
    fleet += [
        Member(f"relay-{n}", ("outbox",), {"IMAGES_RELAY_METRICS_PORT": str(port)})
        for n, port in enumerate(relay_metrics, start=1)
    ]
    return fleet


def fleet_settings(*, s3_endpoint: str, nginx_port: int, secret_file: Path) -> dict[str, str]:
    """The settings every member shares: the bucket, the public URL nginx serves it at, and tokens required."""
    return {
        "IMAGES_STORAGE_URL": f"s3://{BUCKET}",
        "IMAGES_S3_PATH_STYLE": "true",
        "IMAGES_BASE_URL": f"http://127.0.0.1:{nginx_port}/images/",
        "IMAGES_SERVE_IMAGES": "false",
        "AWS_ENDPOINT_URL": s3_endpoint,
        # Exposed as a fleet is, it runs with authentication on (docs/security.md); a shared secret
        # stands in for an identity provider's JWKS: `python -m workers token` signs with it.
        "IMAGES_AUTH": "jwt",
        "IMAGES_AUTH_ISSUER": ISSUER,
        "IMAGES_AUTH_AUDIENCE": AUDIENCE,
        "IMAGES_AUTH_HS256_SECRET_FILE": str(secret_file),
    }


def ensure_secret(path: Path) -> Path:
    """A random HS256 secret in `path` (kept if there), readable by its owner alone."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48) + "\n")
    return path


def nginx_files(prefix: Path, *, listen_port: int, api_ports: list[int], s3_port: int) -> Path:
    """Write nginx's main file and site/ under `prefix` around compose/nginx.conf; return the main file."""
    site = prefix / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "api-servers.conf").write_text("".join(f"server 127.0.0.1:{p};\n" for p in api_ports))
    (site / "store-servers.conf").write_text(f"server 127.0.0.1:{s3_port};\n")
    (site / "listen.conf").write_text(f"listen 127.0.0.1:{listen_port};\n")
    temp = prefix / "tmp"
    temp.mkdir(exist_ok=True)
    user = ""
    if os.geteuid() == 0:  # nginx's workers drop root: give them what they write to
        account = _unprivileged()
        shutil.chown(temp, account.pw_uid, account.pw_gid)
        user = f"user {account.pw_name};\n"
    main = prefix / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {prefix}/access.log;\n"
        + "".join(
            f"    {kind}_temp_path {temp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + "    default_type application/octet-stream;\n"
        f"    include {ROOT}/compose/nginx.conf;\n"
        "}\n"
    )
    return main


def nginx_command(main: Path) -> list[str]:
    """nginx in the foreground on the files nginx_files wrote."""
    return [NGINX, "-p", str(main.parent), "-c", str(main)]


def _unprivileged() -> pwd.struct_passwd:
    for name in ("www-data", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user (www-data or nobody) for nginx's workers")


def _service(name: str, command: list[str], env: Mapping[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Start a service the replicas need, in a session of its own: Ctrl-C reaches honcho, which
    stops the replicas while the broker and the store still answer; these stop after them."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_port(port: int, what: str, timeout_s: float = 60) -> None:
    if not wait_listening("127.0.0.1", port, timeout_s=timeout_s):
        sys.exit(f"{what} did not listen on {port} within {timeout_s:g} s")


def main() -> None:
    """Start the whole fleet and wait for Ctrl-C or SIGTERM (MariaDB is started by `make run-fleet`)."""
    if not Path(NGINX).exists():
        sys.exit("nginx is not installed: `python scripts/devstack.py tools` installs Debian's (as root)")
    var = ROOT / "var" / "fleet"
    shutil.rmtree(var / "scratch", ignore_errors=True)
    env = {k: v for k, v in os.environ.items()} | {k: v for k, v in LOCAL_AWS.items() if k not in os.environ}
    endpoint = f"http://127.0.0.1:{PORTS['s3']}"
    secret = ensure_secret(var / "jwt-secret")
    env |= fleet_settings(s3_endpoint=endpoint, nginx_port=PORTS["nginx"], secret_file=secret)
    env["IMAGES_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{PORTS['broker']}"
    api_ports = [PORTS["api"] + n for n in range(API_REPLICAS)]
    worker_metrics = [PORTS["worker_metrics"] + n for n in range(WORKERS)]
    relay_metrics = [PORTS["relay_metrics"] + n for n in range(RELAYS)]
    metrics_ports = [*worker_metrics, *relay_metrics]  # each worker and relay serves its metrics once started
    fleet = members(
        api_ports=api_ports, worker_metrics=worker_metrics, relay_metrics=relay_metrics, scratch=var / "scratch"
    )
    services: list[subprocess.Popen[bytes]] = []
    try:
        services.append(_service("broker", [sys.executable, "scripts/devstack.py", "broker"], env, var))
        services.append(_service("s3", moto_command(PORTS["s3"]), env, var))
        _wait_port(PORTS["s3"], "moto's S3 server")
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        create_bucket(endpoint, BUCKET)
        _wait_port(PORTS["broker"], "the broker")
        manager = Manager()
        for member in fleet:
            command = shlex.join([sys.executable, "-m", *member.args])
            manager.add_process(member.name, f"exec {command}", env=env | member.env, cwd=str(ROOT))
        main_conf = nginx_files(var / "nginx", listen_port=PORTS["nginx"], api_ports=api_ports, s3_port=PORTS["s3"])
        manager.add_process("nginx", f"exec {shlex.join(nginx_command(main_conf))}", env=env, cwd=str(ROOT))
        ready = f"fleet: http://127.0.0.1:{PORTS['nginx']}/ (nginx) -> api {api_ports}; images at /images/ " + (
            f"from s3://{BUCKET} ({endpoint}); {WORKERS} workers, {RELAYS} relays; broker and S3 logs in {var}. "
            f"Ctrl-C stops all.\nfleet: tokens required; make one with IMAGES_AUTH=jwt IMAGES_AUTH_ISSUER={ISSUER} "
            f"IMAGES_AUTH_AUDIENCE={AUDIENCE} IMAGES_AUTH_HS256_SECRET_FILE={secret} "
            ".venv/bin/python -m workers token me --scope 'images:upload images:read images:confirm'"
        )
        listening = [*api_ports, *metrics_ports, PORTS["nginx"]]
        threading.Thread(target=_say_when_ready, args=(listening, ready), daemon=True).start()
        manager.loop()  # until Ctrl-C, SIGTERM or a member exits: then honcho stops the others
    finally:
        _stop(services)
    sys.exit(manager.returncode)


def _say_when_ready(ports: list[int], message: str) -> None:
    """Print where the fleet is once every replica and nginx accept connections (not before: an early
    request would find nginx marking replicas down)."""
    if all(wait_listening("127.0.0.1", port, timeout_s=120) for port in ports):
        print(message, flush=True)


if __name__ == "__main__":
    main()
