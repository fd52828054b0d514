"""The web console (``GET /__admin/console``), in a real browser: Debian's chromium, headless,
driven by Selenium through chromium-driver.

One browser and one sandbox for the module (the machine is small); each test works in its own
namespace (``?namespace=``), so they do not see each other's keys. Live updates are waited for with
bounded explicit waits, and time is moved with the namespace clock, never slept. Screenshots of
every panel go to ``reports/console/`` (ignored by git) for a reviewer.

Without chromium (a developer's machine) these tests skip, saying why; in CI (``CI=true``, set by
``.ci/run``, which installs chromium) a missing browser fails them instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import live_server
from tests.helpers import ORG_A, SEED_ACCOUNT, SEED_CNPJ
from tests.receiver import Receiver

SHOTS = Path(__file__).resolve().parent.parent / "reports" / "console"
WAIT = 10  # seconds: the bound of every wait for a live update


def _browser_paths() -> tuple[str, str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", binary), ("chromedriver (chromium-driver)", driver)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        reason = (f"the console's browser tests need {', '.join(missing)}: "
                  "apt-get install -y chromium chromium-driver")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return binary, driver


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    _browser_paths()  # skip before starting anything
    # 3 attempts: below the circuit breaker's 5 failures, so a failing delivery ends "failed" at once
    with live_server(activation_delay=1.0, code_ttl=600, webhook_attempts=3) as (url, _sandbox):
        yield url


@pytest.fixture(scope="module")
def browser(site):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser_paths()
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-extensions", "--no-first-run", "--window-size=1280,900",
                     "--renderer-process-limit=1", "--disable-background-networking"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


# ---------- helpers ----------

def api(site: str, namespace: str) -> httpx.Client:
    return httpx.Client(base_url=site, headers={"X-Sandbox-Namespace": namespace}, timeout=10)


def open_console(browser, site: str, namespace: str, tab: str = "accounts") -> None:
    browser.set_window_size(1280, 900)
    browser.get(f"{site}/__admin/console?namespace={namespace}#{tab}")
    wait(browser).until(lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "true")


def wait(browser, timeout: float = WAIT):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def css(browser, selector: str):
    return browser.find_element("css selector", selector)


def wait_css(browser, selector: str, text: str | None = None):
    """The element, once it is there (and holds ``text``)."""
    def found(d):
        element = d.find_element("css selector", selector)
        return element if text is None or text in element.text else False
    return wait(browser).until(found, f"{selector} {text or ''}")


def attribute_is(browser, selector: str, name: str, value: str) -> None:
    from selenium.common.exceptions import TimeoutException

    try:
        wait(browser).until(lambda d: d.find_element("css selector", selector).get_attribute(name) == value)
    except TimeoutException:
        raise AssertionError(f"{selector}[{name}={value!r}] not seen within {WAIT} s; the console says: "
                             f"{text_of(browser, '#status')!r}; events: {text_of(browser, '#events-count')!r}; "
                             f"keys: {[k.get_attribute('data-request-key') + ' ' + k.get_attribute('data-request-status') for k in browser.find_elements('css selector', 'li.key')]}; "
                             f"logs: {browser_logs(browser)}; loads: "
                             + browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name.replace(/^.*__admin/, '') + '@' + Math.round(e.startTime)).join(' ')")) from None


def browser_logs(browser) -> list[str]:
    try:
        return [entry["message"] for entry in browser.get_log("browser")]
    except Exception:  # noqa: BLE001 (a driver without logs)
        return []


def click(browser, selector: str) -> None:
    """Find and click, again if the list was rebuilt in between (a live update)."""
    wait(browser).until(lambda d: d.find_element("css selector", selector).click() or True, f"click {selector}")


def type_into(browser, selector: str, text: str, clear: bool = False) -> None:
    def typed(d):
        element = d.find_element("css selector", selector)
        if clear:
            element.clear()
        element.send_keys(text)
        return True
    wait(browser).until(typed, f"type into {selector}")


def choose(browser, selector: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select


    wait(browser).until(lambda d: Select(d.find_element("css selector", selector)).select_by_value(value) or True,
                        f"choose {value} in {selector}")


def text_of(browser, selector: str) -> str:
    """The element's text, read again if a live update rebuilt it meanwhile."""
    return wait(browser).until(lambda d: d.find_element("css selector", selector).text or " ", f"text of {selector}")


def tab(browser, name: str) -> None:
    click(browser, f'nav.tabs a[data-tab="{name}"]')
    wait(browser).until(lambda d: d.find_element("id", f"panel-{name}").is_displayed())


def shot(browser, name: str, at: str | None = None) -> None:
    """A screenshot for a reviewer, ``at`` an element scrolled to the middle of the window."""
    if at:
        browser.execute_script("const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'});", at)
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def status_says(browser, text: str) -> None:
    wait_css(browser, "#status", text)


# ---------- the tests ----------

def test_the_front_door_links_the_console_and_it_shows_the_seed_account(browser, site):
    browser.get(site + "/")
    browser.find_element("link text", "the console").click()
    wait(browser).until(lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "true")
    assert browser.current_url.startswith(site + "/__admin/console")
    wait_css(browser, f'article[data-account-key="{SEED_ACCOUNT}"]', SEED_CNPJ)
    assert "VOVO LUCIA" in text_of(browser, f'article[data-account-key="{SEED_ACCOUNT}"]')
    assert "org-a" in text_of(browser, "#accounts")
    shot(browser, "accounts-1280")
    browser.set_window_size(400, 900)
    wait_css(browser, f'article[data-account-key="{SEED_ACCOUNT}"]')
    overflow = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways at 400 px ({overflow} px)"
    shot(browser, "accounts-400")
    browser.set_window_size(1280, 900)


def test_every_control_has_a_label(browser, site):
    open_console(browser, site, "labels")
    unlabelled = browser.execute_script("""
        const bad = [];
        for (const el of document.querySelectorAll('input, select, textarea, button')) {
          if (el.type === 'hidden' || el.closest('dialog:not([open])') && el.tagName !== 'INPUT') continue;
          const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') ||
                        el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
          if (!named) bad.push(el.outerHTML.slice(0, 120));
        }
        return bad;""")
    assert unlabelled == []
    # keyboard: the tabs are links, reached and followed with the keyboard
    from selenium.webdriver.common.keys import Keys
    link = css(browser, 'nav.tabs a[data-tab="scenarios"]')
    link.send_keys(Keys.ENTER)
    wait(browser).until(lambda d: d.find_element("id", "panel-scenarios").is_displayed())


def test_a_key_made_through_the_api_appears_live_and_turns_active(browser, site):
    ns = "live-key"
    with api(site, ns) as client:
        client.put("/__admin/clock", json={"frozen": True}).raise_for_status()
        open_console(browser, site, ns)
        created = client.post("/baas/pix/keys", headers=ORG_A, json={
            "account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ})
        assert created.status_code == 201
        rk = created.json()["pix_key_request_key"]
        item = f'li.key[data-request-key="{rk}"]'
        attribute_is(browser, item, "data-request-status", "pending")  # no reload: the events stream
        # DICT decides after the activation delay, on the namespace's clock: the console's +1 min
        click(browser, 'button[data-advance="60"]')
        attribute_is(browser, item, "data-key-status", "active")
        assert "approved" in text_of(browser, item)
        click(browser, f"{item} button[data-action=history]")
        wait_css(browser, f"{item} .history", "pix_key_activated")
        assert "pix_key_request_created" in text_of(browser, f"{item} .history")
        shot(browser, "key-history", at=item)


def test_a_code_appears_live_and_validating_it_through_the_api_shows_the_key_active(browser, site):
    ns = "live-code"
    with api(site, ns) as client:
        client.put("/__admin/clock", json={"frozen": True}).raise_for_status()
        open_console(browser, site, ns, "codes")
        created = client.post("/baas/pix/keys", headers=ORG_A, json={
            "account_key": SEED_ACCOUNT, "pix_key_type": "email", "pix_key": "live.code@example.com"}).json()
        rk = created["pix_key_request_key"]
        code = text_of(browser, f'li.code[data-request-key="{rk}"] .code-value')
        assert len(code) == 6 and code.isdigit()
        assert "live.code@example.com" in text_of(browser, f'li.code[data-request-key="{rk}"]')
        attribute_is(browser, f'li.code[data-request-key="{rk}"]', "data-code-status", "valid")
        shot(browser, "codes")
        browser.set_window_size(400, 900)
        shot(browser, "codes-400")
        browser.set_window_size(1280, 900)
        answer = client.patch(f"/baas/pix/keys/{rk}/twofa_validation", headers=ORG_A, json={"verification_code": code})
        assert answer.status_code == 200
        client.post("/__admin/clock/advance", json={"seconds": 2}).raise_for_status()
        tab(browser, "accounts")
        attribute_is(browser, f'li.key[data-request-key="{rk}"]', "data-key-status", "active")


def test_advancing_the_clock_past_a_codes_expiry_shows_it_expired(browser, site):
    ns = "expiry"
    with api(site, ns) as client:
        client.put("/__admin/clock", json={"frozen": True}).raise_for_status()
        rk = client.post("/baas/pix/keys", headers=ORG_A, json={
            "account_key": SEED_ACCOUNT, "pix_key_type": "email", "pix_key": "expiry@example.com"}).json()["pix_key_request_key"]
        open_console(browser, site, ns, "codes")
        item = f'li.code[data-request-key="{rk}"]'
        attribute_is(browser, item, "data-code-status", "valid")
        click(browser, 'button[data-advance="3600"]')  # the code lives 10 minutes
        attribute_is(browser, item, "data-code-status", "expired")
        assert "frozen" in text_of(browser, "#clock-state")
        shot(browser, "codes-expired")


def test_a_scenario_switched_on_in_the_console_answers_the_next_request(browser, site):
    ns = "scenario"
    open_console(browser, site, ns, "scenarios")
    assert not wait(browser).until(lambda d: [d.find_element("css selector", 'input[data-scenario="limits-reached"]').is_selected()])[0]
    click(browser, 'input[data-scenario="limits-reached"]')
    wait_css(browser, 'li[data-scenario-name="limits-reached"] label', "(on, #1)")
    with api(site, ns) as client:
        answer = client.post("/baas/pix/keys", headers=ORG_A, json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
        assert answer.status_code == 400 and answer.json()["code"] == "PIX000014"
    wait_css(browser, 'li[data-scenario-name="limits-reached"] td.applied', "1")  # counts refresh
    shot(browser, "scenarios", at='li[data-scenario-name="limits-reached"]')


def test_a_failing_receivers_delivery_shows_its_attempts_and_redeliver_works(browser, site):
    ns = "webhooks"
    with Receiver(answers=[500] * 3) as receiver, api(site, ns) as client:
        open_console(browser, site, ns, "webhooks")
        type_into(browser, "#subscription-url", receiver.url)
        type_into(browser, "#subscription-events", "credential_saved", clear=True)
        click(browser, "#subscription-add")
        wait_css(browser, "#subscriptions", receiver.url)
        client.post("/banking-auth/v1/credentials", headers=ORG_A | {"account_token": "t"},
                    json={"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX"}).raise_for_status()
        delivery = 'li.delivery'
        attribute_is(browser, delivery, "data-state", "failed")
        attempts = browser.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(row => row.textContent)", f"{delivery} tr.attempt")
        assert len(attempts) == 3 and all("HTTP 500" in row and "ms" in row for row in attempts), attempts
        shot(browser, "webhooks-failed")
        click(browser, f"{delivery} button[data-action=redeliver]")  # the receiver answers 200 now
        attribute_is(browser, delivery, "data-state", "delivered")
        assert receiver.accepted()
        wait_css(browser, f"{delivery} tbody", "HTTP 200")
        shot(browser, "webhooks-redelivered")


def test_the_journal_shows_a_request_with_the_credential_key_masked(browser, site):
    ns = "journal"
    secret = "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf"
    with api(site, ns) as client:
        client.post("/banking-auth/v1/credentials", headers=ORG_A | {"account_token": "t"},
                    json={"key": secret, "provider": "BTG", "type": "PIX"}).raise_for_status()
        client.get("/baas/pix/keys", headers=ORG_A, params={"account_key": SEED_ACCOUNT}).raise_for_status()
    open_console(browser, site, ns, "journal")
    choose(browser, "#journal-operation", "post-credentials")
    wait_css(browser, "#journal tr[data-status='201']", "/banking-auth/v1/credentials")
    assert "/baas/pix/keys" not in text_of(browser, "#journal")  # the filter
    click(browser, "#journal tr[data-status='201'] button[data-action=journal-detail]")
    wait_css(browser, "#journal-detail .request-body", '"****"')
    assert secret not in text_of(browser, "#journal-detail .request-body") and secret not in browser.page_source
    assert "Credential saved" in text_of(browser, "#journal-detail .response-body")
    shot(browser, "journal", at="#journal-detail")


def test_a_key_is_deleted_from_the_console_and_its_history_says_so(browser, site):
    ns = "delete"
    with api(site, ns) as client:
        client.put("/__admin/clock", json={"frozen": True}).raise_for_status()
        rk = client.post("/baas/pix/keys", headers=ORG_A, json={
            "account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ}).json()["pix_key_request_key"]
        client.post("/__admin/clock/advance", json={"seconds": 2}).raise_for_status()
        open_console(browser, site, ns)
        item = f'li.key[data-request-key="{rk}"]'
        attribute_is(browser, item, "data-key-status", "active")
        click(browser, f"{item} button[data-action=delete-key]")
        status_says(browser, "Key deleted")
        attribute_is(browser, item, "data-key-status", "inactive")
        listed = client.get("/baas/pix/keys", headers=ORG_A, params={"account_key": SEED_ACCOUNT}).json()["pix_keys"]
        assert not any(k["pix_key"] == SEED_CNPJ and k["pix_key_status"] == "active" for k in listed)
        click(browser, f"{item} button[data-action=history]")
        wait_css(browser, f"{item} .history", "pix_key_deleted")
        shot(browser, "key-deleted", at=item)


def test_a_lookup_from_the_console_spends_its_bucket_and_the_clock_refills_it(browser, site):
    ns = "rate-limits"
    with api(site, ns) as client:
        client.put("/__admin/clock", json={"frozen": True}).raise_for_status()
    open_console(browser, site, ns, "rate-limits")
    choose(browser, "#lookup-account", SEED_ACCOUNT)
    type_into(browser, "#lookup-key", "nobody.here@example.com")
    click(browser, "#lookup-submit")
    wait_css(browser, "#lookup-answer", "Not found")
    bucket = f'tr[data-bucket="{SEED_ACCOUNT}"]'
    attribute_is(browser, bucket, "data-tokens", "980")  # 1,000 for a legal person, 20 for a key not found
    shot(browser, "rate-limits")
    click(browser, 'button[data-advance="3600"]')  # 2 a minute: full again
    wait(browser).until(lambda d: not d.find_elements("css selector", bucket)
                        or d.find_element("css selector", bucket).get_attribute("data-tokens") == "1000")


def test_events_are_listed_filtered_and_readable(browser, site):
    ns = "events"
    with api(site, ns) as client:
        client.post("/baas/pix/keys", headers=ORG_A, json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
        client.post("/banking-auth/v1/credentials", headers=ORG_A | {"account_token": "t"},
                    json={"key": "k", "provider": "BTG", "type": "PIX"})
    open_console(browser, site, ns, "events")
    wait_css(browser, "#events", "credential_saved")
    choose(browser, "#events-filter", "pix_key_request_created")
    wait(browser).until(lambda d: "credential_saved" not in d.find_element("id", "events").text)
    click(browser, "#events li.event summary")
    assert '"event_type": "pix_key_request_created"' in text_of(browser, "#events pre.json")
    shot(browser, "events")


def test_a_new_user_walks_a_cnpj_key_an_email_key_and_a_scenario(browser, site):
    """From the front door, in the default namespace, reading no JSON: everything through the console."""

    browser.set_window_size(1280, 900)
    browser.get(site + "/")
    browser.find_element("link text", "the console").click()
    wait(browser).until(lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "true")
    # A new legal-person account, its CNPJ filled by the page
    click(browser, "#new-account summary")
    choose(browser, "#account-type", "legal")
    click(browser, "#account-generate")
    cnpj = css(browser, "#account-document").get_attribute("value")
    assert len(cnpj) == 14 and cnpj[0] in "06789"
    click(browser, "#account-create")
    status_says(browser, "Account created")
    account_key = wait(browser).until(lambda d: d.execute_script(
        "const a = [...document.querySelectorAll('article.account')].find(a => a.textContent.includes(arguments[0]));"
        "return a && a.dataset.accountKey;", cnpj))
    card = f'article[data-account-key="{account_key}"]'
    # CNPJ key: the form offers the owner's CNPJ
    assert css(browser, f"#key-value-{account_key}").get_attribute("value") == cnpj
    click(browser, f"{card} button[data-action=request-key]")
    status_says(browser, "Key requested")
    wait_css(browser, f"{card} li.key", cnpj)
    click(browser, 'button[data-advance="60"]')
    attribute_is(browser, f"{card} li.key", "data-key-status", "active")
    shot(browser, "walk-cnpj-active", at=card)
    # Email key: the code is copied from the Codes panel and pasted into the key's form
    choose(browser, f"#key-type-{account_key}", "email")
    type_into(browser, f"#key-value-{account_key}", "walk@example.com", clear=True)
    click(browser, f"{card} button[data-action=request-key]")
    status_says(browser, "Key requested")
    email_key = f"{card} li.key[data-request-status=pending_validation]"
    rk = wait_css(browser, email_key).get_attribute("data-request-key")
    tab(browser, "codes")
    code_item = f'li.code[data-request-key="{rk}"]'
    code = text_of(browser, f"{code_item} .code-value")
    click(browser, f"{code_item} button[data-action=copy]")
    status_says(browser, f"Code {code} copied")
    shot(browser, "walk-code")
    tab(browser, "accounts")
    type_into(browser, f"#code-{rk}", code)
    click(browser, f'li.key[data-request-key="{rk}"] button[data-action=validate]')
    status_says(browser, "Code accepted")
    click(browser, 'button[data-advance="60"]')
    attribute_is(browser, f'li.key[data-request-key="{rk}"]', "data-key-status", "active")
    shot(browser, "walk-email-active", at=f'li.key[data-request-key="{rk}"]')
    # A scenario: keys refused with the limit's error, seen in the console's status line
    tab(browser, "scenarios")
    click(browser, 'input[data-scenario="limits-reached"]')
    wait_css(browser, 'li[data-scenario-name="limits-reached"] label', "(on")
    tab(browser, "accounts")
    choose(browser, f"#key-type-{account_key}", "random_key")
    click(browser, f"{card} button[data-action=request-key]")
    status_says(browser, "PIX000014")
    shot(browser, "walk-scenario-error", at=card)
    tab(browser, "scenarios")
    click(browser, 'input[data-scenario="limits-reached"]')
    wait_css(browser, 'li[data-scenario-name="limits-reached"] label', "(off)")
    # the clock back to real time, the namespace back to its fixtures (leave the default namespace clean)
    click(browser, "#clock-real")
    click(browser, "#reset")
    click(browser, "#reset")
    status_says(browser, "reset to the fixtures")


def test_with_an_admin_token_the_console_asks_for_it_once(browser):
    with live_server(admin_token="console-secret") as (url, _sandbox):
        browser.get(url + "/__admin/console#accounts")
        field = wait(browser).until(lambda d: d.find_element("id", "token-input").is_displayed() and d.find_element("id", "token-input"))
        shot(browser, "token-dialog")
        field.send_keys("console-secret")
        click(browser, "#token-save")
        wait(browser).until(lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "true")
        wait_css(browser, f'article[data-account-key="{SEED_ACCOUNT}"]')
        assert browser.execute_script("return sessionStorage.getItem('baas-sandbox-admin-token')") == "console-secret"
        browser.refresh()  # kept for the tab: not asked again
        wait(browser).until(lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "true")
        assert not css(browser, "#token-dialog").is_displayed()
        browser.execute_script("sessionStorage.clear()")


def test_without_a_browser_the_tests_skip_saying_why_but_fail_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        _browser_paths()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: .*chromium"):
        _browser_paths()


def test_a_refused_scenario_edit_is_shown_with_its_reason(browser, tmp_path):
    import time

    from tests.test_scenarios import fixtures_with, outage_rule, write_scenario

    directory = fixtures_with(tmp_path, live=outage_rule())
    with live_server(fixtures_dir=directory) as (url, _sandbox):
        time.sleep(0.1)  # a later modification time than the first version's
        write_scenario(directory, "live", outage_rule().replace("502", "418"))
        browser.get(url + "/__admin/console#scenarios")
        wait(browser, 20).until(lambda d: "Last edit refused" in d.find_element("id", "scenarios").text)
        text = text_of(browser, 'li[data-scenario-name="live"]')
        assert "status 418 is not documented for post-credentials" in text
        shot(browser, "scenarios-refused", at='li[data-scenario-name="live"]')
