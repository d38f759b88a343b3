"""SUMO's files in (envs/roads/sumo.py): the real networks and demand shipped in the
eclipse-sumo wheel read into the road model, maps import through netconvert, and bad input
gets an error naming the file, the element and the problem."""

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("sumolib")
from envs.roads import sumo  # noqa: E402
from envs.roads.model import INTERNAL  # noqa: E402

GAME = sumo.shipped_scenarios()
needs_sumo = pytest.mark.skipif(GAME is None, reason="the eclipse-sumo wheel is not installed (pip install -e '.[sumo]')")

TINY_NET = """<?xml version="1.0" encoding="UTF-8"?>
<net version="1.20" junctionCornerDetail="5" limitTurnSpeed="5.50">
    <location netOffset="0.00,0.00" convBoundary="0.00,0.00,200.00,0.00" origBoundary="0.00,0.00,200.00,0.00" projParameter="!"/>
    <edge id=":B_0" function="internal">
        <lane id=":B_0_0" index="0" speed="13.89" length="0.10" shape="100.00,-1.60 100.00,-1.60"/>
    </edge>
    <edge id="AB" from="A" to="B" priority="-1">
        <lane id="AB_0" index="0" disallow="tram rail" speed="13.89" length="100.00" shape="0.00,-1.60 100.00,-1.60"/>
    </edge>
    <edge id="BC" from="B" to="C" priority="-1">
        <lane id="BC_0" index="0" speed="13.89" length="100.00" shape="100.00,-1.60 200.00,-1.60"/>
    </edge>
    <edge id="CB" from="C" to="B" priority="-1">
        <lane id="CB_0" index="0" speed="13.89" length="100.00" shape="200.00,1.60 100.00,1.60"/>
    </edge>
    <junction id="A" type="dead_end" x="0.00" y="0.00" incLanes="" intLanes="" shape="0.00,0.00 0.00,-3.20"/>
    <junction id="B" type="priority" x="100.00" y="0.00" incLanes="AB_0 CB_0" intLanes=":B_0_0" shape="100.00,3.20 100.00,-3.20">
        <request index="0" response="0" foes="0" cont="0"/>
    </junction>
    <junction id="C" type="dead_end" x="200.00" y="0.00" incLanes="BC_0" intLanes="" shape="200.00,-3.20 200.00,0.00"/>
    <connection from="AB" to="BC" fromLane="0" toLane="0" via=":B_0_0" dir="s" state="M"/>
    <connection from=":B_0" to="BC" fromLane="0" toLane="0" dir="s" state="M"/>
</net>
"""

ROUTES = """<routes>
    <vType id="car" accel="2.0" decel="4.0" length="4.5" maxSpeed="30" tau="1.2"/>
    <route id="r" edges="AB BC"/>
    <vehicle id="v0" type="car" route="r" depart="0"/>
    <flow id="f" type="car" route="r" begin="0" end="100" period="10"/>
    <trip id="t" type="car" from="AB" to="BC" depart="5"/>
    {extra}
</routes>
"""


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.net.xml"
    path.write_text(TINY_NET)
    return path


def write_routes(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tiny.rou.xml"
    path.write_text(ROUTES.format(extra=extra))
    return path


# ---- the shipped networks -------------------------------------------------------------------------
@needs_sumo
@pytest.mark.parametrize("config, junction_types, min_share", [
    ("ramp.sumocfg", {"priority", "traffic_light"}, 0.0),
    ("cross.sumocfg", {"priority", "traffic_light"}, 0.2),
    ("A10KW.sumocfg", {"priority", "right_before_left", "traffic_light"}, 0.6),
    ("grid6.sumocfg", {"priority", "traffic_light"}, 0.3),
    ("bs3d.sumocfg", {"priority", "right_before_left", "traffic_light"}, 0.7),
])
def test_shipped_configurations_load_with_network_and_demand(config, junction_types, min_share):
    network, demand, cfg = sumo.load(GAME / config)
    figures = network.summary()
    assert junction_types <= set(figures["junctions"])
    assert figures["share_with_several_successors"] >= min_share  # what one `Lane.next` cannot express
    assert figures["signal_programs"] >= 1
    assert demand.departures and demand.vehicles(cfg.end_s) > 50
    assert cfg.step_length_s > 0 and any("GUI only" in item for item in cfg.ignored)
    for link in network.links:  # every movement crosses its junction on an internal lane to a next edge
        assert network.edges[network.lanes[link.via].edge].function == INTERNAL
        assert network.lanes[link.to_lane].edge != network.lanes[link.from_lane].edge
    for d in demand.departures:  # every route was checked against the network
        vclass = demand.vtypes[d.vtype].vclass if d.vtype in demand.vtypes else "passenger"
        assert network.route_problem(d.edges, vclass) is None


@needs_sumo
def test_junction_requests_say_who_yields_to_whom():
    network, _, _ = sumo.load(GAME / "A10KW.sumocfg")
    yielding = 0
    for junction in network.junctions.values():
        if junction.type not in ("priority", "right_before_left"):
            continue
        for index, must_yield_to in junction.response.items():
            assert must_yield_to <= junction.foes[index] | {index}, junction.id  # one yields only to its foes
            yielding += bool(must_yield_to)
    assert yielding > 50
    states = {link.state for link in network.links}
    assert {"M", "m"} <= states  # major and minor links at priority junctions


@needs_sumo
def test_programs_in_additional_files_replace_the_networks():
    network_only = sumo.read_network(GAME / "cross" / "cross.net.xml")
    network, _, _ = sumo.load(GAME / "cross.sumocfg")  # with cross.tls.add.xml
    (tls,) = network.programs
    assert [p.duration for p in network.programs[tls].phases] != [p.duration for p in network_only.programs[tls].phases]
    assert len(network.programs[tls].phases[0].state) == 1 + max(lk.tl_index for lk in network.links if lk.tls == tls)


@needs_sumo
def test_what_the_twin_does_not_model_is_listed():
    network, _, _ = sumo.load(GAME / "bs3d.sumocfg")
    assert any("rail or tram lanes" in item for item in network.unsupported)


def test_an_actuated_program_is_listed_as_run_on_its_base_plan(tiny, tmp_path):
    text = TINY_NET.replace('type="priority"', 'type="traffic_light"').replace(
        '<connection from="AB" to="BC" fromLane="0" toLane="0" via=":B_0_0" dir="s" state="M"/>',
        '<connection from="AB" to="BC" fromLane="0" toLane="0" via=":B_0_0" tl="B" linkIndex="0" dir="s" state="O"/>')
    text = text.replace("    <junction id=\"A\"", '    <tlLogic id="B" type="static" programID="0" offset="0">\n'
                        '        <phase duration="30" state="G"/>\n        <phase duration="30" state="r"/>\n'
                        '    </tlLogic>\n    <junction id="A"')
    tiny.write_text(text)
    extra = tmp_path / "actuated.add.xml"
    extra.write_text('<additional><tlLogic id="B" type="actuated" programID="a" offset="5">'
                     '<phase duration="20" minDur="5" maxDur="40" state="G"/><phase duration="4" state="y"/>'
                     '</tlLogic></additional>')
    network = sumo.read_network(tiny, [extra])
    assert network.programs["B"].type == "actuated" and network.programs["B"].offset == 5
    assert network.programs["B"].cycle_s == 24
    assert any("actuated" in item and "base plan" in item for item in network.unsupported)


# ---- demand --------------------------------------------------------------------------------------------
def test_routes_flows_and_trips_are_read_and_trips_routed(tiny, tmp_path):
    network, net = sumo.read_network_and_sumolib(tiny)
    demand = sumo.read_routes([write_routes(tmp_path)], network, net)
    by_id = {d.id: d for d in demand.departures}
    assert by_id["v0"].edges == ["AB", "BC"] and by_id["t"].edges == ["AB", "BC"]
    assert by_id["f"].times() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert demand.vehicles() == 12 and demand.vehicles(until_s=20) == 5
    assert demand.vtypes["car"].tau == 1.2 and demand.vtypes["car"].decel == 4.0


def test_times_types_in_additional_files_gzip_and_what_is_not_driven_read_as_sumo_reads_them(tiny, tmp_path):
    """What SUMO's own shipped configurations use: clock times ("15:0:0") in a configuration
    and on departures, vehicle types defined in an additional file (SUMO reads those first),
    gzipped route files; bicycles (alone or mixed into a type distribution) and trips routed
    only by their stops are left out and listed, never an error that loses the rest."""
    import gzip

    types = tmp_path / "types.add.xml"
    types.write_text('<additional><vType id="van" vClass="delivery" length="6.5"/>'
                     '<vType id="bike" vClass="bicycle"/></additional>')
    routes = tmp_path / "more.rou.xml.gz"
    with gzip.open(routes, "wt") as fh:
        fh.write('<routes><route id="r" edges="AB BC"/>'
                 '<vTypeDistribution id="mix"><vType id="p" probability="4"/>'
                 '<vType id="b" vClass="bicycle" probability="1"/></vTypeDistribution>'
                 '<vehicle id="late" type="van" route="r" depart="0:1:30"/>'
                 '<flow id="mixed" type="mix" route="r" begin="0" end="20" period="10"/>'
                 '<flow id="cyclists" type="bike" route="r" begin="0" end="20" period="10"/>'
                 '<trip id="shuttle" type="van" depart="0"><stop busStop="stop1" duration="60"/></trip></routes>')
    config = tmp_path / "run.sumocfg"
    config.write_text(f'<configuration><input><net-file value="{tiny.name}"/><route-files value="{routes.name}"/>'
                      f'<additional-files value="{types.name}"/></input>'
                      '<time><begin value="1:0:0"/><end value="1:10:0"/></time></configuration>')
    assert sumo.read_config(config).begin_s == 3600 and sumo.read_config(config).end_s == 4200
    assert sumo.sumo_time("1:2:3:4.5") == 86400 + 7200 + 180 + 4.5
    _, demand, _ = sumo.load(config)
    by_id = {d.id: d for d in demand.departures}
    assert sorted(by_id) == ["late", "mixed"] and by_id["late"].depart_s == 90 and demand.vtypes["van"].length == 6.5
    listed = " ".join(demand.unsupported)
    assert "2 bicycle departure(s)" in listed and "routed by its stops only" in listed
    config.write_text(config.read_text().replace('"1:0:0"', '"1:0"'))
    with pytest.raises(sumo.SumoInputError, match=r"<begin value='1:0'>: not a time"):
        sumo.read_config(config)


def test_flows_count_as_sumo_inserts_them(tiny, tmp_path):
    """At begin + k * period while before end (so 4 in 10 s at 1200/h), SUMO's 24 h default
    end, and exp(r) as a random flow of r vehicles per second."""
    network, net = sumo.read_network_and_sumolib(tiny)
    extra = ('<flow id="hour" type="car" route="r" begin="0" end="10" vehsPerHour="1200"/>'
             '<flow id="long" type="car" route="r" begin="0" period="1000"/>'
             '<flow id="random" type="car" route="r" begin="0" end="100" period="exp(0.1)"/>'
             '<vType id="lorry" vClass="truck" speedFactor="normc(1.2,0.1,0.5,2)"/>')
    demand = sumo.read_routes([write_routes(tmp_path, extra)], network, net)
    by_id = {d.id: d for d in demand.departures}
    assert by_id["hour"].times() == [0, 3, 6, 9]
    assert len([t for t in by_id["long"].times() if t <= 7200]) == 8
    assert by_id["random"].probability == 0.1 and by_id["random"].end_s == 100
    assert demand.vtypes["lorry"].speed_factor == 1.2 and demand.vtypes["lorry"].length == 7.1


@pytest.mark.parametrize("extra, expected", [
    ('<vehicle id="bad" type="car" depart="0"><route edges="AB XY"/></vehicle>',
     "<vehicle id='bad'>: edge 'XY' is not in the network"),
    ('<vehicle id="bad" type="car" depart="0"><route edges="AB CB"/></vehicle>',
     "<vehicle id='bad'>: edge 'AB' is not connected to edge 'CB'"),
    ('<vType id="tram" vClass="tram"/><vehicle id="bad" type="tram" route="r" depart="0"/>',
     "<vehicle id='bad'>: edge 'AB' does not allow vehicle class 'tram'"),
    ('<vehicle id="bad" type="bus" route="r" depart="0"/>', "<vehicle id='bad'>: vehicle type 'bus' is not defined"),
    ('<vehicle id="bad" type="car" route="nowhere" depart="0"/>', "route 'nowhere' is not defined"),
    ('<trip id="bad" type="car" from="CB" to="BC" depart="0"/>', "<trip id='bad'>: no route from edge 'CB' to edge 'BC'"),
    ('<flow id="bad" type="car" route="r" begin="0" end="10"/>', "a flow needs vehsPerHour, period"),
])
def test_a_bad_route_names_the_file_the_element_and_the_problem(tiny, tmp_path, extra, expected):
    network, net = sumo.read_network_and_sumolib(tiny)
    routes = write_routes(tmp_path, extra)
    with pytest.raises(sumo.SumoInputError) as error:
        sumo.read_routes([routes], network, net)
    assert str(routes) in str(error.value) and expected in str(error.value)


# ---- bad files -------------------------------------------------------------------------------------------
def test_a_malformed_network_names_the_file_and_line(tiny):
    tiny.write_text(TINY_NET[: TINY_NET.index("<junction id=\"B\"") + 30])
    with pytest.raises(sumo.SumoInputError, match=r"tiny\.net\.xml: line \d+, column \d+: not well-formed XML"):
        sumo.read_network(tiny)


def test_a_file_that_is_not_a_network(tmp_path):
    path = tmp_path / "empty.net.xml"
    path.write_text("<net version='1.20'></net>")
    with pytest.raises(sumo.SumoInputError, match="no <edge>"):
        sumo.read_network(path)


def test_a_configuration_naming_a_missing_file(tiny, tmp_path):
    config = tmp_path / "run.sumocfg"
    config.write_text('<configuration><input><net-file value="tiny.net.xml"/><route-files value="gone.rou.xml"/>'
                      '</input><time><end value="60"/></time></configuration>')
    with pytest.raises(sumo.SumoInputError) as error:
        sumo.load(config)
    assert "run.sumocfg: <route-files value='gone.rou.xml'>: file not found" in str(error.value)


def test_a_program_for_a_light_the_network_lacks(tiny, tmp_path):
    extra = tmp_path / "wrong.add.xml"
    extra.write_text('<additional><tlLogic id="Z" type="static" programID="1" offset="0">'
                     '<phase duration="20" state="G"/></tlLogic></additional>')
    with pytest.raises(sumo.SumoInputError, match=r"wrong\.add\.xml: <tlLogic id='Z'>: the network has no traffic light"):
        sumo.read_network(tiny, [extra])


# ---- maps through netconvert --------------------------------------------------------------------------------
OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <bounds minlat="52.2600" minlon="10.5200" maxlat="52.2640" maxlon="10.5260"/>
  <node id="1" lat="52.2620" lon="10.5200"/><node id="2" lat="52.2620" lon="10.5230"/>
  <node id="3" lat="52.2620" lon="10.5260"/><node id="4" lat="52.2600" lon="10.5230"/>
  <node id="5" lat="52.2640" lon="10.5230"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="primary"/><tag k="lanes" v="2"/></way>
  <way id="11"><nd ref="4"/><nd ref="2"/><nd ref="5"/><tag k="highway" v="residential"/></way>
</osm>
"""


def imported(tmp_path: Path, name: str, text: str):
    """The network netconvert makes of the map ``text`` saved as ``name``."""
    source = tmp_path / name
    source.write_text(text)
    return sumo.import_map(source, tmp_path / f"{source.stem}.net.xml")


@needs_sumo
def test_an_openstreetmap_file_imports_through_netconvert(tmp_path):
    network = imported(tmp_path, "map.osm", OSM)
    figures = network.summary()
    assert figures["edges"] >= 8 and figures["links"] > 8  # two crossing roads, both directions, turns
    assert any(len({lk.to_lane for lk in network.links_from(lane.id)}) > 1 for lane in network.road_lanes())


XODR = """<?xml version="1.0" standalone="yes"?>
<OpenDRIVE>
    <header revMajor="1" revMinor="4" name="straight" version="1.00" north="0" south="0" east="0" west="0"/>
    <road name="main" length="200.0" id="1" junction="-1">
        <link/>
        <planView>
            <geometry s="0.0" x="0.0" y="0.0" hdg="0.0" length="200.0"><line/></geometry>
        </planView>
        <lanes>
            <laneSection s="0.0">
                <left>
                    <lane id="1" type="driving" level="false"><link/><width sOffset="0.0" a="3.5" b="0" c="0" d="0"/></lane>
                </left>
                <center>
                    <lane id="0" type="none" level="false"><link/></lane>
                </center>
                <right>
                    <lane id="-1" type="driving" level="false"><link/><width sOffset="0.0" a="3.5" b="0" c="0" d="0"/></lane>
                    <lane id="-2" type="driving" level="false"><link/><width sOffset="0.0" a="3.5" b="0" c="0" d="0"/></lane>
                </right>
            </laneSection>
        </lanes>
    </road>
</OpenDRIVE>
"""


@needs_sumo
def test_an_opendrive_file_imports_through_netconvert(tmp_path):
    """A straight 200 m road, one lane westbound and two eastbound."""
    network = imported(tmp_path, "road.xodr", XODR)
    lanes = network.road_lanes()
    assert sorted(len(e.lanes) for e in network.edges.values() if not e.function) == [1, 2]
    assert all(abs(lane.length - 200.0) < 1.0 and abs(lane.width - 3.5) < 0.01 for lane in lanes)


@needs_sumo
def test_a_map_netconvert_cannot_read_is_a_clear_error(tmp_path):
    with pytest.raises(sumo.SumoInputError, match=r"broken\.osm: netconvert failed: .+"):
        imported(tmp_path, "broken.osm", "<osm version='0.6'><node id='1' lat='52.0'")


def test_importing_without_netconvert_says_what_to_install(tmp_path, monkeypatch):
    source = tmp_path / "map.osm"
    source.write_text(OSM)
    monkeypatch.setattr(sumo, "sumo_home", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(sumo.SumoInputError, match=r"netconvert is not installed: pip install -e '\.\[sumo\]'"):
        sumo.import_map(source, tmp_path / "map.net.xml")


def test_a_map_of_another_kind_is_refused(tmp_path):
    source = tmp_path / "map.shp"
    source.write_text("x")
    with pytest.raises(sumo.SumoInputError, match="expected an OpenStreetMap .osm or an OpenDRIVE .xodr"):
        sumo.import_map(source, tmp_path / "out.net.xml")


# ---- the command ---------------------------------------------------------------------------------------------
@needs_sumo
def test_network_inspect_reports_a_shipped_configuration(capsys):
    from run import main

    assert main(["network", "inspect", str(GAME / "grid6.sumocfg"), "--json", "-"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["junctions"]["traffic_light"] == 6 and figures["demand"]["vehicles"] > 100
    assert main(["network", "inspect", str(GAME / "nothing.net.xml")]) == 2


@needs_sumo
def test_network_inspect_draws_the_network(tmp_path):
    from run import main

    picture = tmp_path / "cross.png"
    assert main(["-q", "network", "inspect", str(GAME / "cross.sumocfg"), "--png", str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000


@needs_sumo
def test_bench_sumo_runs_sumo_itself_on_a_shipped_configuration(tmp_path):
    """The reference side of `bench sumo`: SUMO through libsumo on `cross` (its GUI-only
    options dropped), teleporting off; the counts add up."""
    from benchmarks.sumo import run_sumo

    figures = run_sumo(GAME / "cross.sumocfg", 10.0, tmp_path)
    assert figures["simulated_s"] == 600 and figures["collisions"] == 0
    assert figures["inserted"] == figures["arrived"] + figures["running"]
    assert sum(r["arrived"] for r in figures["routes"].values()) == figures["arrived"] > 50
    assert figures["vehicle_steps_per_s"] > 0 and 0 < figures["travel_time_p50_s"] <= figures["travel_time_p90_s"]
