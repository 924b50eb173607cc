"""A throw-away CA and the ZooKeeper server and client certificates, made per run.

Zuul's sdist (tools/zk-ca.sh) makes the same set with openssl: a CA, a client
certificate (CN=client) for every Zuul component, and a server certificate
whose PEM keystore holds certificate and key together. Here it is done with
`cryptography`; the server and client carry 127.0.0.1/localhost (and the
address ZooKeeper listens on, when it is another) as SANs, so hostname
verification stays on.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID = datetime.timedelta(days=2)
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Certificates:
    ca: Path  # CA certificate (ZooKeeper's trust store, zuul.conf tls_ca)
    server_keystore: Path  # server certificate + key in one PEM (ZooKeeper's key store)
    client_cert: Path
    client_key: Path


def _new_key() -> rsa.RSAPrivateKey:
    # RSA: ZooKeeper's PEM key store reader is surest with it.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject: str, key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey,
           issuer: x509.Name, usage: x509.ObjectIdentifier | None, addresses: tuple[str, ...] = ()
           ) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID))
    if usage is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False, data_encipherment=False,
                          key_agreement=False, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        sans = [x509.DNSName("localhost"),
                *(x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys((LOOPBACK, *addresses)))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make(directory: Path, address: str = LOOPBACK) -> Certificates:
    """Writes the CA, the server keystore (valid for `address` too) and the client pair into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _issue("zuul-k8s-e2e-ca", ca_key, ca_key, _name("zuul-k8s-e2e-ca"), None)
    server_key = _new_key()
    server_cert = _issue("localhost", server_key, ca_key, ca_cert.subject, ExtendedKeyUsageOID.SERVER_AUTH,
                         (address,))
    client_key = _new_key()
    client_cert = _issue("client", client_key, ca_key, ca_cert.subject, ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    certs = Certificates(directory / "ca.crt", directory / "server.pem", directory / "client.crt",
                         directory / "client.key")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.server_keystore.write_bytes(server_cert.public_bytes(pem) + _key_pem(server_key))
    certs.client_cert.write_bytes(client_cert.public_bytes(pem))
    certs.client_key.write_bytes(_key_pem(client_key))
    for path in (certs.server_keystore, certs.client_key):
        path.chmod(0o600)
    return certs
