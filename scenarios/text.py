"""Deterministic reading of a crash description: numbers with their units, the actors, and the
keyword facts a report states in so many words, each with the words it came from.

Nothing here guesses: a fact is read only where the text has words for it, and the quote is
kept. Units are parsed (``mph``, ``km/h``, ``m/s``, ``feet``, ``%``) and converted to SI; ranges
(``35-40 mph``) keep both ends. Values no road can have (a car at 400 mph, a 900 km/h limit, an
80% grade) are not used and are reported as :class:`Problem` s of kind ``impossible``; facts the
text states twice with different values are ``contradictory``; sentences that address the
reader as a program (``ignore previous instructions``, ``SYSTEM:``) are ``instructions``, and are
cut from the text before anything reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MPH = 0.44704  # [m/s] per mile per hour
KMH = 1.0 / 3.6  # [m/s] per km/h
FOOT = 0.3048  # [m]
MAX_SPEED_MPS = 90.0  # [m/s] (about 200 mph): faster is no road vehicle's speed
MAX_LIMIT_MPS = 40.0  # [m/s] (144 km/h, 90 mph): above any posted limit
MAX_GRADE_PERCENT = 15.0  # [%] steeper than any public road's sustained grade
MIN_LIMIT_MPS = 2.0  # [m/s] a posted limit below this (7 km/h) is no limit
MAX_LANES = 6  # lanes per direction (and a lane number) the spec holds
MAX_AGE_YEARS = 110

NUMBER = r"(\d+(?:\.\d+)?)"
SPEED_UNIT = r"(mph|miles per hour|miles an hour|km/h|kmh|kph|kilometers per hour|kilometres per hour|m/s)"
SPEED = re.compile(NUMBER + r"(?:\s*(?:-|–|to)\s*" + NUMBER + r")?[\s-]*" + SPEED_UNIT, re.IGNORECASE)
LIMIT_BEFORE = re.compile(r"(speed limit|posted|limit)", re.IGNORECASE)
LIMIT_AFTER = re.compile(r"^\s*(posted |speed[- ])?(limit|zone)", re.IGNORECASE)
ROAD_WORDS = r"(road|roadway|highway|street|interstate|freeway|avenue|route|arterial|expressway|boulevard|parkway|motorway)"
GRADE = re.compile(NUMBER + r"\s*(?:%|percent)\s*(up|down)?\s*-?\s*(?:hill\s*)?(grade|slope|incline|decline|downgrade|upgrade)?",
                   re.IGNORECASE)
AGE = re.compile(r"(\d{1,3})[\s-]*(?:year|yr)s?[\s-]*old", re.IGNORECASE)
ACTOR_ID = re.compile(r"\b(V|P)(\d{1,2})\b")
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
INSTRUCTION = re.compile(
    r"(ignore (all |any |the )?(previous|prior|above|earlier) (instructions|text|prompts?)|disregard (the|all|any|previous)"
    r"|^\s*(system|assistant|user)\s*:|you are now|new instructions|set \w+ to (true|false)|\brm -rf\b"
    r"|delete (all |the )?files|\boutput (only|exactly)\b|\brespond with\b|\bexecute (the|this) (command|code|script)"
    r"|\brun the command\b)",
    re.IGNORECASE | re.MULTILINE)
NUMBER_WORDS = {"one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8}

# keyword facts: (value, pattern); the first pattern found in the text gives the value
CRASH_WORDS = re.compile(r"\b(struck|strikes|hit|hits|collided|collides|collision|crash(ed)?|rear-ended|rear ended|"
                         r"sideswiped|side-swiped|impact(ed)?|ran into|contacted|crashed)\b", re.IGNORECASE)
CRASH_TYPE_WORDS = [
    ("pedestrian", r"\bP\d\b|\bpedestrian"),
    ("head_on", r"head[- ]on|front(al)? (plane|end)s? (of both|collided)|front to front|front of \w+ struck the front"),
    ("sideswipe", r"side[- ]?swip|sideswip"),
    ("rear_end", r"rear[- ]end|struck the (back|rear)|into the (back|rear)|(back|rear)( end| plane)? of (V\d|the)"),
    ("single_vehicle", r"(ran|went|departed|left) (off )?the (road|roadway)|road departure|struck a (tree|pole|guardrail)"
                       r"|overturned|rolled over"),
    ("angle", r"\bangle\b|t-?bone|broadside|side of (V\d|the)|(left|right) side"),
]
JUNCTION_WORDS = [
    ("t_junction", r"t-(intersection|junction)|three-leg|3-leg"),
    ("roundabout", r"roundabout|traffic circle"),
    ("driveway", r"driveway|parking lot (exit|entrance)"),
    ("four_way", r"four-leg|4-leg|four-way|4-way|intersection|crossroads"),
]
CONTROL_WORDS = [
    ("signal", r"traffic (signal|light)|signali[sz]ed|red light|green light|red signal|green signal|the signal"),
    ("stop_sign", r"stop sign|stop-controlled|stop controlled|all-way stop"),
    ("yield_sign", r"yield sign"),
]
LIGHT_WORDS = [
    ("dark_unlit", r"dark,? (and )?(not|un)[- ]?lit|not lighted|unlighted|no street ?light(s|ing)|dark unlit"),
    ("dark_lit", r"dark,? (but )?(street)?[- ]?lit|lighted|street ?light(s|ing)|dark lit"),
    ("dawn_dusk", r"\bdusk\b|\bdawn\b|twilight"),
    ("dark_unlit", r"\bdark\b|at night|\bnight\b|nighttime|after midnight"),
    ("daylight", r"daylight|daytime|\bday\b|afternoon|morning|noon"),
]
WEATHER_WORDS = [
    ("snow", r"snow(ing|fall)?\b(?! ?-?covered)|blizzard"),
    ("rain", r"\brain(ing|y|fall)?\b|drizzle|downpour"),
    ("fog", r"\bfog(gy)?\b|\bmist\b"),
    ("clear", r"\bclear\b|\bsunny\b|\bdry weather\b|cloudy|overcast"),
]
SURFACE_WORDS = [
    ("ice", r"\bic(y|e)\b|black ice|ice-covered"),
    ("snow", r"snow[- ]?covered|snowy (road|surface|pavement)|slush"),
    ("wet", r"\bwet\b|rain-slicked|standing water"),
    ("dry", r"\bdry\b"),
]
KIND_WORDS = [
    ("truck", r"\btrucks?\b|\btractor[- ]trailer|\bsemi\b|\blorry\b|\bbox van\b"),
    ("bus", r"\bbus\b|\bcoach\b"),
    ("motorcycle", r"\bmotorcycle|\bmotorbike|\bmotorcyclist"),
    ("car", r"\bsedan\b|\bcar\b|\bcoupe\b|\bhatchback\b|\bsuv\b|\bminivan\b|\bvan\b|\bpickup\b|\bstation wagon\b|"
            r"\bpassenger vehicle\b|\bvehicle\b"),
]
MANOEUVRE_WORDS = [
    ("stopped", r"\b(was|were|had been|being|sat|remained|came to a)\s+(stopped|stationary|at a stop|waiting|standing|parked)"
                r"|came to a (stop|halt)"),
    ("turning_left", r"turn(ing|ed)? left|left[- ]turn|left turn"),
    ("turning_right", r"turn(ing|ed)? right|right[- ]turn|right turn"),
    ("changing_lanes", r"chang(ing|ed|e) lanes?|lane change|merg(ing|ed|e) (left|right|into)|moved (left|right) into"),
    ("backing", r"back(ing|ed) (up|out)|reversing"),
    ("crossing", r"cross(ing|ed)|walk(ing|ed) across|stepped|darted|ran (out|into)"),
    ("slowing", r"slow(ing|ed)|decelerat|brak(ing|ed)"),
    ("straight", r"travel(l)?(ing|ed)|proceed(ing|ed)|driving|going straight|heading"),
]
STEP_WORDS = [
    ("ran_signal", r"ran (the|a) red|against the (red|signal)|disregarded the (signal|red)|ran the (signal|light)"),
    ("ran_stop_sign", r"ran the stop sign|did not stop at the stop sign|failed to stop at the stop sign|rolled through the stop"),
    ("failed_to_yield", r"fail(ed|ing) to yield|did not yield|pulled out|into the path"),
    ("lost_control", r"lost control"),
    ("entered_road", r"entered the (road|roadway|lane|street)|stepped (off|into|out)|darted|ran (out|into the road)"),
    ("braked", r"\bbrak(ed|ing)\b|applied (the )?brakes"),
    ("accelerated", r"accelerat(ed|ing)|sped up"),
    ("stopped", r"\b(came to a stop|stopped|was stopped)\b"),
    ("slowing", r"slow(ed|ing)( down)?|decelerat"),
    ("changing_lanes", r"chang(ed|ing) lanes?|lane change|merg(ed|ing) (left|right|into)|moved (left|right) into"),
    ("turning_left", r"turn(ed|ing)? left|began a left turn|left turn"),
    ("turning_right", r"turn(ed|ing)? right|right turn"),
    ("crossing", r"cross(ed|ing)|walk(ed|ing) across"),
]
DISTRACTED = re.compile(r"texting|\bphone\b|distract|looking (down|away|at)|inattent|not paying attention|eyes off",
                        re.IGNORECASE)
IMPAIRMENT = [("alcohol", r"alcohol|intoxicat|drunk|\bBAC\b|impaired by alcohol|been drinking|DUI"),
              ("drugs", r"\bdrug|marijuana|cannabis|opioid"),
              ("fatigue", r"fell asleep|fatigue|drowsy|asleep at the wheel|tired")]
HURRY = re.compile(r"\blate\b|in a hurry|rushing|hurr(y|ied)|behind schedule", re.IGNORECASE)
DIRECTION = re.compile(r"\b(north|south|east|west)(bound|ward)?\b", re.IGNORECASE)
LANE_NUMBER = re.compile(r"\blane (\d)\b|\b(\d)(?:st|nd|rd|th) lane\b", re.IGNORECASE)
STRIKE_VERB = re.compile(r"\b(struck|hit|collided with|rear-ended|rear ended|sideswiped|side-swiped|ran into|contacted|"
                         r"impacted)\b", re.IGNORECASE)
STRUCK_BY_VERB = re.compile(r"\bwas (struck|hit|rear-ended|sideswiped|contacted) by\b", re.IGNORECASE)


@dataclass
class Quoted:
    """A value read from the text and the words it came from; ``derived``: worked out from
    those words rather than stated (a two-lane road's one lane per direction)."""

    value: object
    quote: str
    derived: bool = False


@dataclass
class Problem:
    """Something in the text the extraction could not take at face value."""

    kind: str  # impossible, contradictory, instructions, unreadable
    message: str
    quote: str = ""


@dataclass
class Reading:
    """Everything :func:`read` finds in a text."""

    text: str  # the text with instruction-like sentences cut
    actors: list[str] = field(default_factory=list)
    facts: dict[str, Quoted] = field(default_factory=dict)  # spec field path -> value and quote
    sequence: list[tuple[str, str, str]] = field(default_factory=list)  # (actor, action, quote) in text order
    problems: list[Problem] = field(default_factory=list)
    describes_collision: bool = False


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text) if s.strip()]


def speeds(text: str) -> list[tuple[float, float, str, int]]:
    """Every speed in ``text``: (low [m/s], high [m/s], quote, position)."""
    found = []
    for m in SPEED.finditer(text):
        unit = m.group(3).lower()
        scale = MPH if unit.startswith("m") and unit != "m/s" else 1.0 if unit == "m/s" else KMH
        low = float(m.group(1)) * scale
        high = float(m.group(2)) * scale if m.group(2) else low
        found.append((min(low, high), max(low, high), m.group(0), m.start()))
    return found


def is_limit(text: str, at: int, quote: str) -> bool:
    """Whether the speed ``quote`` at ``at`` is a posted limit: "limit" or "posted" before it in
    its clause, or "limit"/"zone" right after it ("a 55 mph speed limit")."""
    before = text[max(0, at - 40):at]
    before = re.split(r"[;.,]", before)[-1]
    return bool(LIMIT_BEFORE.search(before) or LIMIT_AFTER.search(text[at + len(quote):at + len(quote) + 20]))


def _first(patterns: list[tuple[str, str]], text: str) -> Quoted | None:
    for value, pattern in patterns:
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            return Quoted(value, _around(text, m.start(), m.end()))
    return None


def _all(patterns: list[tuple[str, str]], text: str) -> list[Quoted]:
    out, seen = [], set()
    for value, pattern in patterns:
        m = re.search(pattern, text, re.IGNORECASE)
        if m and value not in seen:
            seen.add(value)
            out.append(Quoted(value, _around(text, m.start(), m.end())))
    return out


def _around(text: str, start: int, end: int, reach: int = 30) -> str:
    """The matched words with a little context, cut at sentence ends."""
    lo = max(text.rfind(".", 0, start) + 1, start - reach)
    hi = min([i for i in (text.find(".", end), end + reach, len(text)) if i >= 0])
    while 0 < lo < start and text[lo - 1].isalnum():  # whole words only
        lo += 1
    while end < hi < len(text) and text[hi].isalnum():
        hi -= 1
    return text[lo:hi].strip()


def _owner(text: str, position: int) -> str | None:
    """The actor a fact at ``position`` belongs to: the last actor named before it in its sentence
    (else the first named after it there); a fact after the verb of "V1 struck V2 ..." is the
    striker's ("V1 rear-ended V2 at 30 mph")."""
    start = max(text.rfind(".", 0, position) + 1, 0)
    roles = strike(text[start:position])
    if roles:
        return roles[0]
    end = text.find(".", position)
    end = len(text) if end < 0 else end
    before = [m.group(0).upper() for m in ACTOR_ID.finditer(text, start, position)]
    if before:
        return before[-1]
    after = [m.group(0).upper() for m in ACTOR_ID.finditer(text, position, end)]
    return after[0] if after else None


def read(raw: str) -> Reading:
    """Read what ``raw`` states; see the module docstring."""
    kept, problems = [], []
    for sentence in sentences(raw):
        m = INSTRUCTION.search(sentence)
        if m:
            problems.append(Problem("instructions", "a sentence addresses the reader as a program; it was ignored",
                                    sentence[:160]))
        else:
            kept.append(sentence)
    text = " ".join(kept)
    reading = Reading(text=text, problems=problems)
    reading.describes_collision = bool(CRASH_WORDS.search(text))
    ids = []
    for m in ACTOR_ID.finditer(text):
        name = m.group(0).upper()
        if name not in ids:
            ids.append(name)
    if not any(i.startswith("P") for i in ids) and re.search(r"\bpedestrian\b", text, re.IGNORECASE):
        ids.append("P1")
    reading.actors = ids
    facts = reading.facts
    _road(text, reading)
    for key, patterns in (("conditions.light", LIGHT_WORDS), ("conditions.weather", WEATHER_WORDS),
                          ("conditions.surface", SURFACE_WORDS), ("road.junction", JUNCTION_WORDS),
                          ("road.control", CONTROL_WORDS)):
        hit = _first(patterns, text)
        if hit:
            facts[key] = hit
    types = _all(CRASH_TYPE_WORDS, text)
    if types:
        facts["crash.type"] = types[0]
        named = {t.value for t in types} - {"angle", "pedestrian", "single_vehicle"}
        if len(named) > 1:
            problems.append(Problem("contradictory", f"the text names several crash types: {sorted(named)}",
                                    " / ".join(t.quote for t in types if t.value in named)))
    roles = strike(text)
    if roles:
        striking, struck, quote = roles
        facts["crash.striking"] = Quoted(striking, quote)
        facts["crash.struck"] = Quoted(struck, quote)
    for actor in ids:
        _actor(text, actor, ids, reading)
    _sequence(text, ids, reading)
    return reading


def strike(text: str) -> tuple[str, str, str] | None:
    """(striking, struck, quote) of the first sentence telling who struck whom: the last actor
    named before the verb strikes the first named after it ("the front of V1 struck the rear of
    V2"); "V2 was struck by V1" the other way round."""
    for sentence in sentences(text):
        for verb, passive in ((STRUCK_BY_VERB, True), (STRIKE_VERB, False)):
            m = verb.search(sentence)
            if not m:
                continue
            before = [a.group(0).upper() for a in ACTOR_ID.finditer(sentence, 0, m.start())]
            after = [a.group(0).upper() for a in ACTOR_ID.finditer(sentence, m.end())]
            if before and after and before[-1] != after[0]:
                first, second = before[-1], after[0]
                return (second, first, sentence) if passive else (first, second, sentence)
    return None


def _road(text: str, reading: Reading) -> None:
    facts, problems = reading.facts, reading.problems
    limits = []
    for low, high, quote, at in speeds(text):
        if is_limit(text, at, quote):
            limits.append((low, high, _around(text, at, at + len(quote))))
    for low, high, quote in limits:
        if not MIN_LIMIT_MPS <= high <= MAX_LIMIT_MPS:
            problems.append(Problem("impossible", f"a speed limit of {high:.0f} m/s ({high / MPH:.0f} mph) is no road's",
                                    quote))
    usable = [(lo, hi, q) for lo, hi, q in limits if MIN_LIMIT_MPS <= hi <= MAX_LIMIT_MPS]
    if usable:
        facts["road.speed_limit_mps"] = Quoted(round(0.5 * (usable[0][0] + usable[0][1]), 2), usable[0][2])
        if len({round(hi, 1) for _, hi, _ in usable}) > 1:
            problems.append(Problem("contradictory", "the text gives different speed limits",
                                    " / ".join(q for _, _, q in usable)))
    for m in GRADE.finditer(text):
        if not (m.group(3) or m.group(2) or re.search(r"grade|slope|hill|incline", text[m.end():m.end() + 20], re.I)):
            continue
        value = float(m.group(1))
        down = (m.group(2) or "").lower() == "down" or "down" in (m.group(3) or "").lower() or \
            "decline" in (m.group(3) or "").lower() or re.search(r"down(hill|grade|ward)|descend", text[max(0, m.start() - 40):m.end() + 40], re.I)
        if value > MAX_GRADE_PERCENT:
            problems.append(Problem("impossible", f"a {value:.0f}% grade is steeper than any road's", m.group(0)))
            continue
        facts["road.grade_percent"] = Quoted(-value if down else value, _around(text, m.start(), m.end()))
        break
    per_direction = [m for pattern in (r"(\w+)[- ]lanes? (in )?(each|per|in either) direction",
                                       r"(\w+) (\w+bound )?(travel )?lanes? (in each direction|each way)")
                     for m in re.finditer(pattern, text, re.IGNORECASE) if _count_word(m.group(1))]
    totals = [m for m in re.finditer(r"\b(\w+)[- ]lane\b(?=[^.]*?\b" + ROAD_WORDS + ")", text, re.IGNORECASE)
              if _count_word(m.group(1))]
    lanes = None
    if per_direction:
        m = per_direction[0]
        lanes = Quoted(_count_word(m.group(1)), m.group(0))
    elif totals:
        m = totals[0]
        total = _count_word(m.group(1))
        one_way = re.search(r"one-way|one way", text, re.IGNORECASE)
        lanes = Quoted(total if one_way else max(1, total // 2), m.group(0), derived=not one_way)
    if lanes is not None and lanes.value > MAX_LANES:
        problems.append(Problem("impossible", f"{lanes.value} lanes in one direction is more than any road has",
                                lanes.quote))
    elif lanes is not None:
        facts["road.lanes_per_direction"] = lanes
    m = re.search(r"\b(undivided|divided|median|barrier-separated|separated by a)\b", text, re.IGNORECASE)
    if m:
        facts["road.divided"] = Quoted(m.group(1).lower() != "undivided", _around(text, m.start(), m.end()))
    m = re.search(r"\b(curve|curved|curving|bend)\b", text, re.IGNORECASE)
    if m:
        facts["road.curve"] = Quoted(True, _around(text, m.start(), m.end()))
    elif re.search(r"\bstraight\b[^.]*\b(road|roadway|segment|section)", text, re.IGNORECASE):
        facts["road.curve"] = Quoted(False, re.search(r"\bstraight\b[^.]*", text, re.IGNORECASE).group(0)[:60])


def _count_word(word: str) -> int:
    """A small count written as a word or digits (0: not a count)."""
    word = word.lower()
    return NUMBER_WORDS.get(word, int(word) if word.isdigit() and int(word) <= 12 else 0)


def _actor(text: str, actor: str, ids: list[str], reading: Reading) -> None:
    """Facts about one actor: those in the sentences that name it, attributed by position."""
    facts, key = reading.facts, f"actors.{actor}"
    own = [s for s in sentences(text) if re.search(rf"\b{actor}\b", s, re.IGNORECASE)]
    if actor.startswith("P") and not own:
        own = [s for s in sentences(text) if re.search(r"pedestrian", s, re.IGNORECASE)]
    if actor.startswith("P"):
        named = bool(re.search(rf"\b{actor}\b", text))
        facts[f"{key}.kind"] = Quoted("pedestrian", (own[0] if own else actor)[:200], derived=not named)
    else:
        hit = _first(KIND_WORDS, _clause(own[0], actor)) if own else None
        if hit:
            facts[f"{key}.kind"] = hit
    for sentence in own:
        single = len({m.group(0).upper() for m in ACTOR_ID.finditer(sentence)}) <= 1
        for low, high, quote, at in speeds(sentence):
            if is_limit(sentence, at, quote):
                continue
            if _owner(sentence, at) != actor:
                continue
            if high > MAX_SPEED_MPS:
                reading.problems.append(Problem("impossible", f"{actor} at {high / MPH:.0f} mph is faster than any road "
                                                              "vehicle", quote))
                continue
            if f"{key}.speed_mps" in facts and abs(facts[f"{key}.speed_mps"].value - 0.5 * (low + high)) > 0.5:
                reading.problems.append(Problem("contradictory", f"{actor} is given two speeds",
                                                f"{facts[f'{key}.speed_mps'].quote} / {quote}"))
                continue
            facts[f"{key}.speed_mps"] = Quoted(round(0.5 * (low + high), 2), _around(sentence, at, at + len(quote)))
            if high > low:
                facts[f"{key}.speed_low_mps"] = Quoted(round(low, 2), quote)
                facts[f"{key}.speed_high_mps"] = Quoted(round(high, 2), quote)
        m = AGE.search(sentence)
        if m and f"{key}.age_years" not in facts and _owner(sentence, m.start()) == actor:
            if 0 < int(m.group(1)) <= MAX_AGE_YEARS:
                facts[f"{key}.age_years"] = Quoted(int(m.group(1)), _around(sentence, m.start(), m.end()))
            else:
                reading.problems.append(Problem("impossible", f"{actor}: an age of {m.group(1)} years", m.group(0)))
        m = DIRECTION.search(sentence)
        if m and f"{key}.direction" not in facts and _owner(sentence, m.start()) == actor:
            facts[f"{key}.direction"] = Quoted(m.group(1).lower(), _around(sentence, m.start(), m.end()))
        m = LANE_NUMBER.search(sentence)
        if m and f"{key}.lane" not in facts and _owner(sentence, m.start()) == actor:
            if 1 <= int(m.group(1) or m.group(2)) <= MAX_LANES:
                facts[f"{key}.lane"] = Quoted(int(m.group(1) or m.group(2)), m.group(0))
            else:
                reading.problems.append(Problem("impossible", f"{actor} in {m.group(0)}: the spec holds lanes 1 to "
                                                              f"{MAX_LANES}", m.group(0)))
        if single or _owner(sentence, 0) == actor:
            m = DISTRACTED.search(sentence)
            if m and f"{key}.distracted" not in facts:
                facts[f"{key}.distracted"] = Quoted(True, _around(sentence, m.start(), m.end()))
            hit = _first(IMPAIRMENT, sentence)
            if hit and f"{key}.impairment" not in facts:
                facts[f"{key}.impairment"] = hit
            m = HURRY.search(sentence)
            if m and f"{key}.hurry" not in facts:
                facts[f"{key}.hurry"] = Quoted(True, _around(sentence, m.start(), m.end()))
    for sentence in own:  # the manoeuvre: the first the actor's own clauses state
        clause = _clause(sentence, actor)
        hit = _first(MANOEUVRE_WORDS, clause)
        if hit and hit.value != "straight":
            facts[f"{key}.manoeuvre"] = hit
            break
    else:
        for sentence in own:
            hit = _first(MANOEUVRE_WORDS, _clause(sentence, actor))
            if hit:
                facts[f"{key}.manoeuvre"] = hit
                break


def _clause(sentence: str, actor: str) -> str:
    """The part of ``sentence`` from ``actor``'s name to the next actor's name."""
    m = re.search(rf"\b{actor}\b", sentence, re.IGNORECASE)
    if not m:
        return sentence if actor.startswith("P") else ""
    rest = sentence[m.end():]
    nxt = ACTOR_ID.search(rest)
    return rest[:nxt.start()] if nxt else rest


TRAVELLING = re.compile(r"\b(travel(l)?(ing|ed)|proceed(ing|ed)|driving|heading|northbound|southbound|eastbound|"
                        r"westbound)\b", re.IGNORECASE)


def _actions(clause: str, first: bool) -> list[tuple[str, str]]:
    """The actions a clause tells, in text order (overlapping words count once)."""
    found = []
    for action, pattern in STEP_WORDS:
        for m in re.finditer(pattern, clause, re.IGNORECASE):
            found.append((m.start(), m.end(), action, _around(clause, m.start(), m.end())))
    if first:
        m = TRAVELLING.search(clause)
        if m:
            found.append((m.start(), m.end(), "straight", _around(clause, m.start(), m.end())))
    found.sort()
    out, end = [], -1
    for start, stop, action, quote in found:
        if start >= end:
            out.append((action, quote))
            end = stop
    return out


def _sequence(text: str, ids: list[str], reading: Reading) -> None:
    """Pre-crash steps in text order: each clause's actor and the first action words in it,
    up to the sentence that tells the collision. An actor's first travelling is a ``straight`` step."""
    moved: set[str] = set()
    for sentence in sentences(text):
        positions = [(m.start(), m.group(0).upper()) for m in ACTOR_ID.finditer(sentence)]
        if not positions and "P1" in ids and re.search("pedestrian", sentence, re.I):
            positions = [(re.search("pedestrian", sentence, re.I).start(), "P1")]
        for k, (at, actor) in enumerate(positions):
            end = positions[k + 1][0] if k + 1 < len(positions) else len(sentence)
            clause = sentence[at:end]
            for action, quote in _actions(clause, first=actor not in moved):
                moved.add(actor)  # travelling counts only as an actor's first step
                if not (reading.sequence and reading.sequence[-1][:2] == (actor, action)):
                    reading.sequence.append((actor, action, quote))
        if CRASH_WORDS.search(sentence) and strike(sentence):
            break
