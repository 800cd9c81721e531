"""Per-tenant certificate authority for the MQTT fleet: device client certificates, bridge
identities, the broker's server certificate, and a CRL for revocation.

Identity scheme (docs/security.md, mosquitto/README.md): the broker takes the MQTT
username from the certificate CN (``use_identity_as_username``) and forces the client id
to it (``use_username_as_clientid``). A device's CN is ``{tenant}/{device}`` — exactly its
topic path, globally unique — so the ACL pattern ``es/v1/%u/…`` confines it to its own
subtree, and nobody can take over another device's MQTT session by choosing its client
id (Mosquitto resumes a session for whoever presents the client id). Each tenant has its
own broker listener whose ``cafile`` is that tenant's CA and whose ACL grants reading
``es/v1/{tenant}/members/changes``: a certificate of another tenant's CA is refused in
the TLS handshake. Bridge identities are ``@bridge/{name}`` (``@`` can start no tenant id),
granted ``es/v1/#`` by name in the ACL. O = tenant, OU = role, and a SAN URI
``urn:edge-suite:{tenant}:{device}`` carry the same facts for other tools.

Layout of a CA directory (``<dir>/<tenant>/``, 0700; private keys 0600)::

    ca.crt  ca.key  issued/<serial>.pem  revoked.json  crl.pem

Keys are ECDSA P-256. Private keys are never logged or printed, only written to files.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_bridge.errors import Unavailable

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BRIDGE_PREFIX = "@bridge/"
DEVICE_DAYS = 825
CA_DAYS = 3650
CRL_DAYS = 30  # regenerate well before: an expired CRL makes the broker refuse everyone
TEMPLATES = Path(__file__).resolve().parent.parent / "mosquitto"
# the plugin that keeps devices out of shared subscriptions (mosquitto/share-guard/)
SHARE_GUARD = Path("/usr/local/lib/edge-suite/share_guard.so")


class CaError(Unavailable):
    """The CA cannot do what was asked; the message says what to do instead."""


def _check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise CaError(f"{kind} id {value[:80]!r} is not valid: use 1-64 letters, digits, "
                      "'_', '.', '-', starting with a letter or digit")
    return value


def device_identity(tenant: str, device: str) -> str:
    """The certificate CN, MQTT username and client id of a device."""
    return f"{_check_id('tenant', tenant)}/{_check_id('device', device)}"


def bridge_identity(name: str) -> str:
    return BRIDGE_PREFIX + _check_id("bridge", name)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


@dataclass(frozen=True, slots=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes | None  # None when the key pair stayed with the requester (CSR)
    serial: int


@dataclass(frozen=True, slots=True)
class TenantCA:
    tenant: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    directory: Path | None = None

    def __repr__(self) -> str:  # never print key material
        return f"TenantCA(tenant={self.tenant!r})"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    # -- creation and storage -----------------------------------------------------

    @staticmethod
    def create(tenant: str, now: datetime | None = None, days: int = CA_DAYS) -> TenantCA:
        _check_id("tenant", tenant)
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, tenant),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"edge-suite CA {tenant}")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return TenantCA(tenant, cert, key)

    def save(self, directory: Path) -> TenantCA:
        folder = directory / self.tenant
        if (folder / "ca.key").exists():
            raise CaError(f"{folder}: a CA for tenant {self.tenant!r} exists already; "
                          "refusing to overwrite it (every device certificate depends on it)")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(folder / "ca.key", _pem_key(self.key))
        (folder / "ca.crt").write_bytes(self.cert_pem)
        saved = TenantCA(self.tenant, self.cert, self.key, folder)
        saved.write_crl()
        return saved

    @staticmethod
    def load(directory: Path, tenant: str) -> TenantCA:
        folder = directory / _check_id("tenant", tenant)
        try:
            cert = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
            key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        except FileNotFoundError:
            raise CaError(f"{folder}: no CA for tenant {tenant!r}; create it with "
                          f"'cloud-bridge ca init --dir {directory} --tenant {tenant}'") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{folder / 'ca.key'}: not an EC private key")
        return TenantCA(tenant, cert, key, folder)

    # -- issuing ------------------------------------------------------------------

    def _issue(self, cn: str, role: str, public_key: ec.EllipticCurvePublicKey | None,
               eku: x509.ObjectIdentifier, sans: list[x509.GeneralName], days: int,
               now: datetime | None) -> Issued:
        now = now or datetime.now(UTC)
        key = None
        if public_key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
        serial = x509.random_serial_number()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.tenant),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key).serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if self.directory is not None:
            issued = self.directory / "issued"
            issued.mkdir(exist_ok=True, mode=0o700)
            (issued / f"{serial:x}.pem").write_bytes(pem)
        return Issued(pem, _pem_key(key) if key else None, serial)

    def issue_device(self, device: str, public_key: ec.EllipticCurvePublicKey | None = None,
                     now: datetime | None = None, days: int = DEVICE_DAYS) -> Issued:
        """A client certificate for ``device`` of this tenant. Pass the public key of the
        device's own CSR so its private key never leaves it; without one a key pair is
        made here (for tests and bench setups)."""
        cn = device_identity(self.tenant, device)
        san = x509.UniformResourceIdentifier(f"urn:edge-suite:{self.tenant}:{device}")
        return self._issue(cn, "device", public_key, ExtendedKeyUsageOID.CLIENT_AUTH, [san],
                           days, now)

    def issue_device_for_csr(self, csr_pem: bytes, device: str,
                             now: datetime | None = None) -> Issued:
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise CaError("the CSR's signature does not verify: generate it again on the device")
        public = csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise CaError("the CSR must carry an EC (P-256) public key")
        # the subject is ours, never the CSR's: a device cannot name itself another device
        return self.issue_device(device, public, now)

    def issue_bridge(self, name: str = "bridge", now: datetime | None = None,
                     days: int = DEVICE_DAYS) -> Issued:
        return self._issue(bridge_identity(name), "bridge", None,
                           ExtendedKeyUsageOID.CLIENT_AUTH, [], days, now)

    def issue_server(self, hosts: list[str], now: datetime | None = None,
                     days: int = DEVICE_DAYS) -> Issued:
        if not hosts:
            raise CaError("give at least one host name or IP address the broker is reached by")
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        return self._issue(hosts[0], "broker", None, ExtendedKeyUsageOID.SERVER_AUTH, sans,
                           days, now)

    # -- revocation -----------------------------------------------------------------

    def _revoked_path(self) -> Path:
        if self.directory is None:
            raise CaError("this CA is not saved to a directory: save() it first")
        return self.directory / "revoked.json"

    def revoked(self) -> list[dict[str, int]]:
        path = self._revoked_path()
        return json.loads(path.read_text()) if path.exists() else []

    def revoke(self, serial: int, now: datetime | None = None) -> bytes:
        """Revoke a certificate by serial and rewrite the CRL (returned as PEM)."""
        entries = self.revoked()
        if all(e["serial"] != serial for e in entries):
            at = int((now or datetime.now(UTC)).timestamp())
            entries.append({"serial": serial, "at": at})
            self._revoked_path().write_text(json.dumps(entries, indent=1))
        return self.write_crl(now)

    def crl(self, now: datetime | None = None, days: int = CRL_DAYS) -> bytes:
        now = now or datetime.now(UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - timedelta(minutes=5))
                   .next_update(now + timedelta(days=days)))
        for entry in (self.revoked() if self.directory else []):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(entry["serial"])
                .revocation_date(datetime.fromtimestamp(entry["at"], UTC)).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def write_crl(self, now: datetime | None = None) -> bytes:
        pem = self.crl(now)
        if self.directory is not None:
            tmp = self.directory / "crl.pem.tmp"
            tmp.write_bytes(pem)
            tmp.replace(self.directory / "crl.pem")  # the broker never reads half a file
        return pem


def serial_of(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


# -- broker configuration ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListenerFiles:
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path
    aclfile: Path


def render_broker_config(tenant: str, port: int, files: ListenerFiles, bind: str = "0.0.0.0",
                         prefix: str = "es/v1", bridges: tuple[str, ...] = (),
                         templates: Path = TEMPLATES,
                         share_guard: Path = SHARE_GUARD) -> tuple[str, str]:
    """(listener block, ACL file) for one tenant, from mosquitto/*.template.

    ``share_guard`` is the built mosquitto/share-guard plugin: Mosquitto refuses to start
    when it is missing, which is the point (without it any device may join the bridges'
    shared-subscription group)."""
    _check_id("tenant", tenant)
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", prefix) or "+" in prefix or "#" in prefix:
        raise CaError(f"topic prefix {prefix!r} is not a plain topic path")
    listener = string.Template((templates / "tenant-listener.conf.template").read_text())
    acl = string.Template((templates / "tenant.acl.template").read_text())
    bridge_lines = "".join(f"user {bridge_identity(b)}\ntopic readwrite {prefix}/#\n\n"
                           for b in bridges)
    values = {"tenant": tenant, "port": str(port), "bind": bind, "prefix": prefix,
              "cafile": files.cafile, "certfile": files.certfile, "keyfile": files.keyfile,
              "crlfile": files.crlfile, "aclfile": files.aclfile, "share_guard": share_guard,
              "bridges": bridge_lines or "# (no bridge identity on this listener)\n"}
    return listener.substitute(values), acl.substitute(values)


# -- CLI: ``cloud-bridge ca …`` -----------------------------------------------------------

ca_app = typer.Typer(help="per-tenant device CA: certificates, revocation, broker config",
                     no_args_is_help=True)
DirOpt = Annotated[Path, typer.Option("--dir", envvar="BRIDGE_CA_DIR",
                                      help="directory with one CA sub-directory per tenant")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="tenant id")]
OutOpt = Annotated[Path, typer.Option("--out", help="folder for the new certificate/key")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _write_issued(out: Path, name: str, issued: Issued) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.crt").write_bytes(issued.cert_pem)
    if issued.key_pem is not None:
        _write_private(out / f"{name}.key", issued.key_pem)
    typer.echo(f"wrote {out / (name + '.crt')} (serial {issued.serial:x})"
               + (f" and {out / (name + '.key')} (0600)" if issued.key_pem else ""))


@ca_app.command("init")
def cli_init(directory: DirOpt, tenant: TenantOpt) -> None:
    """Create the tenant's CA (once) and an empty CRL."""
    try:
        ca = TenantCA.create(tenant).save(directory)
    except CaError as exc:
        raise _fail(exc) from None
    typer.echo(f"CA for tenant {tenant} in {ca.directory} (ca.key is 0600: back it up offline)")


@ca_app.command("device")
def cli_device(directory: DirOpt, tenant: TenantOpt, device: Annotated[str, typer.Option()],
               out: OutOpt,
               csr: Annotated[Path | None, typer.Option(help="the device's CSR (PEM)")] = None
               ) -> None:
    """Issue a device client certificate (CN tenant/device)."""
    try:
        ca = TenantCA.load(directory, tenant)
        issued = (ca.issue_device_for_csr(csr.read_bytes(), device) if csr
                  else ca.issue_device(device))
    except (CaError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    _write_issued(out, "device", issued)


@ca_app.command("bridge")
def cli_bridge(directory: DirOpt, tenant: TenantOpt, out: OutOpt,
               name: Annotated[str, typer.Option(help="one per bridge process")] = "bridge"
               ) -> None:
    """Issue a bridge identity certificate (CN @bridge/NAME)."""
    try:
        issued = TenantCA.load(directory, tenant).issue_bridge(name)
    except CaError as exc:
        raise _fail(exc) from None
    _write_issued(out, f"bridge-{name}", issued)


@ca_app.command("server")
def cli_server(directory: DirOpt, tenant: TenantOpt, out: OutOpt,
               host: Annotated[list[str], typer.Option(help="DNS name or IP; repeatable")]
               ) -> None:
    """Issue the broker's server certificate for this tenant's listener."""
    try:
        issued = TenantCA.load(directory, tenant).issue_server(host)
    except CaError as exc:
        raise _fail(exc) from None
    _write_issued(out, "server", issued)


@ca_app.command("revoke")
def cli_revoke(directory: DirOpt, tenant: TenantOpt,
               cert: Annotated[Path | None, typer.Option(help="certificate file")] = None,
               serial: Annotated[str | None, typer.Option(help="serial in hex")] = None) -> None:
    """Revoke a certificate and rewrite crl.pem; then reload the broker (SIGHUP)."""
    try:
        ca = TenantCA.load(directory, tenant)
        if (cert is None) == (serial is None):
            raise CaError("give exactly one of --cert or --serial")
        number = serial_of(cert.read_bytes()) if cert else int(str(serial), 16)
        ca.revoke(number)
    except (CaError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(f"revoked serial {number:x}; CRL rewritten: {ca.directory}/crl.pem")


@ca_app.command("crl")
def cli_crl(directory: DirOpt, tenant: TenantOpt) -> None:
    """Re-sign the CRL (run daily from a timer: it is valid for 30 days)."""
    try:
        ca = TenantCA.load(directory, tenant)
        ca.write_crl()
    except CaError as exc:
        raise _fail(exc) from None
    typer.echo(f"{ca.directory}/crl.pem re-signed")


@ca_app.command("broker-config")
def cli_broker_config(
    directory: DirOpt, tenant: TenantOpt, out: OutOpt,
    port: Annotated[int, typer.Option(help="this tenant's TLS listener port")],
    server_cert: Annotated[Path, typer.Option(help="from 'ca server'")],
    server_key: Annotated[Path, typer.Option()],
    bridge: Annotated[list[str], typer.Option(help="bridge names allowed es/v1/#")] = [],  # noqa: B006
    bind: str = "0.0.0.0",
    prefix: str = "es/v1",
    templates: Annotated[Path, typer.Option(help="folder with the mosquitto templates")]
    = TEMPLATES,
    share_guard: Annotated[Path, typer.Option(
        help="the built share_guard plugin (make -C mosquitto/share-guard install)")]
    = SHARE_GUARD,
) -> None:
    """Write <out>/<tenant>.conf (listener) and <out>/<tenant>.acl for mosquitto's conf.d."""
    try:
        if not share_guard.is_file():
            raise CaError(f"the share_guard plugin {share_guard} is missing: build it with "
                          "'make -C mosquitto/share-guard install' (see mosquitto/README.md)")
        ca = TenantCA.load(directory, tenant)
        assert ca.directory is not None
        files = ListenerFiles(ca.directory / "ca.crt", server_cert.resolve(),
                              server_key.resolve(), ca.directory / "crl.pem",
                              (out / f"{tenant}.acl").resolve())
        conf, acl = render_broker_config(tenant, port, files, bind, prefix, tuple(bridge),
                                         templates, share_guard.resolve())
    except (CaError, OSError) as exc:
        raise _fail(exc) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{tenant}.conf").write_text(conf)
    (out / f"{tenant}.acl").write_text(acl)
    typer.echo(f"wrote {out / (tenant + '.conf')} and {out / (tenant + '.acl')}")
