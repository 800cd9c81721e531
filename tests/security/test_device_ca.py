"""``cloud-bridge ca``: what the certificates say, key file modes, revocation in the CRL,
and the rendered broker configuration."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from cloud_bridge.device_ca import TenantCA, ca_app, serial_of
from tests.security.fleet_broker import build_share_guard


def test_cli_issues_revokes_and_renders(tmp_path: Path) -> None:
    run = CliRunner().invoke
    ca_dir, out = tmp_path / "ca", tmp_path / "out"
    assert run(ca_app, ["init", "--dir", str(ca_dir), "--tenant", "t1"]).exit_code == 0
    again = run(ca_app, ["init", "--dir", str(ca_dir), "--tenant", "t1"])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    assert run(ca_app, ["device", "--dir", str(ca_dir), "--tenant", "t1", "--device", "gate-1",
                        "--out", str(out)]).exit_code == 0
    assert run(ca_app, ["server", "--dir", str(ca_dir), "--tenant", "t1", "--out", str(out),
                        "--host", "mqtt.example.si", "--host", "127.0.0.1"]).exit_code == 0
    assert run(ca_app, ["bridge", "--dir", str(ca_dir), "--tenant", "t1", "--out", str(out),
                        "--name", "b1"]).exit_code == 0
    for key in ("device.key", "server.key", "bridge-b1.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_dir / "t1" / "ca.key").stat().st_mode) == 0o600
    dev = x509.load_pem_x509_certificate((out / "device.crt").read_bytes())
    assert dev.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "t1/gate-1"
    assert dev.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "t1"
    assert dev.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value \
        == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "t1" / "ca.crt").read_bytes())
    dev.verify_directly_issued_by(ca_cert)
    bad = run(ca_app, ["device", "--dir", str(ca_dir), "--tenant", "t1", "--device", "a/b",
                       "--out", str(out)])
    assert bad.exit_code == 2 and "not valid" in bad.output

    assert run(ca_app, ["revoke", "--dir", str(ca_dir), "--tenant", "t1", "--cert",
                        str(out / "device.crt")]).exit_code == 0
    crl = x509.load_pem_x509_crl((ca_dir / "t1" / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(dev.serial_number) is not None

    broker_config = ["broker-config", "--dir", str(ca_dir), "--tenant", "t1", "--port",
                     "8883", "--server-cert", str(out / "server.crt"), "--server-key",
                     str(out / "server.key"), "--bridge", "b1", "--out", str(out)]
    missing = run(ca_app, [*broker_config, "--share-guard", str(tmp_path / "nope.so")])
    assert missing.exit_code == 2 and "share_guard" in missing.output
    assert not (out / "t1.conf").exists()
    plugin = build_share_guard(tmp_path / "plugin")
    conf = run(ca_app, [*broker_config, "--share-guard", str(plugin)])
    assert conf.exit_code == 0, conf.output
    listener, acl = (out / "t1.conf").read_text(), (out / "t1.acl").read_text()
    assert f"plugin {plugin}\nacl_file" in listener
    assert "require_certificate true" in listener and "use_identity_as_username true" in listener
    assert "use_username_as_clientid true" in listener and "crlfile" in listener
    assert "pattern write es/v1/%u/events" in acl
    assert "pattern read es/v1/t1/members/changes" in acl
    assert "user @bridge/b1\ntopic readwrite es/v1/#" in acl


def test_csr_keeps_the_device_key_on_the_device(tmp_path: Path) -> None:
    ca = TenantCA.create("t1").save(tmp_path)
    device_key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t2/other")]))
           .sign(device_key, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding

    issued = ca.issue_device_for_csr(csr.public_bytes(Encoding.PEM), "gate-1")
    assert issued.key_pem is None
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    # the CSR asked for another tenant's identity; the CA wrote its own
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "t1/gate-1"
    assert serial_of(issued.cert_pem) == issued.serial
