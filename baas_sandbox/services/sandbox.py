"""The running sandbox: settings, store, vault, clock, scheduler and what follows each event."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from baas_sandbox.adapters.fixtures import Fixtures
from baas_sandbox.adapters.repository import InMemoryStore, SandboxStore
from baas_sandbox.adapters.vault import Vault
from baas_sandbox.domain import events
from baas_sandbox.domain.model import timestamp
from baas_sandbox.services.scheduler import Scheduler
from baas_sandbox.spec import PROJECT_ROOT

logger = logging.getLogger("baas_sandbox")

DEFAULT_FIXTURES = PROJECT_ROOT / "fixtures"
LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Settings:
    fixtures_dir: Path = DEFAULT_FIXTURES
    #: Seconds from a request becoming ``pending`` to the DICT decision.
    activation_delay: float = 1.0
    #: Seconds a verification code stays valid.
    code_ttl: float = 600.0
    #: Validate responses against the spec (on in tests; a violation answers 500).
    validate_responses: bool = False
    #: Regular expression of the browser origins allowed by CORS.
    cors_origin_regex: str = LOCAL_ORIGINS
    extra: dict = field(default_factory=dict)


class Sandbox:
    """Everything a handler needs, built once per app."""

    def __init__(self, settings: Settings, fixtures: Fixtures, store: SandboxStore | None = None,
                 vault: Vault | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.settings = settings
        self.fixtures = fixtures
        self.store: SandboxStore = store or InMemoryStore()
        self.vault = vault or Vault.from_environment()
        self.clock = clock
        self.scheduler = Scheduler()
        self._followers: dict[type, list[Callable[[events.Event], None]]] = {
            events.VerificationCodeSent: [self._record_outbox],
            events.KeyRequestDecided: [self._record_webhook],
            events.CredentialSaved: [self._log_credential],
        }
        self.reset()

    def reset(self) -> None:
        self.scheduler.cancel_all()
        self.store.load(self.fixtures.tenants, self.fixtures.accounts)

    def publish(self, *happened: events.Event) -> None:
        for event in happened:
            for follow in self._followers.get(type(event), ()):
                follow(event)

    def subscribe(self, event_type: type, follower: Callable[[events.Event], None]) -> None:
        self._followers.setdefault(event_type, []).append(follower)

    # -- what follows each event ------------------------------------------------------------------

    def _record_outbox(self, event: events.Event) -> None:
        assert isinstance(event, events.VerificationCodeSent)
        self.store.record("outbox", {
            "pix_key_request_key": event.pix_key_request_key,
            "channel": event.channel,
            "destination": event.destination,
            "verification_code": event.verification_code,
            "sent_at": event.sent_at,
            "expires_at": event.expires_at,
        })

    def _record_webhook(self, event: events.Event) -> None:
        assert isinstance(event, events.KeyRequestDecided)
        self.store.record("webhooks", {
            "webhook_type": "key_inclusion",
            "recorded_at": timestamp(self.clock()),
            "body": event.webhook_body(),
        })

    @staticmethod
    def _log_credential(event: events.Event) -> None:
        assert isinstance(event, events.CredentialSaved)
        # Never the key: only which slot changed.
        logger.info("credential %s for tenant=%s provider=%s type=%s",
                    "replaced" if event.replaced else "saved",
                    event.tenant, event.provider, event.integration_type)


