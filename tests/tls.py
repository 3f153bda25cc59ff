"""Certificates for the tests' TLS servers, made by the fixture: a CA, server and client pairs.

`Pki(root)` writes `ca.pem`, `server.pem`/`server.key` (for 127.0.0.1 and localhost) and
`client.pem`/`client.key` under root; `other_ca.pem` is a CA that signed nothing, for the
"wrong CA" cases.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


class Pki:
    """A throwaway certificate authority and the pairs it signed."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        now = datetime.datetime.now(datetime.UTC)
        self._valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2))
        self._ca_key, self._ca = self._authority("image-server test CA", self.ca)
        self._authority("a CA that signed nothing here", self.other_ca)
        self._leaf("server", self.server_cert, self.server_key, ExtendedKeyUsageOID.SERVER_AUTH)
        self._leaf("client", self.client_cert, self.client_key, ExtendedKeyUsageOID.CLIENT_AUTH)

    ca = property(lambda self: self.root / "ca.pem")
    other_ca = property(lambda self: self.root / "other_ca.pem")
    server_cert = property(lambda self: self.root / "server.pem")
    server_key = property(lambda self: self.root / "server.key")
    client_cert = property(lambda self: self.root / "client.pem")
    client_key = property(lambda self: self.root / "client.key")

    def _authority(self, common: str, path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = _key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(_name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._valid[0])
            .not_valid_after(self._valid[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def _leaf(self, common: str, cert_path: Path, key_path: Path, usage: x509.ObjectIdentifier) -> None:
        key = _key()
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._valid[0])
            .not_valid_after(self._valid[1])
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
