"""The inspector's page in a real headless browser (Chromium via Selenium).

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them); skipped with the reason when they are missing.
"""

import shutil
import threading
from pathlib import Path

import pytest

from twin.run import simulate
from inspector.live import LiveTwin
from inspector.server import RecordedRun, make_server
from agents.llm.scripted import ScriptedClient, by_role

webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def serve(source):
    server = make_server(source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def wait_ready(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !!(window.inspector && window.inspector.ready)"))


def click_actor(driver, actor_id: int) -> None:
    """Click actor ``actor_id`` on the scene where the page draws it, as a user would."""
    canvas = driver.find_element(By.ID, "scene")
    x, y = driver.execute_script(f"return window.inspector.screenPosition({actor_id})")
    size = canvas.size
    ActionChains(driver).move_to_element_with_offset(canvas, x - size["width"] / 2, y - size["height"] / 2).click().perform()


def scene_pixels(driver) -> str:
    return driver.execute_script("return document.getElementById('scene').toDataURL()")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    simulate("intersection", minutes=0.75, out=out, model_client=ScriptedClient(),
             overrides={"faults": [{"kind": "signal_stuck", "at_s": 20}]})
    return out


def test_a_recorded_run_plays_in_the_browser_and_explains_an_actor(browser, recorded):
    server, url = serve(RecordedRun(recorded))
    try:
        wait_ready(browser, url)
        assert browser.find_element(By.ID, "scenario").text.startswith("intersection")
        assert not browser.find_element(By.ID, "live").is_displayed()
        marks = browser.find_elements(By.CSS_SELECTOR, "#marks .mark")
        assert marks and any("signal_stuck" in m.get_attribute("title") for m in marks)
        # the timeline moves the scene: drag the slider as a user would
        before, pixels = browser.find_element(By.ID, "time").text, scene_pixels(browser)
        timeline = browser.find_element(By.ID, "timeline")
        ActionChains(browser).click_and_hold(timeline).move_by_offset(timeline.size["width"] // 3, 0).release().perform()
        assert browser.execute_script("return window.inspector.tickIndex") > 10
        assert browser.find_element(By.ID, "time").text != before and scene_pixels(browser) != pixels
        # a hazard mark jumps to its time
        marks[0].click()
        assert abs(browser.execute_script("return window.inspector.time") - float(marks[0].get_attribute("data-t"))) < 1
        # clicking an LLM driver shows its persona, intent, the exchange behind it and its measures
        tick = browser.execute_script("return window.inspector.ticks[window.inspector.tickIndex]")
        row = next(k for k, h in enumerate(tick["vehicles"]["human"]) if h)
        actor, identity = tick["vehicles"]["id"][row], tick["vehicles"]["human"][row]
        click_actor(browser, actor)
        assert browser.execute_script("return window.inspector.selected") == actor
        assert identity in browser.find_element(By.ID, "panel-title").text
        assert browser.find_element(By.ID, "panel-persona").text.strip() not in ("", "—")
        assert "What do you do now?" in browser.find_element(By.ID, "panel-prompt").get_attribute("textContent")
        assert "{" in browser.find_element(By.ID, "panel-answer").get_attribute("textContent")
        assert "km/h" in browser.find_element(By.ID, "panel-measures").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()


def late(system: str, prompt: str) -> str:
    return "I am late for work." if "Interviewer:" in prompt else by_role(system, prompt)


def test_live_mode_steps_interviews_and_forks_a_second_future(browser, tmp_path):
    twin = LiveTwin("intersection", tmp_path / "live", model_client=ScriptedClient(late),
                    overrides={"humans.memory.embedding": "hash"})
    twin.step(6.0)
    server, url = serve(twin)
    try:
        wait_ready(browser, url)
        ticks = browser.execute_script("return window.inspector.ticks.length")
        browser.find_element(By.ID, "step").click()
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return window.inspector.ticks.length") > ticks)
        # interview the driver of a vehicle in character
        tick = browser.execute_script("return window.inspector.ticks[window.inspector.tickIndex]")
        row = next(k for k, h in enumerate(tick["vehicles"]["human"]) if h)
        click_actor(browser, tick["vehicles"]["id"][row])
        browser.find_element(By.ID, "interview-question").send_keys("Why are you in a hurry?")
        browser.find_element(By.ID, "interview-ask").click()
        WebDriverWait(browser, 30).until(lambda d: "late for work" in d.find_element(By.ID, "interview-answer").text)
        # fork a wet road from the current step: a second scene with its own trajectory
        Select(browser.find_element(By.ID, "fork-kind")).select_by_value("friction")
        friction = browser.find_element(By.ID, "fork-friction")
        friction.clear()
        friction.send_keys("0.3")
        browser.find_element(By.ID, "fork-apply").click()
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "scene-fork").is_displayed())
        assert "friction 0.3" in browser.find_element(By.ID, "fork-caption").text
        browser.find_element(By.ID, "step").click()
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return window.inspector.fork && window.inspector.fork.ticks.length") >= 2)
        assert twin.fork is not None and twin.fork.world.friction == pytest.approx(0.3)
        for _ in range(4):  # the two futures part: vehicles brake more gently on the wet road
            browser.find_element(By.ID, "step").click()
            WebDriverWait(browser, 30).until(lambda d: not d.find_element(By.ID, "step").get_attribute("disabled"))
        main, fork = browser.execute_script("const i = window.inspector; "
                                            "return [i.ticks[i.ticks.length - 1], i.fork.ticks[i.fork.ticks.length - 1]]")
        assert main["t"] == fork["t"] and main["vehicles"] != fork["vehicles"]
    finally:
        server.shutdown()
        twin.close()


def test_a_run_on_a_sumo_network_plays_with_its_junctions_and_signal_heads(browser, tmp_path):
    """A recorded run of SUMO's `cross` (junction outlines and a head per signalised link in
    the trace) loads with no console error and plays."""
    from envs.roads.sumo import shipped_scenarios

    game = shipped_scenarios()
    if game is None:
        pytest.skip("the eclipse-sumo wheel is not installed (pip install -e '.[sumo]')")
    simulate(str(game / "cross.sumocfg"), minutes=0.5, out=tmp_path, humans="off")
    server, url = serve(RecordedRun(tmp_path))
    try:
        wait_ready(browser, url)
        assert browser.find_element(By.ID, "scenario").text.startswith("cross")
        net = browser.execute_script("return window.inspector && window.inspector.header ? "
                                     "window.inspector.header.network : null")
        if net is not None:
            assert net["junctions"] and net["signal_heads"]
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()
