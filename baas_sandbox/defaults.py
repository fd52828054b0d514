"""Defaults shared by the CLI and the settings; free of imports, so the CLI can load it first."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = PROJECT_ROOT / "fixtures"
#: Browser origins allowed by CORS by default: any port of this machine.
LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"
#: Where webhooks may be sent by default: this machine only. A local sandbox sends nothing
#: elsewhere unless told to (``--webhook-allowed-hosts``): a mistyped or generated URL leaks nothing.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Bounds on what one client can make the server hold (``--max-body-size``, ``--header-timeout``,
#: ``--max-connections``): a request body, in bytes; seconds to send a request's headers; open
#: connections served at once.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1000
