"""The inspector's page in a real headless browser (Chromium via Selenium).

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them); skipped with the reason when they are missing.
"""

import math
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
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
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
        # a built-in layout's junction boxes are offered by the zoom-to-junction control
        assert browser.execute_script("return window.inspector.junctions.length") >= 1
        assert browser.find_element(By.ID, "junction").is_displayed()
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()


def test_a_recorded_run_has_charts_that_move_the_timeline_and_follow_a_vehicle(browser, recorded):
    """The charts panel: run-wide series (one value per tick) drawn under the timeline, a click on
    them jumps there, and a selected vehicle gets its own speed / gap / TTC series."""
    server, url = serve(RecordedRun(recorded))
    try:
        wait_ready(browser, url)
        ticks = browser.execute_script("return window.inspector.ticks")
        charts = browser.execute_script("return window.inspector.charts")
        for key in ("t", "speed", "count", "moving", "density", "hazards"):
            assert len(charts[key]) == len(ticks), key
        assert charts["laneKm"] > 0
        busy = [k for k, tick in enumerate(ticks) if tick["vehicles"]["v"]]
        for k in (busy[0], busy[len(busy) // 2], busy[-1]):
            v = ticks[k]["vehicles"]["v"]
            assert charts["speed"][k] == pytest.approx(sum(v) / len(v))
            assert charts["count"][k] == len(v)
            assert charts["moving"][k] == sum(1 for x in v if x > 0.5)
            assert charts["density"][k] == pytest.approx(len(v) / charts["laneKm"])
        hazards = sum(len(t.get("hazards") or []) for t in ticks)
        assert max(charts["hazards"]) <= hazards and (max(charts["hazards"]) > 0) == (hazards > 0)
        # drawn: the canvas is not blank
        canvas = browser.find_element(By.ID, "charts")
        assert canvas.is_displayed() and canvas.size["height"] >= 200
        blank = browser.execute_script("const c = document.createElement('canvas'); const s = document.getElementById('charts'); "
                                       "c.width = s.width; c.height = s.height; return c.toDataURL()")
        assert browser.execute_script("return document.getElementById('charts').toDataURL()") != blank
        # clicking at 3/4 of the chart's width jumps the timeline to about 3/4 of the run
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
        ActionChains(browser).move_to_element_with_offset(canvas, canvas.size["width"] // 4, 0).click().perform()
        duration = ticks[-1]["t"]
        assert browser.execute_script("return window.inspector.time") == pytest.approx(0.75 * duration, abs=1.0)
        assert browser.find_element(By.ID, "timeline").get_attribute("value") == str(
            browser.execute_script("return window.inspector.tickIndex"))
        # selecting a vehicle gives its series over the ticks where it appears
        browser.execute_script("window.scrollTo(0, 0)")
        k = browser.execute_script("return window.inspector.tickIndex")
        vid = ticks[k]["vehicles"]["id"][0]
        click_actor(browser, vid)
        assert browser.execute_script("return window.inspector.selected") == vid
        actor = browser.execute_script("return window.inspector.charts.actor")
        where = [(tick["t"], tick["vehicles"]["v"][tick["vehicles"]["id"].index(vid)])
                 for tick in ticks if vid in tick["vehicles"]["id"]]
        assert actor["id"] == vid and actor["t"] == [t for t, _ in where]
        assert actor["speed"] == pytest.approx([v for _, v in where])
        assert len(actor["gap"]) == len(actor["ttc"]) == len(where)
        assert browser.find_element(By.ID, "actor-charts").is_displayed()
        assert browser.execute_script("return window.inspector.charts.actorShown")
        browser.execute_script("window.inspector.select(null)")
        assert not browser.execute_script("return window.inspector.charts.actorShown")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def fault_collision(tmp_path_factory) -> Path:
    """The supervisor suite's rear_end_brake_failure case, recorded: the brake failure causes a collision."""
    out = tmp_path_factory.mktemp("brake-failure")
    simulate("intersection", minutes=0.5, out=out, model_client=ScriptedClient(), humans="off",
             overrides={"faults": [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}]})
    return out


def test_why_on_a_collision_shows_its_causes_in_a_table_and_on_the_timeline(browser, fault_collision):
    server, url = serve(RecordedRun(fault_collision))
    try:
        wait_ready(browser, url)
        collision = browser.execute_script("return window.inspector.collisions[0]")
        assert not browser.find_elements(By.CSS_SELECTOR, "#cause-marks .fork-mark")
        # the collision's mark on the timeline jumps there and points at its entry
        mark = browser.find_element(By.CSS_SELECTOR, "#marks .mark.collision[data-incident='0']")
        mark.click()
        assert abs(browser.execute_script("return window.inspector.time") - collision["time_s"]) < 1
        entry = browser.find_element(By.ID, "incident-0")
        assert "focused" in entry.get_attribute("class")
        assert " and ".join(map(str, collision["actors"])) in entry.text
        why = entry.find_element(By.CSS_SELECTOR, "button.why")
        why.click()
        assert browser.execute_script("return window.inspector.explaining") == 0  # busy while it forks
        assert "explaining" in browser.find_element(By.CSS_SELECTOR, "#incident-0 button.why").text
        WebDriverWait(browser, 120).until(lambda d: d.execute_script("return window.inspector.causes.length") == 1)
        rows = browser.find_elements(By.CSS_SELECTOR, "#incident-0 table.causes-table tbody tr")
        table = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in rows}
        fault = next(r for cause, r in table.items() if cause.startswith("fault:brake_failure"))
        cells = fault.find_elements(By.TAG_NAME, "td")
        assert cells[2].text == "but-for" and "cls-but_for" in cells[2].get_attribute("class")
        assert cells[3].text == "1/1" and cells[4].text == "no collision"
        triage = browser.find_element(By.CSS_SELECTOR, "#incident-0 .triage").text  # the supervisor, told the causes
        assert "Without brake_failure" in triage and "does not happen" in triage
        assert any(r.find_elements(By.TAG_NAME, "td")[2].text == "irrelevant" for r in rows)
        # on the timeline: the fork point, and a band from it to the collision for the but-for cause
        incident = browser.execute_script("return window.inspector.causes[0]")
        fork = browser.find_element(By.CSS_SELECTOR, "#cause-marks .fork-mark[data-incident='0']")
        assert float(fork.get_attribute("data-t")) == pytest.approx(incident["fork_at_s"])
        band = browser.find_element(By.CSS_SELECTOR, "#cause-marks .cause-band[data-cause^='fault:brake_failure']")
        timeline = browser.find_element(By.ID, "timeline").rect
        duration = browser.execute_script("const t = window.inspector.ticks; return t[t.length - 1].t")
        px_per_s = timeline["width"] / duration
        assert band.rect["x"] - timeline["x"] == pytest.approx(incident["fork_at_s"] * px_per_s, abs=2)
        assert band.rect["width"] == pytest.approx((incident["time_s"] - incident["fork_at_s"]) * px_per_s, abs=3)
        fork.click()  # jumps to the fork point
        assert abs(browser.execute_script("return window.inspector.time") - incident["fork_at_s"]) < 1
        # reloaded, the page shows the causes cached in causes.json at once
        wait_ready(browser, url)
        assert browser.find_elements(By.CSS_SELECTOR, "#incident-0 table.causes-table tbody tr")
        assert browser.find_elements(By.CSS_SELECTOR, "#cause-marks .cause-band")
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


@pytest.fixture(scope="module")
def sumo_run(tmp_path_factory) -> Path:
    """A recorded run of SUMO's `cross` (junction outlines and a head per signalised link in the trace)."""
    from envs.roads.sumo import shipped_scenarios

    game = shipped_scenarios()
    if game is None:
        pytest.skip("the eclipse-sumo wheel is not installed (pip install -e '.[sumo]')")
    out = tmp_path_factory.mktemp("sumo-run")
    simulate(str(game / "cross.sumocfg"), minutes=0.5, out=out, humans="off")
    return out


def test_a_run_on_a_sumo_network_plays_with_its_junctions_and_signal_heads(browser, sumo_run):
    """A recorded run of SUMO's `cross` loads with no console error and plays."""
    server, url = serve(RecordedRun(sumo_run))
    try:
        wait_ready(browser, url)
        assert browser.find_element(By.ID, "scenario").text.startswith("cross")
        net = browser.execute_script("return window.inspector && window.inspector.header ? "
                                     "window.inspector.header.network : null")
        if net is not None:
            assert net["junctions"] and net["signal_heads"]
            assert len(net["junction_index"]) == len(net["junctions"])  # named, with centres, by the server
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()


def view_centre(driver) -> tuple[float, float]:
    view = driver.execute_script("return window.inspector.view")
    return view["cx"], view["cy"]


def press(driver, key: str) -> None:
    """A key pressed with the focus on the page (not in a field)."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    ActionChains(driver).send_keys(key).perform()


def test_the_view_follows_an_actor_and_zooms_to_a_junction(browser, sumo_run):
    """On SUMO's `cross`: following a vehicle keeps it at the view's centre as the timeline moves,
    at the zoom the user chose, until the view is panned, the actor is deselected or leaves the
    scene; choosing a junction centres the view on it with ~50 m around it; "Fit all" resets."""
    server, url = serve(RecordedRun(sumo_run))
    try:
        wait_ready(browser, url)
        ticks = browser.execute_script("return window.inspector.ticks")
        first = {}  # actor -> first tick it is in
        for k, tick in enumerate(ticks):
            for vid in tick["vehicles"]["id"]:
                first.setdefault(vid, k)

        def where(k: int, vid: int):
            v = ticks[k]["vehicles"]
            return (v["x"][v["id"].index(vid)], v["y"][v["id"].index(vid)]) if vid in v["id"] else None

        # a vehicle that enters after the start and then drives on for a while
        start, vid = next((k, vid) for vid, k in sorted(first.items(), key=lambda kv: kv[1])
                          if 0 < k and k + 10 < len(ticks) and all(where(k + d, vid) for d in range(11))
                          and math.dist(where(k, vid), where(k + 10, vid)) > 20)
        browser.execute_script(f"window.inspector.setTick({start + 2})")
        click_actor(browser, vid)
        assert browser.execute_script("return window.inspector.selected") == vid
        assert not browser.execute_script("return window.inspector.follow")
        follow = browser.find_element(By.ID, "follow")
        follow.click()
        assert browser.execute_script("return window.inspector.follow")
        assert follow.get_attribute("aria-pressed") == "true"
        assert view_centre(browser) == pytest.approx(where(start + 2, vid), abs=0.01)
        # zoom in with the wheel: the followed vehicle stays at the centre
        canvas = browser.find_element(By.ID, "scene")
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas, 100, 50), 0, -600).perform()
        WebDriverWait(browser, 5).until(lambda d: d.execute_script("return window.inspector.view.zoom") > 1.5)
        zoom = browser.execute_script("return window.inspector.view.zoom")
        assert view_centre(browser) == pytest.approx(where(start + 2, vid), abs=0.01)
        # the timeline moves (arrow keys, then scrubbing): the view tracks the vehicle at that zoom
        for _ in range(3):
            press(browser, Keys.ARROW_RIGHT)
        assert browser.execute_script("return window.inspector.tickIndex") == start + 5
        assert view_centre(browser) == pytest.approx(where(start + 5, vid), abs=0.01)
        browser.execute_script(f"window.inspector.setTick({start + 9})")
        assert view_centre(browser) == pytest.approx(where(start + 9, vid), abs=0.01)
        assert browser.execute_script("return window.inspector.view.zoom") == pytest.approx(zoom)
        x, y = browser.execute_script(f"return window.inspector.screenPosition({vid})")
        assert (x, y) == pytest.approx((canvas.size["width"] / 2, canvas.size["height"] / 2), abs=1)
        # playing: between ticks too (interpolated as drawn)
        browser.execute_script(f"window.inspector.setTick({start + 1})")
        browser.find_element(By.ID, "play").click()
        WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.inspector.tickIndex") >= start + 3)
        browser.find_element(By.ID, "play").click()  # pause
        here = browser.execute_script(f"return window.inspector.worldPosition({vid})")
        assert browser.execute_script("return window.inspector.follow")
        assert view_centre(browser) == pytest.approx(here, abs=0.01)
        # panning by hand turns following off
        ActionChains(browser).move_to_element(canvas).click_and_hold().move_by_offset(80, 40).release().perform()
        assert not browser.execute_script("return window.inspector.follow")
        assert follow.get_attribute("aria-pressed") == "false"
        assert view_centre(browser) != pytest.approx(here, abs=1)
        # `f` turns it back on; scrubbing to before the vehicle entered stops it and leaves the view
        press(browser, "f")
        assert browser.execute_script("return window.inspector.follow")
        assert view_centre(browser) == pytest.approx(browser.execute_script(
            f"return window.inspector.worldPosition({vid})"), abs=0.01)
        before = view_centre(browser)
        browser.execute_script(f"window.inspector.setTick({start - 1})")
        assert not browser.execute_script("return window.inspector.follow")
        assert view_centre(browser) == before
        assert "stopped following" in browser.find_element(By.ID, "follow-note").text
        # deselecting turns it off too
        browser.execute_script(f"window.inspector.setTick({start + 4})")
        press(browser, "f")
        assert browser.execute_script("return window.inspector.follow")
        browser.execute_script("window.inspector.select(null)")
        assert not browser.execute_script("return window.inspector.follow")
        assert not follow.is_enabled()

        # zoom to a junction: SUMO's ids, named from the junctions' internal lanes
        junctions = {j["id"]: j for j in browser.execute_script("return window.inspector.junctions")}
        assert {"0", "m1", "m2", "m3", "m4"} <= set(junctions)
        options = browser.find_elements(By.CSS_SELECTOR, "#junction-list option")
        assert len(options) == len(junctions)
        box = browser.find_element(By.ID, "junction")
        box.send_keys("m3", Keys.ENTER)
        m3 = junctions["m3"]
        assert view_centre(browser) == pytest.approx(m3["at"], abs=0.01)
        xmin, ymin, xmax, ymax = browser.execute_script("return window.inspector.visibleBounds()")
        jx0, jy0, jx1, jy1 = m3["box"]
        assert xmin <= jx0 - 50 and ymin <= jy0 - 50 and jx1 + 50 <= xmax and jy1 + 50 <= ymax
        # ... and no more than that along the tighter side (the junction is what fills the view)
        half_w, half_h = max(m3["at"][0] - jx0, jx1 - m3["at"][0]) + 50, max(m3["at"][1] - jy0, jy1 - m3["at"][1]) + 50
        assert min((xmax - xmin) / (2 * half_w), (ymax - ymin) / (2 * half_h)) < 1.1
        # picking one from the list zooms at once
        browser.execute_script("const b = document.getElementById('junction'); b.value = '0'; "
                               "b.dispatchEvent(new InputEvent('input', {inputType: 'insertReplacementText'}))")
        assert view_centre(browser) == pytest.approx(junctions["0"]["at"], abs=0.01)
        # "Fit all" shows the whole network again
        browser.find_element(By.ID, "fit-all").click()
        assert browser.execute_script("return window.inspector.view.zoom") == 1
        bounds = browser.execute_script("return window.inspector.header.network.bounds")
        xmin, ymin, xmax, ymax = browser.execute_script("return window.inspector.visibleBounds()")
        assert xmin <= bounds[0] and ymin <= bounds[1] and bounds[2] <= xmax and bounds[3] <= ymax
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        server.shutdown()
