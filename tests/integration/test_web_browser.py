"""The portal and the console in a real browser (Debian's Chromium, driven by Selenium through
chromium-driver), against the application serving the database a real CAP call writes to.

The calls are the simulator's CAP dialogues against the in-process SCP (the node's own cores
and TC-users, :func:`scp.tools.simulate.transports.connect_in_process`); every frame the SCP
sends is read back by tshark and the strict ASN.1 oracle. The pages are read as a person
reads them, at 375 px (a phone) and at desktop width; the screenshots go to
``build/screenshots/`` (the README's two are copies of ``portal-missed-375.png`` and
``console-subscriber-1280.png``).

Both the node and the web tier read the same wall clock (scp.adapters.clock), so the missed
call is inside the window whatever the day the test runs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import utcnow
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.flows import voicemail as vm
from scp.service.notifications import local_day
from scp.service.provisioning import Actor
from scp.state.db import open_pool
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_in_process
from tests import tshark
from tests.integration.api_rig import wav
from tests.integration.webclient import serve

pytestmark = [pytest.mark.integration, pytest.mark.tshark, pytest.mark.usefixtures("any_day")]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
N = Numbers()
CFG = parse_config("[smpp]\nbackend = 'console'\n")
OPS = Actor("cli", "test")
T = TypeVar("T")

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):  # `make test` installs them
    pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (make chromium)", pytrace=False)


class Chromium:
    """A headless Chromium with a fresh profile; every call runs off the event loop (the
    application under test serves from this loop)."""

    def __init__(self, width: int, height: int) -> None:
        self.profile = tempfile.mkdtemp(prefix="mcn-chromium-")
        opts = Options()
        opts.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            # without these Chromium keeps calling home on a network that has no outside
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={self.profile}",
            f"--window-size={max(width, 500)},{height}",
        ):
            opts.add_argument(flag)
        # a window is at least 500 px wide: a phone's screen is emulated instead
        self.phone = width < 500
        if self.phone:
            metrics = {"width": width, "height": height, "pixelRatio": 1}
            opts.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
        self.d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.d.set_page_load_timeout(30)

    def close(self) -> None:
        self.d.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def fill(self, form: str, values: dict[str, str]) -> None:
        """Type into a form's fields and submit it with its submit button, as a person does."""
        f = self.d.find_element(By.ID, form)
        for name, value in values.items():
            el = f.find_element(By.NAME, name)
            el.clear()
            el.send_keys(value)
        self.click(f.find_element(By.CSS_SELECTOR, "button[type=submit]"))

    def click(self, button: WebElement) -> None:
        """Click a submit button and wait for the next page (the old one goes stale)."""
        old = self.d.find_element(By.TAG_NAME, "html")
        button.click()
        WebDriverWait(self.d, 30).until(lambda _: _gone(old))

    def text(self) -> str:
        return str(self.d.find_element(By.TAG_NAME, "body").text)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        if not self.phone:  # the whole page, not only the window: as tall as the document
            h = self.d.execute_script("return document.documentElement.scrollHeight")
            w = self.d.get_window_size()["width"]
            self.d.set_window_size(w, max(int(h) + 100, 600))
        self.d.execute_script("window.scrollTo(0, 0)")
        # nothing wider than the screen: no sideways scrolling on a phone
        inner = self.d.execute_script("return window.innerWidth")
        scroll = self.d.execute_script("return document.documentElement.scrollWidth")
        assert int(scroll) <= int(inner), f"{name}: {scroll} px wide in a {inner} px window"
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))


def _gone(el: WebElement) -> bool:
    """The element's page was replaced (Chromium answers either error for a gone node)."""
    try:
        el.is_enabled()
    except (StaleElementReferenceException, WebDriverException):
        return True
    return False


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


@pytest.fixture
def pcap(tmp_path: Path) -> Iterator[Path]:
    p = tmp_path / "calls.pcap"
    yield p
    tshark.assert_clean(p)


async def _seed(pool: asyncpg.Pool) -> None:
    today = local_day(utcnow(), CFG)
    for msisdn, lang in ((N.subscriber, "zh"), (N.other, "en")):
        await prov.add_subscriber(
            pool,
            OPS,
            msisdn,
            today=today,
            services=("missed-call", "busy"),
            pin=N.pin,
            language=lang,
        )
    await flows.add_operator(pool, OPS, "alice", "agent", "alice-password")


# the first player on the page: loaded on demand (preload="none"), its length once known
PLAYER_READY = """
const a = document.querySelector('audio');
if (a.readyState === 0 && a.networkState !== 2) { a.preload = 'auto'; a.load(); }
return a.readyState >= 1 && isFinite(a.duration) ? a.duration : false;
"""


async def _voice_message(pool: asyncpg.Pool) -> int:
    """A one-second recording for the subscriber, as the media server deposits it."""
    now = utcnow()
    await prov.enable_service(pool, OPS, N.subscriber, "voicemail", today=local_day(now, CFG))
    done = await vm.deposit(
        pool,
        Actor("api", "media"),
        CFG,
        callee=N.subscriber,
        caller=N.other,
        audio=wav(1.0),
        declared_seconds=1,
        deposited_at=now,
        now=now,
    )
    return done.message.id


@pytest.mark.parametrize("width", [375, 1280])
async def test_subscriber_and_agent_in_chromium(
    clean_pool: asyncpg.Pool, db_dsn: str, pcap: Path, width: int
) -> None:
    pool = clean_pool
    await _seed(pool)
    # the web tier has a pool of its own, as a separate `mcn-scp web` process would
    web_pool = await open_pool(db_dsn, min_size=1, max_size=4)
    w = SctpPcapWriter.open(str(pcap))
    conn, _scp = await connect_in_process(CFG, pool=pool, capture=w)
    b = await run(Chromium, width, 812 if width < 500 else 900)
    try:
        sim = Simulator(conn.peer, CFG, numbers=N, timeout=3.0)
        # a real CAP call: the caller finds the subscriber busy -> the missed call
        res = await run_scenario(sim, "busy", settle=0.3, pool=pool)
        assert res.status == "ok", res.as_dict()
        async with serve(CFG, web_pool, utcnow) as base:
            # -- the subscriber: log in with the IVR's PIN, the missed call is there
            await run(b.d.get, base + "/missed")
            assert "/login" in b.d.current_url  # logged out: the login page first
            await run(b.fill, "login", {"number": "13800138000", "pin": N.pin})
            assert b.d.current_url.endswith("/missed")
            page = await run(b.text)
            assert "13900139000" in page and "遇忙" in page, page
            await run(b.shot, f"portal-missed-{width}")
            # a blacklist entry for that caller
            await run(b.d.get, base + "/blacklist")
            await run(b.fill, "blacklist-add", {"number": "13900139000"})
            assert "13900139000" in await run(b.text)
            await run(b.shot, f"portal-blacklist-{width}")
            # switch a service on
            await run(b.d.get, base + "/services")
            await run(
                lambda: b.click(
                    b.d.find_element(By.CSS_SELECTOR, "button[name=switch][value=delivery-receipt]")
                )
            )
            state = await run(
                lambda: b.d.find_element(
                    By.CSS_SELECTOR, "[data-service=delivery-receipt]"
                ).get_attribute("data-state")
            )
            assert state == "on"
            await run(b.shot, f"portal-services-{width}")
            # a voice message: the page's player loads it (Range requests), then it is heard
            vm_id = await _voice_message(pool)
            await run(b.d.get, base + "/voicemail")
            seconds = await run(
                lambda: WebDriverWait(b.d, 30).until(lambda d: d.execute_script(PLAYER_READY))
            )
            assert abs(float(seconds) - 1.0) < 0.05, seconds
            await run(
                lambda: b.click(
                    b.d.find_element(By.CSS_SELECTOR, f"#vm-{vm_id}-play button[value=heard]")
                )
            )
            status = await run(
                lambda: b.d.find_element(By.ID, f"vm-{vm_id}").get_attribute("data-status")
            )
            assert status == "heard"
            await run(b.shot, f"portal-voicemail-{width}")
            await run(b.d.get, base + "/")
            await run(b.shot, f"portal-home-{width}")

            # the next call from the blacklisted caller: Continue, and nothing recorded
            before = await pool.fetchval("SELECT count(*) FROM missed_call")
            res = await run_scenario(sim, "busy", settle=0.3, pool=pool)
            assert res.received == ["continue"], res.as_dict()
            assert await pool.fetchval("SELECT count(*) FROM missed_call") == before == 1

            # -- three wrong PINs lock the portal, and the IVR's check refuses the right PIN
            await run(b.d.delete_all_cookies)
            for _ in range(3):
                await run(b.d.get, base + "/login")
                await run(b.fill, "login", {"number": N.other, "pin": "000000"})
            await run(b.d.get, base + "/login")
            await run(b.fill, "login", {"number": N.other, "pin": N.pin})
            assert "e=locked" in b.d.current_url
            await run(b.shot, f"portal-locked-{width}")
            ivr = await prov.verify_pin(pool, Actor("ivr", N.other), N.other, N.pin)
            assert ivr.outcome == "locked"

            # -- the agent: log in, find the subscriber, unlock the PIN
            await run(b.d.get, base + "/console/")
            assert "/console/login" in b.d.current_url
            await run(b.fill, "login", {"name": "alice", "password": "alice-password"})
            await run(b.fill, "find", {"msisdn": N.other})
            assert b.d.current_url.endswith(f"/console/subscribers/{N.other}")
            locked = await run(
                lambda: b.d.find_element(By.ID, "pin-state").get_attribute("data-locked")
            )
            assert locked == "yes"
            await run(lambda: b.click(b.d.find_element(By.ID, "unlock-pin")))
            locked = await run(
                lambda: b.d.find_element(By.ID, "pin-state").get_attribute("data-locked")
            )
            assert locked == "no"
            await run(b.shot, f"console-subscriber-{width}")
        assert (await prov.verify_pin(pool, Actor("ivr", N.other), N.other, N.pin)).outcome == "ok"
        # the audit log names the agent (what the supervisor's audit page lists)
        rows = await pool.fetch(
            "SELECT channel, actor FROM audit_log WHERE action = 'unlock-pin' AND entity_key = $1",
            N.other,
        )
        assert [(r["channel"], r["actor"]) for r in rows] == [("operator", "alice")]
    finally:
        await run(b.close)
        await conn.close()
        w.close()
        await web_pool.close()


async def test_supervisor_audit_and_dashboard_in_chromium(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await _seed(pool)
    await flows.add_operator(pool, OPS, "sam", "supervisor", "sam-password")
    await prov.unlock_pin(pool, Actor("operator", "alice"), N.subscriber)
    b = await run(Chromium, 1280, 900)
    try:
        async with serve(CFG, pool, utcnow) as base:
            await run(b.d.get, base + "/console/login")
            await run(b.fill, "login", {"name": "sam", "password": "sam-password"})
            await run(b.d.get, base + f"/console/audit?subscriber={N.subscriber}&agent=alice")
            page = await run(b.text)
            assert "alice" in page and "unlock-pin" in page, page
            await run(b.shot, "console-audit-1280")
            await run(b.d.get, base + "/console/dashboard")
            charts = await run(lambda: b.d.find_elements(By.CSS_SELECTOR, "svg"))
            assert len(charts) >= 4
            await run(b.shot, "console-dashboard-1280")
    finally:
        await run(b.close)
