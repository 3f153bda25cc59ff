"""The S3-protocol server of local runs and tests: moto's server mode, started natively (issue 14).

`make run-fleet` and the test fixtures start it on a port of their choosing and create the bucket
with the policy compose gives MinIO (`compose/s3/public-read.json`): every object is public to
read except originals awaiting conversion (`_originals/`), and nothing is public to write or list.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "compose" / "s3" / "public-read.json"
POLICY_BUCKET = "images"  # the bucket the policy file names (compose's)


def moto_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line of moto's S3 server on `host:port` (moto[server] comes with the dev extras)."""
    beside = Path(sys.executable).parent / "moto_server"  # this environment's first, then the PATH's
    binary = str(beside) if beside.exists() else shutil.which("moto_server") or str(beside)
    if not Path(binary).exists():
        raise FileNotFoundError("moto_server is not installed (pip install 'moto[server]')")
    return [binary, "-H", host, "-p", str(port)]


def public_read_policy(bucket: str) -> str:
    """The bucket policy of compose/s3/public-read.json, for `bucket`."""
    policy = json.loads(POLICY.read_text())
    for statement in policy["Statement"]:
        statement["Resource"] = [
            r.replace(f"arn:aws:s3:::{POLICY_BUCKET}/", f"arn:aws:s3:::{bucket}/") for r in statement["Resource"]
        ]
    return json.dumps(policy)


def create_bucket(endpoint: str, bucket: str, *, public_read: bool = True) -> None:
    """Create the bucket (if it is not there) with the public-read policy (credentials: the AWS_* variables)."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("s3", endpoint_url=endpoint)
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if public_read:
        client.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
