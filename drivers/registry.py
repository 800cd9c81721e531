"""Back-end lookup by URL scheme, per peripheral role (like pyserial's serial_for_url).

Back-ends are named as "module:Class" strings and imported only when a config asks
for them, so a Pi installs only the extras for what it drives. Every back-end class is
constructed as ``Class(id, url, options)`` where ``options`` is the config table of the
peripheral minus ``id`` and ``url``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Literal

from drivers.errors import BackendUnavailable, BadPeripheralUrl, UnknownBackend

Role = Literal["reader", "gate", "display", "printer"]

# scheme -> ("module:Class", pip extra that provides its library)
BACKENDS: dict[Role, dict[str, tuple[str, str | None]]] = {
    "reader": {
        "sim": ("drivers.sim_reader:SimReader", None),
        "nfc": ("drivers.nfc_reader:NfcReader", "nfc"),
        "pcsc": ("drivers.pcsc_reader:PcscReader", "pcsc"),
        "serial": ("drivers.serial_reader:SerialReader", "serial"),
        "osdp": ("drivers.osdp_reader:OsdpReader", "osdp"),
        "camera": ("drivers.camera_qr_reader:CameraQrReader", "camera"),
    },
    "gate": {
        "sim": ("drivers.sim_gate:SimGate", None),
        "gpio": ("drivers.gpio_gate:GpioGate", "gpio"),
        "serial-relay": ("drivers.serial_relay_gate:SerialRelayGate", "gpio"),
    },
    "display": {
        "sim": ("drivers.sim_display:SimDisplay", None),
    },
    "printer": {
        "sim": ("drivers.sim_printer:SimPrinter", None),
        "escpos-net": ("drivers.escpos_printer:EscposPrinter", "printer"),
        "escpos-usb": ("drivers.escpos_printer:EscposPrinter", "printer"),
        "escpos-serial": ("drivers.escpos_printer:EscposPrinter", "printer"),
        "escpos-file": ("drivers.escpos_printer:EscposPrinter", "printer"),
    },
}


def url_scheme(url: str) -> str:
    scheme, sep, _rest = url.partition(":")
    if not sep or not scheme:
        raise BadPeripheralUrl(f"'{url}' has no scheme; expected e.g. 'sim:' or 'nfc:usb'")
    return scheme.lower()


def backend_class(role: Role, url: str) -> type[Any]:
    scheme = url_scheme(url)
    table = BACKENDS[role]
    if scheme not in table:
        known = ", ".join(sorted(f"{s}:" for s in table))
        raise UnknownBackend(f"no {role} back-end for '{scheme}:' (known: {known})")
    target, extra = table[scheme]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'edge-suite[{extra}]'" if extra else "reinstall edge-suite"
        raise BackendUnavailable(
            f"{role} back-end '{scheme}:' cannot load ({exc}); install it with: {hint}"
        ) from exc
    backend: type[Any] = getattr(module, class_name)
    return backend


def open_peripheral(role: Role, peripheral_id: str, url: str, options: Mapping[str, Any]) -> Any:
    cls = backend_class(role, url)
    return cls(peripheral_id, url, dict(options))
