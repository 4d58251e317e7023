"""A shop's sign-up page, in headless Chromium, signs a referred visitor up through the
bridge: the page is on its own origin, so the browser does a real CORS preflight."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.support.local_stack import RunningStack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (make browser-deps)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402 - only when a browser exists
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium fetch a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def sign_up(browser: webdriver.Chrome, page: str, email: str) -> str:
    browser.get(page)
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "name").send_keys("Rosa")
    browser.find_element(By.ID, "submit").click()
    form = browser.find_element(By.CSS_SELECTOR, "form[data-partnero-signup]")
    WebDriverWait(browser, 15).until(lambda _d: form.get_attribute("data-result"))
    return str(form.get_attribute("data-result"))


def test_referred_visitor_signs_up_from_the_shop_page(
    stack: RunningStack, partnero: PartneroSandbox, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    result = sign_up(browser, f"{stack.shop_url}/?ref=demo-partner", "Rosa@Example.com")
    browser.save_screenshot(str(tmp_path / "signed-up.png"))
    assert result == "202"
    assert browser.find_element(By.ID, "status").text == "Thanks for signing up!"
    [customer] = wait_for(partnero.customers, 20, "the customer in Partnero")
    assert customer["key"] == "rosa@example.com"
    assert customer["partner"] == {"key": "demo-partner"}
    assert customer["referral_url"].startswith(stack.shop_url)


def test_a_partner_cookie_the_bridge_would_refuse_counts_as_no_partner(
    stack: RunningStack, partnero: PartneroSandbox, browser: webdriver.Chrome
) -> None:
    # ?ref=ac%00me makes the demo page set a partner cookie holding a NUL character: the
    # visitor still signs up (not referred), the page shows no error.
    result = sign_up(browser, f"{stack.shop_url}/?ref=ac%00me", "nell@example.com")
    assert result == "202"
    assert browser.find_element(By.ID, "status").text == "Thanks for signing up!"
    stack.wait_until_drained("signup")
    assert partnero.requests() == []


def test_page_on_a_foreign_origin_is_refused_by_cors(
    stack: RunningStack, partnero: PartneroSandbox, browser: webdriver.Chrome
) -> None:
    # The same page served as localhost: an origin the stack was not told to trust.
    foreign = stack.shop_url.replace("127.0.0.1", "localhost")
    assert sign_up(browser, f"{foreign}/?ref=demo-partner", "mallory@example.com") == (
        "network-error"
    )
    assert stack.queue_depth("signup") == 0
    assert partnero.requests() == []


def test_newcomer_sends_a_stripe_event_and_watches_it_on_the_sandbox_page(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """The README's walk-through: `make run` with nothing configured, `partnero-bridge send
    stripe/invoice.paid`, and the transaction appears on the sandbox page by itself."""
    newcomer = RunningStack({})
    try:
        browser.get(f"{newcomer.sandbox_url}/")
        WebDriverWait(browser, 10).until(
            lambda d: "Nothing yet" in d.find_element(By.ID, "transactions").text
        )
        sent = newcomer.cli("send", "stripe/invoice.paid")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "-> 200" in sent.stdout
        # What became of it, printed by send and listed on the page's deliveries.
        delivery = "stripe-evt_1RAda0InvoicePaidFirst00"
        assert f"{delivery}: created 20.00 USD: paid - Stripe invoice" in sent.stdout
        listed = f"#deliveries tr[data-delivery='{delivery}']"
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, listed))
        cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, f"{listed} td")]
        assert cells[1:6] == [
            "stripe",
            "invoice.paid",
            "Stripe invoice in_FIRSTAdaPartneroDemo",
            "created",
            "created 20.00 USD: paid",
        ]
        row = "tr[data-key='stripe_in_FIRSTAdaPartneroDemo']"
        WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
        cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, f"{row} td")]
        browser.save_screenshot(str(tmp_path / "sandbox.png"))
        assert cells[:5] == [
            "stripe_in_FIRSTAdaPartneroDemo",
            "ada@example.com",
            "demo-partner",
            "20.00",
            "USD",
        ]
        assert cells[-1] == "live"
    finally:
        assert newcomer.stop() == 0
