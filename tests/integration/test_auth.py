"""IMAGES_AUTH=jwt over real HTTP (issue 23): a test issuer serves its JWKS, each attack gets its answer.

The api fetches the issuer's keys over HTTP as it would an identity provider's; tokens are made
by the issuer (tests/issuer.py) or by hand for what a library refuses to sign.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import aiomysql
import jwt
import pytest
from aiohttp.test_utils import TestClient

from adapters.auth.tokens import SharedSecret
from core import errors
from core.images import ImageStatus
from core.settings import Settings, SettingsError
from tests import images, services
from tests.integration.conftest import ClientFactory, fetch_all
from tests.integration.test_confirm import make_image
from tests.issuer import AUDIENCE, ISSUER, TestIssuer, bearer, hs256_token, new_rsa_key, unsigned_token


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


def jwt_settings(settings: Settings, issuer: TestIssuer, **overrides: Any) -> Settings:
    return replace(
        settings,
        auth="jwt",
        auth_jwks_url=issuer.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        **overrides,
    )


@pytest.fixture
async def api(settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer) -> TestClient:
    return await make_client(jwt_settings(settings, issuer))


def form(uploader: str | None = "user-1", category: str = "PRODUCT") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", io.BytesIO(images.png()), filename="a.png", content_type="image/png")
    if uploader is not None:
        data.add_field("uploaderId", uploader)
    data.add_field("category", category)
    return data


async def upload(api: TestClient, token: str | None, uploader: str | None = "user-1") -> aiohttp.ClientResponse:
    headers = bearer(token) if token is not None else {}
    return await api.post("/api/images", data=form(uploader), headers=headers)


async def assert_unauthorized(response: aiohttp.ClientResponse, *, error: str | None = "invalid_token") -> str:
    body = await response.json()
    assert (response.status, body["code"], body["path"]) == (401, "UNAUTHORIZED", response.url.path)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="image-server"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    return str(body["message"])


async def test_a_valid_token_uploads_as_its_subject(api: TestClient, issuer: TestIssuer, pool: aiomysql.Pool) -> None:
    r = await upload(api, issuer.token(sub="user-1"), uploader=None)  # no uploaderId: the token's sub
    assert r.status == 200, await r.text()
    image_id = (await r.json())["id"]
    assert await fetch_all(pool, "SELECT uploader_id FROM images WHERE image_id = %s", image_id) == [("user-1",)]


async def test_no_token_is_401_with_a_bare_bearer_challenge(api: TestClient) -> None:
    for path in ("/api/images", "/api/v1/images/x", "/api/v1/enums/extensions"):
        r = await (api.post(path, data=form()) if path == "/api/images" else api.get(path))
        await assert_unauthorized(r, error=None)
    r = await api.get("/api/v1/enums/extensions", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    await assert_unauthorized(r, error=None)


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "", "eyJhbGciOiJSUzI1NiJ9.e30", "x" * 7000],
    ids=["garbage", "three-garbage-parts", "empty", "two-parts", "oversized"],
)
async def test_a_malformed_token_is_401_invalid_token(api: TestClient, token: str) -> None:
    await assert_unauthorized(await api.get("/api/v1/enums/extensions", headers={"Authorization": f"Bearer {token}"}))


async def test_each_forged_or_out_of_date_token_is_refused(api: TestClient, issuer: TestIssuer) -> None:
    now = int(time.time())
    attacks = {
        "a forged signature": issuer.token(key=new_rsa_key()),  # the issuer's kid, another key
        "expired": issuer.token(exp=now - 120),
        "not yet valid": issuer.token(nbf=now + 600),
        "another issuer": issuer.token(iss="https://evil.test/"),
        "another audience": issuer.token(aud="another-service"),
        "no exp": issuer.token(exp=None),
        "no sub": issuer.token(sub=None),
        "alg none": unsigned_token(issuer.claims(), {"alg": "none", "typ": "JWT", "kid": issuer.current}),
        "HS256 signed with the RSA public key": hs256_token(issuer.claims(), issuer.public_pem(), kid=issuer.current),
        "an unknown kid": issuer.token(kid="no-such-kid", key=issuer.keys[issuer.current]),
        "a sub too long for an uploader": issuer.token(sub="u" * 300),
        "scope not a string": issuer.token(scope=["images:upload"]),
    }
    messages = {}
    for what, token in attacks.items():
        r = await upload(api, token)
        messages[what] = await assert_unauthorized(r)
    assert "expired" in messages["expired"] and "not valid yet" in messages["not yet valid"]
    assert "issuer" in messages["another issuer"] and "audience" in messages["another audience"]
    assert "algorithm" in messages["alg none"] and "algorithm" in messages["HS256 signed with the RSA public key"]
    assert "key id" in messages["an unknown kid"] and "signature" in messages["a forged signature"]


async def test_a_small_clock_skew_is_tolerated(api: TestClient, issuer: TestIssuer) -> None:
    now = int(time.time())
    r = await upload(api, issuer.token(exp=now - 5, nbf=now + 5))  # within the 30 s leeway
    assert r.status == 200, await r.text()


async def test_the_open_paths_need_no_token(api: TestClient) -> None:
    for path in ("/health", "/actuator/health", "/openapi.json", "/docs"):
        r = await api.get(path)
        assert r.status in (200, 503), path  # 503: a component DOWN, never 401
        assert r.status != 401


async def test_a_token_without_the_scope_is_403_insufficient_scope(api: TestClient, issuer: TestIssuer) -> None:
    r = await upload(api, issuer.token(scope="images:read"))
    body = await r.json()
    assert (r.status, body["code"]) == (403, "FORBIDDEN")
    assert (
        r.headers["WWW-Authenticate"]
        == 'Bearer realm="image-server", error="insufficient_scope", scope="images:upload"'
    )
    confirm = {"imageIds": [], "referenceId": "product-1"}
    r = await api.post("/api/v1/images/confirm", json=confirm, headers=bearer(issuer.token(scope="images:upload")))
    assert (r.status, (await r.json())["code"]) == (403, "FORBIDDEN")


async def test_an_upload_under_another_uploader_is_403(
    api: TestClient, issuer: TestIssuer, pool: aiomysql.Pool
) -> None:
    r = await upload(api, issuer.token(sub="user-1"), uploader="user-2")
    assert (r.status, (await r.json())["code"]) == (403, "FORBIDDEN")
    assert await fetch_all(pool, "SELECT image_id FROM images") == []


async def test_an_image_is_read_with_images_read_or_by_its_own_uploader(api: TestClient, issuer: TestIssuer) -> None:
    r = await upload(api, issuer.token(sub="user-1"))
    image_id = (await r.json())["id"]
    uploader_only = issuer.token(sub="user-1", scope="images:upload")
    stranger = issuer.token(sub="user-2", scope="images:upload")
    reader = issuer.token(sub="reporting", scope="images:read")
    assert (await api.get(f"/api/v1/images/{image_id}", headers=bearer(uploader_only))).status == 200
    assert (await api.get(f"/api/v1/images/{image_id}", headers=bearer(reader))).status == 200
    refused = await api.get(f"/api/v1/images/{image_id}", headers=bearer(stranger))
    assert (refused.status, (await refused.json())["code"]) == (403, "FORBIDDEN")
    # Without images:read an id that does not exist answers as one that is not one's own: no oracle.
    missing = await api.get(f"/api/v1/images/{uuid.uuid4()}", headers=bearer(stranger))
    assert missing.status == 403
    missing = await api.get(f"/api/v1/images/{uuid.uuid4()}", headers=bearer(reader))
    assert (missing.status, (await missing.json())["code"]) == (404, "IMAGE_NOT_FOUND")


async def test_a_product_token_cannot_confirm_or_delete_a_profile(
    api: TestClient, issuer: TestIssuer, pool: aiomysql.Pool
) -> None:
    product_service = bearer(issuer.token(sub="product-service", scope="images:confirm", ref_types=["PRODUCT"]))
    profile = await make_image(pool, "PROFILE")
    r = await api.post(f"/api/v1/images/confirm/user-7?imageId={profile}", headers=product_service)
    assert (r.status, (await r.json())["code"]) == (403, "FORBIDDEN")
    r = await api.post(
        "/api/v1/images/confirm", json={"imageIds": [profile], "referenceId": "user-7"}, headers=product_service
    )
    assert r.status == 403
    # The attack of the issue: one empty confirm deleting another type's images.
    everything = bearer(issuer.token(sub="admin", scope="images:confirm"))
    r = await api.post(f"/api/v1/images/confirm/user-7?imageId={profile}", headers=everything)
    assert r.status == 200
    product = await make_image(pool, "PRODUCT")
    r = await api.post(
        "/api/v1/images/confirm", json={"imageIds": [product], "referenceId": "user-7"}, headers=product_service
    )
    assert r.status == 200, await r.text()
    r = await api.post(
        "/api/v1/images/confirm", json={"imageIds": [], "referenceId": "user-7"}, headers=product_service
    )
    assert r.status == 200
    statuses = dict(await fetch_all(pool, "SELECT reference_type_id, status FROM images WHERE reference_id = 'user-7'"))
    assert statuses == {"PROFILE": ImageStatus.CONFIRMED.value, "PRODUCT": ImageStatus.DELETED.value}
    r = await api.post(
        "/api/v1/images/confirm",
        json={"imageIds": [], "referenceId": "user-7", "referenceType": "PROFILE"},
        headers=product_service,
    )
    assert (r.status, (await r.json())["code"]) == (403, "FORBIDDEN")
    history = await fetch_all(
        pool, "SELECT updated_by FROM status_history WHERE image_id = %s AND new_status = 'DELETED'", product
    )
    assert history == [("product-service",)]  # who deleted it is on record


async def test_a_rotated_key_is_accepted_without_a_restart(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer
) -> None:
    api = await make_client(jwt_settings(settings, issuer, auth_jwks_refresh_s=0.3))
    assert (await upload(api, issuer.token())).status == 200
    issuer.rotate()
    rotated = issuer.token()

    async def accepted() -> bool:
        return (await upload(api, rotated)).status == 200

    await services.eventually(accepted, timeout_s=10, what="the rotated key to be fetched and accepted")


async def test_unknown_key_ids_refresh_the_keys_at_most_once_per_interval(api: TestClient, issuer: TestIssuer) -> None:
    assert (await upload(api, issuer.token())).status == 200
    fetched = issuer.fetches
    for _ in range(20):
        r = await upload(api, issuer.token(kid=uuid.uuid4().hex, key=issuer.keys[issuer.current]))
        assert r.status == 401
    assert issuer.fetches - fetched <= 1  # 20 random kids: one fetch in the 30 s interval, not 20


async def test_while_the_issuer_is_down_cached_keys_pass_and_unknown_ones_get_503(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer
) -> None:
    api = await make_client(jwt_settings(settings, issuer, auth_jwks_refresh_s=0.1))
    assert (await upload(api, issuer.token())).status == 200
    issuer.down = True
    issuer.rotate()
    unseen = issuer.token()  # signed with a key the api never saw

    async def unavailable() -> aiohttp.ClientResponse | None:
        # Within the refresh interval of the last fetch the answer is still 401: poll past it.
        r = await upload(api, unseen)
        return r if r.status != 401 else None

    r = await services.eventually(unavailable, timeout_s=10, what="the api to ask the issuer, which is down")
    assert isinstance(r, aiohttp.ClientResponse)
    body = await r.json()
    assert (r.status, body["code"]) == (503, "SERVICE_UNAVAILABLE") and "Retry-After" in r.headers
    old = issuer.token(kid=issuer.published[0])
    assert (await upload(api, old)).status == 200  # a key fetched before the outage still verifies
    issuer.down = False

    async def recovered() -> bool:
        return (await upload(api, issuer.token())).status == 200

    await services.eventually(recovered, timeout_s=10, what="the new key once the issuer is back")


async def test_a_jwks_document_over_256_kib_is_not_read_and_its_keys_not_trusted(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer
) -> None:
    issuer.padding = 300 * 1024
    api = await make_client(jwt_settings(settings, issuer))
    r = await upload(api, issuer.token())
    assert (r.status, (await r.json())["code"]) == (503, "SERVICE_UNAVAILABLE")  # no key could be had: retry later


async def test_metrics_need_the_metrics_scope(api: TestClient, issuer: TestIssuer) -> None:
    await assert_unauthorized(await api.get("/metrics"), error=None)
    r = await api.get("/metrics", headers=bearer(issuer.token(scope="images:upload")))
    assert r.status == 403
    r = await api.get("/metrics", headers=bearer(issuer.token(scope="images:metrics")))
    assert r.status == 200 and "images_total" in await r.text()


async def test_a_shared_secret_verifies_hs256_and_refuses_rs256(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer, tmp_path: Path
) -> None:
    secret = b"s" * 48
    (tmp_path / "secret").write_bytes(secret + b"\n")
    hs = replace(
        settings,
        auth="jwt",
        auth_hs256_secret_file=str(tmp_path / "secret"),
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )
    api = await make_client(hs)
    assert (await upload(api, jwt.encode(issuer.claims(), secret, algorithm="HS256"))).status == 200
    await assert_unauthorized(await upload(api, issuer.token()))  # RS256: not the configured algorithm
    await assert_unauthorized(await upload(api, jwt.encode(issuer.claims(), b"w" * 48, algorithm="HS256")))


def test_a_short_or_missing_secret_file_stops_the_process_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"too short")
    with pytest.raises(SettingsError, match="IMAGES_AUTH_HS256_SECRET_FILE"):
        SharedSecret(str(tmp_path / "short"))
    with pytest.raises(SettingsError, match="IMAGES_AUTH_HS256_SECRET_FILE"):
        SharedSecret(str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("host", "warned"), [("0.0.0.0", True), ("10.1.2.3", True), ("127.0.0.1", False), ("::1", False)]
)
def test_a_warning_is_logged_when_authentication_is_off_beyond_loopback(host: str, warned: bool) -> None:
    from structlog.testing import capture_logs

    from api.auth import warn_if_open

    with capture_logs() as logs:
        warn_if_open(Settings(api_host=host))
        warn_if_open(Settings(api_host=host, auth="jwt"))
    assert [e["event"] for e in logs] == (["authentication_off"] if warned else [])


async def test_the_jwks_url_is_logged_without_the_credentials_or_query_it_may_carry(issuer: TestIssuer) -> None:
    from structlog.testing import capture_logs

    from adapters.auth.jwks import JwksKeys

    issuer.down = True
    keys = JwksKeys(
        issuer.url.replace("http://", "http://user:s3cret@") + "?api_key=s3cret",
        ["RS256"],
        refresh_s=30,
        max_age_s=600,
    )
    await keys.start()
    try:
        with capture_logs() as logs:
            with pytest.raises(errors.ServiceUnavailable):
                await keys.key_for("any")
    finally:
        await keys.close()
    (failed,) = [e for e in logs if e["event"] == "jwks_fetch_failed"]
    assert "s3cret" not in str(failed) and failed["url"].endswith("/.well-known/jwks.json")
