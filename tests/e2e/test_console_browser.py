"""The console's web UI in a real browser (Debian's chromium + chromium-driver, headless, driven
by python3-selenium): the real `iplock console` and `iplock gate` on one SQLite store, and
Stripe's own SDK (python3-stripe) through the gate from bound loopback source addresses.

One browser for the module. The first test walks the whole flow of issue 12 (log in, create a
restricted key with charges Write, ⋯ → Manage IP restrictions, two addresses with + Add, the
check-before-saving warning for an address that used the key, confirm, Save, then a Stripe
call from an allowed and from another address); the others roll, revoke, edit permissions,
go from report-only to enforced, sign in as a viewer, and check CSRF and session expiry.
Screenshots of the main pages go to $IPLOCK_ARTEFACTS (or the test's temp directory)."""
import glob
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from gate_util import IPLOCK, Gate, Upstream, curl, free_port, stop_process, wait_port

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FAKETIME = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), None)
ADMIN, ADMIN_PW = "alice", "alice-password-1"
VIEWER, VIEWER_PW = "victor", "victor-password-1"
ALLOWED = ("127.0.0.2", "127.0.0.3")
OTHER = "127.0.0.9"          # uses the key before the restriction, refused after it
EGRESS = ("127.0.0.2", "127.0.0.4")   # the proxy fleet's egress as the console knows it
MSG_IP = "The API key provided does not allow requests from your IP address."

ROUTES = """
[route charges]
path = /v1/charges*
resource = charge

[route customers]
path = /v1/customers*
resource = customer

[route refunds]
path = /v1/refunds*
resource = refund
"""


class Console:
    """A running `iplock console` on the store; stop() ends it by its handle."""

    def __init__(self, tmp, db, gate_ini, extra="", env=None):
        self.port = free_port()
        self.config = Path(tmp) / f"console-{self.port}.ini"
        self.config.write_text(f"[console]\nlisten = 127.0.0.1:{self.port}\ndb = {db}\n"
                               f"routes = {gate_ini}\negress = {' '.join(EGRESS)}\n{extra}\n")
        self.stderr = open(Path(tmp) / f"console-{self.port}.err", "w+")
        self.proc = subprocess.Popen([IPLOCK, "console", "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     env=dict(os.environ, **(env or {})))
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop(check=False)
            raise AssertionError("console did not start: " + self.errors())
        self.url = f"http://127.0.0.1:{self.port}/"

    def add_users(self, *users):
        """`iplock console users add` for each (name, password, role), all at once."""
        procs = [(subprocess.Popen([IPLOCK, "console", "users", "add", name, "--role", role,
                                    "--password-stdin", "-c", str(self.config)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True), password)
                 for name, password, role in users]
        for p, password in procs:
            _, err = p.communicate(password, timeout=60)
            assert p.returncode == 0, err

    def errors(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self, check=True):
        stop_process(self.proc)
        text = self.errors()
        self.stderr.close()
        if check and self.proc.returncode != 0:
            raise AssertionError(f"console exited {self.proc.returncode}: {text[-3000:]}")


class ApiSession:
    """The same JSON API from Python (assertions and set-up): a logged-in session."""

    def __init__(self, base, user, password):
        self.base = base.rstrip("/") + "/api/v1"
        self.s = requests.Session()
        r = self.s.post(self.base + "/login", json={"username": user, "password": password},
                        timeout=10)
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def call(self, method, path, body=None, expect=None):
        h = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        r = self.s.request(method, self.base + path, json=body, headers=h, timeout=10)
        if expect is not None:
            assert r.status_code == expect, r.text
        return r.json() if r.content else None


def start_browser():
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--disable-extensions", "--no-first-run",
              "--disable-background-networking", "--lang=en-US"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=DRIVER), options=o)
    d.implicitly_wait(0)
    return d


@pytest.fixture(scope="module")
def chromium():
    """The module's one browser, started in a thread so it comes up while the servers do."""
    pool = ThreadPoolExecutor(1)
    fut = pool.submit(start_browser)
    try:
        yield fut
    finally:
        try:
            fut.result(timeout=60).quit()
        except Exception:       # it never started: the test that needed it says why
            pass
        pool.shutdown()


@pytest.fixture(scope="module")
def env(tmp_path_factory, chromium):
    tmp = tmp_path_factory.mktemp("console")
    art = Path(os.environ.get("IPLOCK_ARTEFACTS") or tmp / "shots")
    art.mkdir(parents=True, exist_ok=True)
    db = tmp / "keys.db"
    e = {"tmp": tmp, "db": db, "art": art, "upstream": Upstream()}
    try:
        e["gate"] = Gate(tmp, db, e["upstream"].port, routes=ROUTES,
                         extra="account = acct_console\nworkers = 1\nusage = on\nusage_flush = 0.05")
        e["console"] = Console(tmp, db, e["gate"].config)
        e["console"].add_users((ADMIN, ADMIN_PW, "admin"), (VIEWER, VIEWER_PW, "viewer"))
        e["api"] = ApiSession(e["console"].url, ADMIN, ADMIN_PW)
        yield e
    finally:
        if "console" in e:
            e["console"].stop()
        if "gate" in e:
            e["gate"].stop()
        e["upstream"].close()


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium.result(timeout=60)


@pytest.fixture(autouse=True)
def shot_on_failure(request, browser):
    """A failed test leaves a screenshot of the page it failed on beside the others."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        env = request.getfixturevalue("env")
        browser.save_screenshot(str(env["art"] / f"FAILED-{request.node.name}.png"))


def wait(d, cond, timeout=10):
    return WebDriverWait(d, timeout, poll_frequency=0.05).until(cond)


def css(d, sel, timeout=10):
    return wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, sel)), timeout)


def click(d, sel, timeout=10):
    el = wait(d, EC.element_to_be_clickable((By.CSS_SELECTOR, sel)), timeout)
    el.click()
    return el


def xpath_click(d, xp, timeout=10):
    el = wait(d, EC.element_to_be_clickable((By.XPATH, xp)), timeout)
    el.click()
    return el


def shot(env, d, name, full=False):
    if not full:
        d.save_screenshot(str(env["art"] / f"{name}.png"))
        return
    # the whole page, up to 2000 px tall
    size = d.get_window_size()
    d.set_window_size(size["width"], min(2000, d.execute_script(
        "return document.documentElement.scrollHeight") + size["height"] - d.execute_script(
        "return window.innerHeight")))
    try:
        d.save_screenshot(str(env["art"] / f"{name}.png"))
    finally:
        d.set_window_size(size["width"], size["height"])


def page_errors(d):
    """CSP violations and uncaught script errors logged since the last call."""
    return [l["message"] for l in d.get_log("browser")
            if any(m in l["message"] for m in ("Content Security Policy", "Refused to", "Uncaught"))]


_loads = iter(range(1, 1 << 30))


def goto(d, env, page):
    """Loads the console at #/page as a new document (a new query string, so even the same
    page is loaded again: a hash change alone would keep the running app)."""
    d.get(f"{env['console'].url}?load={next(_loads)}#/{page}")


def login(d, env, user, password):
    """Signs in through the login page."""
    d.execute_cdp_cmd("Network.clearBrowserCookies", {})
    goto(d, env, "keys")
    css(d, "input[name=username]").send_keys(user)
    d.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password + Keys.ENTER)
    wait(d, EC.text_to_be_present_in_element((By.ID, "whoami"), user))


def sign_in(d, env, user, password, page="keys"):
    """Signs in through the API and hands the browser the session cookie (quicker than the
    login page, which test_whole_flow uses)."""
    s = ApiSession(env["console"].url, user, password)
    d.execute_cdp_cmd("Network.clearBrowserCookies", {})
    d.execute_cdp_cmd("Network.setCookie", {
        "name": "iplock_session", "value": s.s.cookies["iplock_session"], "domain": "127.0.0.1",
        "path": "/", "httpOnly": True, "sameSite": "Strict"})
    goto(d, env, page)
    wait(d, EC.text_to_be_present_in_element((By.ID, "whoami"), user))
    return s


def key_row(d, key_id, timeout=10):
    return css(d, f"tr[data-key-id='{key_id}']", timeout)


def open_menu_item(d, key_id, label):
    key_row(d, key_id)
    click(d, f"button[data-menu='{key_id}']")
    xpath_click(d, f"//div[@role='menu']/button[contains(., '{label}')]")


def stripe_call(gate, key, source):
    """Charge.create through the gate with the TCP source bound to `source`."""
    stripe = pytest.importorskip("stripe")

    class Src(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *a, **kw):
            kw["source_address"] = (source, 0)
            return super().init_poolmanager(*a, **kw)

    s = requests.Session()
    s.mount("http://", Src())
    saved = stripe.api_base, stripe.max_network_retries
    stripe.api_base = gate.url
    stripe.max_network_retries = 0
    stripe.default_http_client = stripe.http_client.RequestsClient(session=s)
    stripe.api_key = key
    try:
        return stripe.Charge.create(amount=1999, currency="usd")
    finally:
        stripe.default_http_client = None
        stripe.api_key = None
        stripe.api_base, stripe.max_network_retries = saved


def gate_get(env, key, source, path="/v1/charges"):
    return curl(env["gate"].url + path, "-H", f"Authorization: Bearer {key}", source=source)


def until(fn, timeout=5.0, what="condition"):
    """Polls fn() until it returns a true value (bounded)."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def usage_clients(env, key_id):
    d = env["api"].call("GET", f"/keys/{key_id}")
    return {c["client"]: c for c in (d.get("usage") or {}).get("clients") or []}


def requests_from(env, key_id, client):
    c = usage_clients(env, key_id).get(client) or {}
    return c.get("allowed", 0) + c.get("denied", 0)


def make_traffic(env, key, sources, n=1):
    """Requests through the gate from each source, then one more after the flush interval so
    the gate hands its usage batch to the store."""
    for src in sources:
        for _ in range(n):
            gate_get(env, key, src)
    time.sleep(0.1)
    gate_get(env, key, sources[0])


def create_in_ui(d, env, kind, name, perms=()):
    click(d, f"button[data-create='{kind}']")
    css(d, "#key-name").send_keys(name)
    for resource, level in perms:
        d.find_element(By.CSS_SELECTOR, f"input[aria-label='{resource}: {level}']").click()
    xpath_click(d, "//dialog//button[@type='submit'][contains(., 'Create key')]")
    secret = css(d, "#new-secret").get_attribute("value")
    return secret


def test_whole_flow(env, browser):
    d = browser
    login(d, env, ADMIN, ADMIN_PW)
    # create a restricted key with charges Write
    click(d, "button[data-create='restricted']")
    css(d, "#key-name").send_keys("payments worker")
    css(d, "#key-note").send_keys("checkout service, eu-west")
    d.find_element(By.CSS_SELECTOR, "input[aria-label='charge: write']").click()
    shot(env, d, "create-restricted")
    xpath_click(d, "//dialog//button[@type='submit'][contains(., 'Create key')]")
    secret = css(d, "#new-secret").get_attribute("value")
    assert secret.startswith("rk_live_") and len(secret) > 40
    click(d, "#done")
    keys = env["api"].call("GET", "/keys?type=restricted&mode=live")["data"]
    k = next(x for x in keys if x["name"] == "payments worker")
    assert k["permissions"] == {"charge": "write"} and k["allowlist"] == []
    assert secret not in d.page_source          # shown once: gone with the dialog

    # real traffic before the restriction: from an address that will be allowed and one that
    # will not; the gate's usage telemetry reaches the store
    make_traffic(env, secret, [ALLOWED[0], OTHER], n=2)
    until(lambda: requests_from(env, k["id"], OTHER) >= 2, what="usage telemetry of " + OTHER)
    d.refresh()
    assert "from 127.0.0." in key_row(d, k["id"]).text     # last used, and from where

    # ⋯ → Manage IP restrictions, with the keyboard: Enter opens the menu on its first item,
    # arrows move, Escape closes it and gives the focus back to ⋯
    menu_btn = css(d, f"button[data-menu='{k['id']}']")
    menu_btn.send_keys(Keys.ENTER)
    css(d, "div[role=menu]")
    assert d.switch_to.active_element.text == "Manage IP restrictions"
    d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert d.switch_to.active_element.text == "Roll key…"
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert not d.find_elements(By.CSS_SELECTOR, "div[role=menu]")
    assert d.switch_to.active_element == menu_btn
    menu_btn.send_keys(Keys.ENTER)
    css(d, "div[role=menu]")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    # the switch, then two rows with + Add
    sw = css(d, "dialog input[role=switch]")
    assert not sw.is_selected()
    sw.send_keys(Keys.SPACE)                    # keyboard, like a user tabbing through
    rows = d.find_elements(By.CSS_SELECTOR, ".ip-row")
    assert len(rows) == 1
    ip, cidr = rows[0].find_elements(By.TAG_NAME, "input")[:2]
    ip.send_keys(ALLOWED[0])
    cidr.send_keys("32")
    click(d, "#ip-add")
    rows = d.find_elements(By.CSS_SELECTOR, ".ip-row")
    assert len(rows) == 2
    ip2, cidr2 = rows[1].find_elements(By.TAG_NAME, "input")[:2]
    assert d.switch_to.active_element == ip2     # + Add moves focus to the new row
    # validated as typed by the store's parser: host bits set says what to write instead
    ip2.send_keys("127.0.0.3")
    cidr2.send_keys("24")
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".ip-row:nth-child(2) .field-error"),
                                             "127.0.0.0/24"))
    assert ip2.get_attribute("aria-invalid") == "true"
    cidr2.send_keys(Keys.BACKSPACE, Keys.BACKSPACE, "32")
    wait(d, lambda _: ip2.get_attribute("aria-invalid") is None)
    # Save: the check before saving names the client that used the key and would be refused
    click(d, "#ip-save")
    warning = css(d, "#ip-warning")
    refused = d.find_element(By.ID, "refused-clients").text
    assert OTHER in refused and ALLOWED[0] not in refused
    cells = {tr.find_element(By.TAG_NAME, "td").text: [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in d.find_elements(By.CSS_SELECTOR, "#refused-clients tbody tr")}
    assert cells[OTHER][1] == "2"                # its request count, and when it was seen
    assert cells[OTHER][2]
    egress = d.find_element(By.ID, "missing-egress").text
    assert EGRESS[1] in egress and EGRESS[0] not in egress
    assert "Suggested" in warning.text
    shot(env, d, "restrict-check-before-saving")
    save = d.find_element(By.ID, "ip-save")
    assert not save.is_enabled()                # saving over a warning needs the confirmation
    assert env["api"].call("GET", f"/keys/{k['id']}")["allowlist"] == []   # nothing saved yet
    click(d, "#ip-confirm")
    click(d, "#ip-save")
    wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, "dialog")))
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"tr[data-key-id='{k['id']}']"),
                                             "2 addresses"))
    shot(env, d, "keys")
    saved = env["api"].call("GET", f"/keys/{k['id']}")
    assert sorted(saved["allowlist"]) == sorted(ALLOWED)
    assert saved["allowlist_mode"] == "enforce"
    audit = env["api"].call("GET", f"/audit?key={k['id']}")["data"]
    assert any("confirm" in json.dumps(r).lower() for r in audit), audit

    # the restriction is enforced at the gate: Stripe's SDK from an allowed address succeeds,
    # from another address it raises AuthenticationError
    stripe = pytest.importorskip("stripe")
    _, charge = until(lambda: _try_charge(env, secret, ALLOWED[1]), what="charge from allowed address")
    assert charge["object"] == "list"          # the upstream's answer, through the gate
    seen = env["upstream"].last()
    assert (seen["method"], seen["path"]) == ("POST", "/v1/charges")
    assert seen["headers"]["x-iplock-key-id"] == k["id"]
    assert seen["headers"]["x-iplock-client"] == ALLOWED[1]
    with pytest.raises(stripe.error.AuthenticationError) as ei:
        stripe_call(env["gate"], secret, OTHER)
    assert ei.value.http_status == 401 and MSG_IP in str(ei.value.user_message)
    assert page_errors(d) == []


def _try_charge(env, secret, source):
    stripe = pytest.importorskip("stripe")
    try:
        return ("ok", stripe_call(env["gate"], secret, source))
    except stripe.error.AuthenticationError:
        return None


def test_roll_with_24h_expiry(env, browser):
    d = browser
    made = env["api"].call("POST", "/keys", {"type": "secret", "name": "roll me"}, expect=201)
    old = made["secret"]
    goto(d, env, "keys")
    open_menu_item(d, made["key"]["id"], "Roll key")
    sel = css(d, "#roll-expiry")
    Select(sel).select_by_visible_text("In 24 hours")
    xpath_click(d, "//dialog//button[@type='submit'][contains(., 'Roll')]")
    new = css(d, "#new-secret").get_attribute("value")
    assert new.startswith("sk_live_") and new != old
    click(d, "#done")
    k_old = env["api"].call("GET", f"/keys/{made['key']['id']}")
    assert abs(k_old["expires_at"] - (time.time() + 86400)) < 120
    # both work during the grace period
    assert gate_get(env, old, "127.0.0.2")[0] == 200
    assert gate_get(env, new, "127.0.0.2")[0] == 200


def test_revoke(env, browser):
    d = browser
    made = env["api"].call("POST", "/keys", {"type": "secret", "name": "revoke me"}, expect=201)
    assert gate_get(env, made["secret"], "127.0.0.2")[0] == 200
    goto(d, env, "keys")
    open_menu_item(d, made["key"]["id"], "Revoke")
    css(d, "#revoke-reason").send_keys("pasted in a ticket")
    xpath_click(d, "//dialog//button[@type='submit'][contains(., 'Revoke key')]")
    wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, f"tr[data-key-id='{made['key']['id']}']")))
    assert env["api"].call("GET", f"/keys/{made['key']['id']}")["status"] == "revoked"
    st = until(lambda: gate_get(env, made["secret"], "127.0.0.2")[0] == 401, what="revoked at the gate")
    assert st


def test_edit_permissions(env, browser):
    d = browser
    made = env["api"].call("POST", "/keys", {"type": "restricted", "name": "perm edit",
                                             "permissions": {"charge": "read"}}, expect=201)
    kid, secret = made["key"]["id"], made["secret"]
    assert gate_get(env, secret, "127.0.0.2")[0] == 200
    goto(d, env, "keys")
    open_menu_item(d, kid, "Edit permissions")
    css(d, "dialog .perm-table")
    d.find_element(By.CSS_SELECTOR, "dialog input[aria-label='charge: none']").click()
    d.find_element(By.CSS_SELECTOR, "dialog input[aria-label='customer: write']").click()
    xpath_click(d, "//dialog//button[@type='submit']")
    wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, "dialog")))
    assert env["api"].call("GET", f"/keys/{kid}")["permissions"] == {"customer": "write"}
    until(lambda: gate_get(env, secret, "127.0.0.2")[0] == 403, what="charge refused")
    assert gate_get(env, secret, "127.0.0.2", "/v1/customers")[0] == 200


def test_report_only_then_enforce(env, browser):
    d = browser
    made = env["api"].call("POST", "/keys", {"type": "secret", "name": "report first"}, expect=201)
    kid, secret = made["key"]["id"], made["secret"]
    goto(d, env, "keys")
    open_menu_item(d, kid, "Manage IP restrictions")
    css(d, "dialog input[role=switch]").click()
    row = d.find_element(By.CSS_SELECTOR, ".ip-row")
    row.find_elements(By.TAG_NAME, "input")[0].send_keys("127.0.0.2")
    d.find_element(By.CSS_SELECTOR, "dialog input[value=report]").click()
    click(d, "#ip-save")
    # the fleet's other egress address is missing: confirm over that warning
    click(d, "#ip-confirm")
    click(d, "#ip-save")
    wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, "dialog")))
    k = env["api"].call("GET", f"/keys/{kid}")
    assert k["allowlist"] == ["127.0.0.2"] and k["allowlist_mode"] == "report"
    # report only: allowed from elsewhere, flagged in a response header and counted
    st, _, hdrs = until(lambda: (lambda r: r if "would-refuse" in r[2].lower() else None)(
        gate_get(env, secret, OTHER)), what="would-refuse header")
    assert st == 200
    make_traffic(env, secret, [OTHER])
    until(lambda: (env["api"].call("GET", f"/keys/{kid}").get("usage") or {}).get("would_refuse"),
          what="would_refuse count")
    d.refresh()
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"tr[data-key-id='{kid}']"),
                                             "would be refused"))
    shot(env, d, "keys-report-only", full=True)
    row = key_row(d, kid)
    row.find_element(By.XPATH, ".//button[contains(., 'Enforce now')]").click()
    click(d, "#enforce-confirm")
    wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, "dialog")))
    assert env["api"].call("GET", f"/keys/{kid}")["allowlist_mode"] == "enforce"
    until(lambda: gate_get(env, secret, OTHER)[0] == 401, what="enforced at the gate")
    assert gate_get(env, secret, "127.0.0.2")[0] == 200


def test_audit_page_diff_and_filters(env, browser):
    d = browser
    goto(d, env, "audit")
    css(d, "#audit-list article")
    shot(env, d, "audit")
    text = d.find_element(By.ID, "audit-list").text
    assert "Changed IP restrictions" in text and "+ allowlist: 127.0.0.2" in text
    assert "permissions.customer: none → write" in text and "Rolled key" in text
    d.find_element(By.ID, "audit-actor").send_keys("nobody-else" + Keys.ENTER)
    wait(d, EC.text_to_be_present_in_element((By.ID, "audit-list"), "No changes match"))


def test_viewer_cannot_change_anything(env, browser):
    d = browser
    made = env["api"].call("POST", "/keys", {"type": "secret", "name": "viewer sees"}, expect=201)
    kid = made["key"]["id"]
    sign_in(d, env, VIEWER, VIEWER_PW)
    assert css(d, "#role").text == "viewer"
    key_row(d, kid)
    assert not d.find_elements(By.CSS_SELECTOR, "button[data-create]")
    assert "Accounts" not in d.find_element(By.CSS_SELECTOR, "nav").text
    click(d, f"button[data-menu='{kid}']")
    items = [b.text for b in d.find_elements(By.CSS_SELECTOR, "div[role=menu] button")]
    assert items == ["View IP restrictions", "View audit log"]
    d.find_element(By.CSS_SELECTOR, "div[role=menu] button").click()
    css(d, "dialog input[role=switch]")
    assert not d.find_element(By.CSS_SELECTOR, "dialog input[role=switch]").is_enabled()
    assert not d.find_elements(By.ID, "ip-save")
    d.find_element(By.ID, "ip-cancel").click()
    # the API refuses the viewer even when the page is bypassed (with a valid CSRF token)
    status = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/v1/me').then(r => r.json()).then(me =>
          fetch('/api/v1/keys/' + arguments[0] + '/revoke', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
                body: '{}'})).then(r => r.json().then(b => done([r.status, b.error.code])));
    """, kid)
    assert status == [403, "forbidden"]
    assert env["api"].call("GET", f"/keys/{kid}")["status"] == "active"


def test_csrf_and_session_expiry(env, browser):
    d = browser
    sign_in(d, env, ADMIN, ADMIN_PW)
    before = len(env["api"].call("GET", "/keys?limit=100")["data"])
    # a change without the CSRF token, and with another session's token, changes nothing
    res = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const post = (h) => fetch('/api/v1/keys', {method: 'POST',
            headers: Object.assign({'Content-Type': 'application/json'}, h),
            body: JSON.stringify({type: 'secret', name: 'csrf'})})
          .then(r => r.json().then(b => [r.status, b.error ? b.error.code : 'created']));
        Promise.all([post({}), post({'X-CSRF-Token': arguments[0]})]).then(done);
    """, env["api"].csrf)
    assert res == [[403, "csrf_missing"], [403, "csrf_invalid"]]
    assert len(env["api"].call("GET", "/keys?limit=100")["data"]) == before
    # session expiry: a second console on the same store whose wall clock the test moves
    # (libfaketime, monotonic time untouched) past the idle timeout; the UI goes back to
    # sign-in and says why
    if not FAKETIME:
        pytest.skip("faketime is not installed (make deps-test)")
    clock = env["tmp"] / "console-clock"
    clock.write_text("+0\n")
    short = Console(env["tmp"], env["db"], env["gate"].config, extra="session_idle = 60", env={
        "LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": str(clock), "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    try:
        sign_in(d, {"console": short}, ADMIN, ADMIN_PW, "audit")
        css(d, "#audit-list")
        clock.write_text("+61s\n")
        d.find_element(By.XPATH, "//nav//a[contains(., 'API keys')]").click()
        note = css(d, ".form-note")
        assert "expired" in note.text.lower()
        shot(env, d, "login-expired")
        assert "/api/v1" not in d.current_url and d.current_url.endswith("#/keys")
        # signing in again, in place, lands on the page that was asked for
        css(d, "input[name=username]").send_keys(ADMIN)
        d.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(ADMIN_PW + Keys.ENTER)
        css(d, "tr[data-key-id]")
    finally:
        short.stop()


def test_accounts_and_api_token(env, browser):
    d = browser
    sign_in(d, env, ADMIN, ADMIN_PW, "accounts")
    users = css(d, "section[aria-label=Users]").text
    assert ADMIN in users and VIEWER in users and "viewer" in users
    xpath_click(d, "//button[contains(., 'Create token')]")
    css(d, "#token-name").send_keys("deploy-bot")
    Select(d.find_element(By.ID, "token-scope")).select_by_value("write")
    xpath_click(d, "//dialog//button[@type='submit']")
    token = css(d, "#new-secret").get_attribute("value")
    assert token.startswith("ilc_")
    click(d, "#done")
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "section[aria-label='API tokens']"),
                                             "deploy-bot"))
    assert token not in d.page_source
    # the token shown once works on the same API
    r = requests.get(env["console"].url + "api/v1/keys?limit=1", timeout=10,
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


def test_test_mode_search_and_pages(env, browser):
    d = browser
    made = [env["api"].call("POST", "/keys", {"type": "secret", "mode": "test", "name": f"page-{i}"},
                            expect=201)["key"] for i in range(21)]
    sign_in(d, env, ADMIN, ADMIN_PW)
    xpath_click(d, "//div[@role='group']/button[contains(., 'Test mode')]")
    css(d, ".test-banner")
    std = css(d, "section[aria-label='Standard keys']")
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "section[aria-label='Standard keys'] .card-foot"), "1–20"))
    ids = lambda: [r.get_attribute("data-key-id") for r in  # noqa: E731
                   d.find_elements(By.CSS_SELECTOR, "section[aria-label='Standard keys'] tr[data-key-id]")]
    page1 = ids()
    assert len(page1) == 20
    assert "sk_test_" in std.text and "sk_live_" not in std.text
    # page 2 holds the one key left: together they are the 21 test keys
    std.find_element(By.XPATH, ".//button[text()='Next']").click()
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "section[aria-label='Standard keys'] .card-foot"), "21–21"))
    page2 = ids()
    assert sorted(page1 + page2) == sorted(k["id"] for k in made)
    std.find_element(By.XPATH, ".//button[text()='Previous']").click()
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "section[aria-label='Standard keys'] .card-foot"), "1–20"))
    # search by the last 4 of a key
    d.find_element(By.CSS_SELECTOR, "input[type=search]").send_keys(made[7]["masked"][-4:])
    wait(d, lambda _: len(d.find_elements(By.CSS_SELECTOR, "section[aria-label='Standard keys'] tr[data-key-id]")) == 1)
    key_row(d, made[7]["id"])


def test_phone_width(env, browser):
    d = browser
    sign_in(d, env, ADMIN, ADMIN_PW)
    # a phone's viewport (a headless window cannot be made narrower than 500 px)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        d.refresh()
        css(d, "tr[data-key-id]")
        # no sideways scrolling of the page at phone width
        assert d.execute_script("return document.documentElement.scrollWidth") <= 400
        shot(env, d, "keys-phone")
        assert page_errors(d) == []          # on every page the tests have shown since
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
