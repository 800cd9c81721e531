"""PosRuntime: builds the POS feature from the agent config and runs its parts.

    runtime = PosRuntime(config, store, outbox, printers, http=daemon.http)
    runtime.start()          # recovery, retry worker, HTTP router (own listener if set)
    runtime.submit(job)      # MQTT "print" command
    runtime.reprint("P1-BLAG1-42")   # MQTT "reprint" command
    runtime.stop()

Construct it before the agent's LocalHttpServer starts so the router is in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.key_files import check_key_file
from agent.local_http import LocalHttpServer
from agent.pos.errors import CredentialError
from agent.pos.fiscal.client import FursClient
from agent.pos.fiscal.credentials import TaxpayerCredentials, load_pkcs12
from agent.pos.fiscal_worker import FiscalWorker
from agent.pos.http_api import make_pos_router
from agent.pos.layout import Issuer
from agent.pos.pos_config import PosConfig
from agent.pos.service import Clock, Fiscaliser, ReceiptResult, ReceiptService, utc_now
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from drivers.protocols import Display, Printer

if TYPE_CHECKING:
    from agent.till.catalogue_feed import CatalogueFeed
    from agent.till.till import Till

log = logging.getLogger(__name__)


def _secret_file(config: AgentConfig, value: str, where: str) -> str:
    path = config.path(value)
    check_key_file(path, f"{config.source}: {where}")
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{config.source}: {where}: cannot read {path}: {exc.strerror}") \
            from None


def load_credentials(config: AgentConfig) -> TaxpayerCredentials:
    pos = _pos(config)
    if pos.pkcs12_password is not None:
        password = pos.pkcs12_password.get_secret_value()
    else:
        assert pos.pkcs12_password_file is not None
        password = _secret_file(config, pos.pkcs12_password_file, "pos.pkcs12_password_file")
    creds = load_pkcs12(config.path(pos.pkcs12_path), password.encode())
    in_cert = creds.tax_number_in_certificate()
    if in_cert is not None and in_cert != pos.tax_number:
        # FURS would answer S005 to every receipt
        raise CredentialError(f"{config.source}: pos.tax_number {pos.tax_number} is not the "
                              f"tax number of the certificate ({in_cert})")
    return creds


def _pos(config: AgentConfig) -> PosConfig:
    if config.pos is None:
        raise ConfigError(f"{config.source}: no [pos] table")
    return config.pos


def receipt_service(store: LocalStore, outbox: Outbox, pos: PosConfig, key: Any,
                    furs: Fiscaliser, printer: Printer, clock: Clock = utc_now
                    ) -> ReceiptService:
    """The receipt service of a [pos] table: the issuer printed on every receipt comes
    from it. ``key`` is the taxpayer's RSA key that signs the ZOIs."""
    issuer = Issuer(pos.issuer_name, tuple(pos.issuer_address), pos.tax_number, pos.vat_id)
    return ReceiptService(store=store, outbox=outbox, pos=pos, key=key, furs=furs,
                          printer=printer, issuer=issuer, clock=clock)


class PosRuntime:
    def __init__(self, config: AgentConfig, store: LocalStore, outbox: Outbox,
                 printers: dict[str, Printer], *, http: LocalHttpServer | None = None,
                 furs: Fiscaliser | None = None, clock: Clock = utc_now,
                 displays: Mapping[str, Display] | None = None) -> None:
        pos = _pos(config)
        self.config = config
        if pos.printer not in printers:
            raise ConfigError(f"{config.source}: pos.printer: '{pos.printer}' is not a printer "
                              f"id (known: {', '.join(sorted(printers)) or 'none'})")
        self.creds = load_credentials(config)
        self._client: FursClient | None = None
        if furs is None:
            ca = str(config.path(pos.furs_ca_file)) if pos.furs_ca_file else None
            self._client = FursClient(pos.furs_url, self.creds, ca_file=ca,
                                      timeout_s=pos.furs_timeout_s)
            furs = self._client
        self.service = receipt_service(store, outbox, pos, self.creds.key, furs,
                                       printers[pos.printer], clock)
        self.worker = FiscalWorker(self.service, print_retry_s=max(pos.retry_initial_s, 0.05))
        self.http = http
        # [pos.till]: the tenant's catalogue from the bridge, for the MQTT link
        self.catalogue_feed: CatalogueFeed | None = None
        self.till: Till | None = None  # [pos.till]: its reader path goes through here
        self._own_http: LocalHttpServer | None = None
        if pos.http is not None:
            router = make_pos_router(self.service, self._token_reader(config, pos),
                                     pos.http.max_body_bytes)
            if pos.http.bind is not None and pos.http.port is not None:
                self._own_http = LocalHttpServer(pos.http.bind, pos.http.port, "edge-agent-pos")
                self._own_http.add_router(router)
            elif http is not None:
                http.add_router(router)
            else:
                raise ConfigError(f"{config.source}: pos.http needs [local_http] or its own "
                                  "pos.http.bind and pos.http.port")

        if pos.till is not None:
            self._mount_till(config, pos, http, displays or {})

    def _mount_till(self, config: AgentConfig, pos: PosConfig,
                    http: LocalHttpServer | None, displays: Mapping[str, Display]) -> None:
        # imported here: the till is optional and the receipt path must not pay for it
        from agent.till.cashiers import Cashiers
        from agent.till.catalogue import CatalogueUpdates, load_catalogue
        from agent.till.catalogue_feed import CatalogueFeed
        from agent.till.customer_display import CustomerDisplay
        from agent.till.http_routes import make_till_router
        from agent.till.till import Till
        assert pos.till is not None
        server = self._own_http or http
        if server is None:
            raise ConfigError(f"{config.source}: pos.till needs [local_http] or pos.http "
                              "with its own bind and port")
        path = config.path(pos.till.catalogue_file)
        public_key = config.tenant_public_key()
        catalogue = load_catalogue(path, public_key, config.tenant)
        cashiers = Cashiers(pos.till.cashiers, pos.till.session_minutes)
        updates = CatalogueUpdates(path, public_key, config.tenant)
        display = None
        if pos.till.customer_display is not None:
            display = displays.get(pos.till.customer_display)
            if display is None:
                raise ConfigError(f"{config.source}: pos.till.customer_display: "
                                  f"'{pos.till.customer_display}' is not a display id")
        tickets = None
        if public_key is not None:  # tickets are verified with the tenant key at the gates
            from agent.till.ticket_issuer import TicketIssuer
            from agent.till.tickets import TillTickets
            issuer = TicketIssuer(config.data_path, public_key, config.site)
            tickets = TillTickets(self.service.store, self.service.outbox, issuer,
                                  pos.columns)
        till = Till(self.service, catalogue, cashiers, pos.till.drawer_kick, updates,
                    CustomerDisplay(display), tickets, config.hmac_key())
        self.till = till
        self.catalogue_feed = CatalogueFeed(till)
        server.add_router(make_till_router(till))

    @staticmethod
    def _token_reader(config: AgentConfig, pos: PosConfig) -> Callable[[], str]:
        assert pos.http is not None
        if pos.http.token is not None:
            token = pos.http.token.get_secret_value()
        else:
            assert pos.http.token_file is not None
            token = _secret_file(config, pos.http.token_file, "pos.http.token_file")
            if len(token) < 16:
                raise ConfigError(f"{config.source}: pos.http.token_file: the token must be "
                                  "at least 16 characters")
        return lambda: token

    @property
    def http_port(self) -> int | None:
        server = self._own_http or self.http
        return None if server is None else server.port

    def start(self) -> None:
        uncertain = self.service.recover()
        if uncertain:
            log.warning("%d receipt(s) were being printed when the agent stopped; marked "
                        "'uncertain' (reprint a copy if the customer has none)", uncertain)
        self.worker.start()
        if self._own_http is not None:
            self._own_http.start()

    def stop(self) -> None:
        self.worker.stop()
        if self._own_http is not None:
            self._own_http.stop()
        if self._client is not None:
            self._client.close()

    # -- for the MQTT command handler -------------------------------------------------------

    def submit(self, job: Any) -> ReceiptResult:
        return self.service.submit(job)

    def reprint(self, invoice_id: str) -> ReceiptResult:
        return self.service.reprint(invoice_id)

    def status(self) -> dict[str, Any]:
        return self.service.summary()

    def till_catalogue(self) -> dict[str, Any] | None:
        """The till's catalogue version and last refused update, and its ticket issuer
        (public key, delegation end, problem) when it has one; None without a till."""
        if self.catalogue_feed is None:
            return None
        status = self.catalogue_feed.status()
        if self.till is not None and self.till.tickets is not None:
            status["tickets"] = self.till.tickets.issuer.status(int(time.time()))
        return status

    def register_premise(self) -> None:
        """Send [pos.premise] to FURS (BusinessPremiseRequest); needed once before the first
        receipt of a premise, else FURS answers S006."""
        pos = _pos(self.config)
        if pos.premise is None:
            raise ConfigError(f"{self.config.source}: no [pos.premise] table to register")
        if self._client is None:
            raise ConfigError("premise registration needs the FURS client")
        p = pos.premise
        from agent.pos.fiscal.messages import PremiseAddress

        address = None if p.address is None else PremiseAddress(
            p.address.street, p.address.house_number, p.address.community, p.address.city,
            p.address.postal_code, p.address.house_number_additional)
        self._client.register_premise(
            validity=p.validity_date or date.today(), premise_id=pos.premise_id,
            software_supplier_tax_number=p.software_supplier_tax_number,
            software_supplier_name=p.software_supplier_name,
            cadastral_number=p.cadastral_number, building_number=p.building_number,
            building_section_number=p.building_section_number, address=address,
            movable_type=p.movable_type, notes=p.notes)
