"""Defaults shared by the CLI and the settings; free of imports, so the CLI can load it first."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: A checkout's root (pyproject.toml, README.md, tests/); in an installed package, the folder
#: holding it (site-packages), which has none of these.
PROJECT_ROOT = PACKAGE_DIR.parent


def _data_dir(name: str, installed_as: str) -> Path:
    """Where ``spec/`` or ``fixtures/`` is: inside the package when installed from a wheel or an
    sdist (pyproject.toml maps them there, as ``installed_as``), at the checkout's top level
    otherwise (the design card's layout; an editable install reads them in place)."""
    installed = PACKAGE_DIR / installed_as
    return installed if installed.is_dir() else PROJECT_ROOT / name


SPEC_DIR = _data_dir("spec", installed_as="specs")  # not "spec": the module spec.py has that name
DEFAULT_FIXTURES = _data_dir("fixtures", installed_as="fixtures")
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
