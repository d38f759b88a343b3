/*
 * Traffic twin inspector - browser front-end (plain JavaScript, no dependencies).
 *
 * Loads a run from the inspector server's JSON API (/api/run, /api/ticks),
 * draws a top-down animated view of the network and actors on a canvas,
 * drives it with a timeline, and explains the selected actor in a side panel
 * (persona, intent, latest LLM decision, memories, measures, hazards).
 * In live mode it can also step the simulation, interview humans and fork a
 * what-if run that is drawn side by side with the main one.
 * Navigation: wheel zoom, drag pan, "fit all", zoom to a junction (a searchable list),
 * and follow the selected actor (the view stays centred on it as time moves).
 * Charts under the timeline (plain canvas): run-wide mean speed, vehicle count, moving
 * vehicles, density and hazards per 10 s, and the selected vehicle's speed / gap / TTC,
 * with a cursor at the current time; a click on a chart jumps there.
 * Collisions are listed with a "Why?" action (POST /api/explain): a table of their
 * counterfactual causes, and on the timeline the fork point and a band per but-for cause.
 *
 * window.inspector exposes the state an automated test needs (see bottom).
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ constants
  const VEHICLE_COLOURS = { car: '#2f6fde', truck: '#8e44ad', bus: '#f08c00' };
  const RL_COLOUR = '#00e5ff';
  const CRASH_COLOUR = '#e53935';
  const PED_COLOUR = '#ffd600';
  const JAYWALKER_COLOUR = '#ff69b4';
  const SIGNAL_COLOURS = { green: '#2ecc40', amber: '#ffb300', red: '#e53935' };
  const WALK_COLOURS = { walk: '#2ecc40', flashing: '#ffb300', dont_walk: '#e53935' };
  const SEVERITY_COLOURS = { low: '#f5d000', medium: '#ff8c00', high: '#e53935' };
  const SEVERITY_RANK = { low: 1, medium: 2, high: 3 };
  const CAUSE_CLASSES = { but_for: 'but-for', contributing: 'contributing', irrelevant: 'irrelevant' };
  const COLLISION_MATCH_S = 1.0;    // [s] a collision hazard mark is the collision of its pair within this
  const GRASS = '#6b9a4e';
  const ASPHALT = '#3d4046';
  const SIDEWALK = '#cfcfcf';
  const SELECT_COLOUR = '#ff2bd6';
  const PICK_RADIUS_M = 3;          // click selects the nearest actor within this distance
  const CANVAS_ASPECT = 7 / 9;      // height / width of the scene canvases
  const VIEW_MARGIN_PX = 12;        // [CSS px] border around the network in the "fit all" view
  const MIN_ZOOM = 0.5;
  const MAX_ZOOM = 40;              // relative to "fit all"; on large networks up to MAX_PX_PER_M
  const MAX_PX_PER_M = 60;          // [CSS px / m] closest zoom on a city-scale network
  const JUNCTION_MARGIN_M = 50;     // [m] shown around a junction zoomed to
  const EPS = 1e-6;

  // ------------------------------------------------------------------ state
  /** A session holds the ticks of one run (main or fork) plus indexes built from them. */
  function newSession(name) {
    return {
      name: name,
      ticks: [],
      decisions: new Map(),   // identity -> [decision...] in time order
      hazards: new Map(),     // dedupe key -> hazard (merged, latest extent)
      alerts: new Map(),      // dedupe key -> alert
      actors: new Map(),      // actor id -> {kind, human, first, last}
    };
  }

  const S = {
    run: null, header: null, net: null, legend: null,
    humans: new Map(),        // identity -> header human entry
    mode: 'recorded',
    main: newSession('main'),
    fork: null,               // session + {description, startIndex, startT}
    idx: 0, frac: 0,          // displayed position = tick idx + fraction towards idx+1
    playing: false, speed: 1, lastFrame: null,
    selected: null,
    follow: false,            // keep the view centred on the selected actor
    view: { zoom: 1, cx: 0, cy: 0 },
    junctions: [],            // [{id, at: [x, y], box: [xmin, ymin, xmax, ymax], edges}] for the junction list
    junctionFocus: null,      // the junction zoomed to (outlined while its id is in the box)
    drag: null, suppressClick: false,
    running: false, busy: false,
    dirty: true, ready: false,
    panelActor: undefined,    // identity shown in the interview box (to clear on change)
    collisions: [],           // [{id, time_s, actors}] of the main run, numbered as run.py explain does
    causes: new Map(),        // collision id -> explain's incident (causes, fork_at_s, ...)
    explaining: null,         // the collision id being explained now (null: none)
    focusIncident: null,      // the collision whose entry was picked from the timeline
  };

  const tickIndexCache = new WeakMap();  // tick -> {v: Map id->i, p: Map id->i}
  const hullCache = new WeakMap();       // network -> junction hull polygons

  // ------------------------------------------------------------------ DOM helpers
  const $ = (id) => document.getElementById(id);

  /** Create an element: el('div', {class: 'x', title: 'y'}, child, 'text', ...). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'onclick') e.addEventListener('click', v);
        else e.setAttribute(k, v);
      }
    }
    for (const c of children.flat()) {
      if (c == null) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function setContent(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c != null)
      .map((c) => (typeof c === 'string' ? document.createTextNode(c) : c)));
  }

  /** A two-column key/value table from an object (nested values as JSON). */
  function kvTable(obj) {
    const rows = Object.entries(obj || {}).map(([k, v]) => el('tr', null,
      el('th', null, k),
      el('td', null, v == null ? '—' : (typeof v === 'object' ? JSON.stringify(v) : String(v)))));
    return rows.length ? el('table', { class: 'kv' }, rows) : el('span', { class: 'muted' }, 'none');
  }

  function fmt(v, digits) {
    if (v == null || v === '' || Number.isNaN(Number(v))) return '—';
    return Number(v).toFixed(digits == null ? 1 : digits);
  }

  function showMessage(text, kind) {
    $('message-text').textContent = text;
    $('message').className = kind || 'error';
    $('message').hidden = false;
  }
  function clearMessage() { $('message').hidden = true; }

  // ------------------------------------------------------------------ API
  /** GET (body undefined) or POST JSON; on HTTP error show the server's message and throw. */
  async function api(path, body, what) {
    const opt = body === undefined ? {} : {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    };
    let res;
    try {
      res = await fetch(path, opt);
    } catch (e) {
      showMessage((what || path) + ' failed: ' + e.message);
      throw e;
    }
    let data = null;
    try { data = await res.json(); } catch (e) { /* non-JSON body */ }
    if (!res.ok) {
      const msg = (data && data.error) || ('HTTP ' + res.status);
      showMessage((what || path) + ' failed: ' + msg);
      throw new Error(msg);
    }
    return data;
  }

  /** Fetch all ticks of a session with index >= session.ticks.length and ingest them. */
  async function fetchTicks(session) {
    for (let guard = 0; guard < 1000; guard++) {
      const from = session.ticks.length;
      const data = await api('/api/ticks?session=' + session.name + '&from=' + from, undefined, 'loading ticks');
      const ticks = (data && data.ticks) || [];
      ingest(session, ticks);
      if (!ticks.length || session.ticks.length >= (data.total || 0)) break;
    }
  }

  // ------------------------------------------------------------------ ingest / indexes
  function hazardKey(h) {
    const actors = (h.actors || []).slice().sort((a, b) => a - b).join(',');
    return h.kind + '|' + actors + '|' + Number(h.start_s).toFixed(2);
  }

  /** Add a hazard, merging with an earlier report of the same event (extends end, keeps worst severity). */
  function addHazard(session, h) {
    const key = hazardKey(h);
    const old = session.hazards.get(key);
    if (!old) { session.hazards.set(key, Object.assign({}, h)); return true; }
    const sev = (SEVERITY_RANK[h.severity] || 0) >= (SEVERITY_RANK[old.severity] || 0) ? h.severity : old.severity;
    Object.assign(old, h, { end_s: Math.max(old.end_s, h.end_s), severity: sev });
    return false;
  }

  function addAlert(session, a) {
    const ev = (a.events && a.events[0]) || {};
    session.alerts.set(Number(a.time_s).toFixed(2) + '|' + (ev.kind || ''), a);
  }

  /** Append ticks to a session and update its decision / hazard / actor indexes. */
  function ingest(session, ticks) {
    const useTickHazards = S.mode === 'live' || session.name === 'fork' || !(S.run.hazards || []).length;
    const useTickAlerts = S.mode === 'live' || session.name === 'fork' || !(S.run.alerts || []).length;
    const useTickCollisions = session === S.main && (S.mode === 'live' || !(S.run.collisions || []).length);
    for (const tick of ticks) {
      session.ticks.push(tick);
      if (session === S.main) chartAppend(tick);
      if (useTickCollisions) for (const e of tick.events || []) if (e.kind === 'collision') addCollision(e);
      for (const d of tick.decisions || []) {
        if (!d.human) continue;
        if (!session.decisions.has(d.human)) session.decisions.set(d.human, []);
        session.decisions.get(d.human).push(d);
      }
      if (useTickHazards) for (const h of tick.hazards || []) addHazard(session, h);
      if (useTickAlerts) for (const a of tick.alerts || []) addAlert(session, a);
      noteActors(session, tick, 'vehicle', tick.vehicles);
      noteActors(session, tick, 'pedestrian', tick.pedestrians);
    }
  }

  function noteActors(session, tick, kind, cols) {
    if (!cols || !cols.id) return;
    cols.id.forEach((id, i) => {
      const human = cols.human ? cols.human[i] : null;
      const a = session.actors.get(id);
      if (!a) session.actors.set(id, { kind: kind, human: human, first: tick.t, last: tick.t });
      else { a.last = tick.t; if (human) a.human = human; }
    });
  }

  /** id -> column index maps for a tick (cached, kept off the tick objects). */
  function tickIndex(tick) {
    let m = tickIndexCache.get(tick);
    if (!m) {
      m = { v: new Map(), p: new Map() };
      ((tick.vehicles && tick.vehicles.id) || []).forEach((id, i) => m.v.set(id, i));
      ((tick.pedestrians && tick.pedestrians.id) || []).forEach((id, i) => m.p.set(id, i));
      tickIndexCache.set(tick, m);
    }
    return m;
  }

  /** The tick drawn for `which` ('main' | 'fork') at main tick index i (fork shows main before its start). */
  function sceneTick(which, i) {
    const main = S.main.ticks;
    if (which === 'main' || !S.fork) return main[i] || null;
    if (i < S.fork.startIndex) return main[i] || null;
    return S.fork.ticks[i - S.fork.startIndex] || null;
  }

  function currentTick() { return S.main.ticks[S.idx] || null; }
  function currentT() { const t = currentTick(); return t ? t.t : 0; }

  /** Interpolated display time. */
  function displayT() {
    const a = S.main.ticks[S.idx];
    if (!a) return 0;
    const b = S.main.ticks[S.idx + 1];
    return b && S.frac > 0 ? a.t + (b.t - a.t) * S.frac : a.t;
  }

  function latestIn(list, t) {
    if (!list) return null;
    let lo = 0, hi = list.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (list[m].time_s <= t + EPS) lo = m + 1; else hi = m; }
    return lo ? list[lo - 1] : null;
  }

  /** A human's latest decision at or before t (fork falls back to main decisions before the fork). */
  function latestDecision(which, identity, t) {
    if (!identity) return null;
    if (which === 'fork' && S.fork) {
      const d = latestIn(S.fork.decisions.get(identity), t);
      if (d) return d;
      return latestIn(S.main.decisions.get(identity), Math.min(t, S.fork.startT));
    }
    return latestIn(S.main.decisions.get(identity), t);
  }

  /** Hazards to draw / list for a scene. */
  function sessionHazards(which) {
    const main = Array.from(S.main.hazards.values());
    if (which !== 'fork' || !S.fork) return main;
    return main.filter((h) => h.start_s < S.fork.startT - EPS).concat(Array.from(S.fork.hazards.values()));
  }

  /** Look up an actor in a tick: {kind, i, cols} or null. */
  function findActor(tick, id) {
    if (!tick) return null;
    const m = tickIndex(tick);
    if (m.v.has(id)) return { kind: 'vehicle', i: m.v.get(id), cols: tick.vehicles };
    if (m.p.has(id)) return { kind: 'pedestrian', i: m.p.get(id), cols: tick.pedestrians };
    return null;
  }

  // ------------------------------------------------------------------ canvases and view
  const C = { main: null, fork: null };

  function makeCanvas(id, which) {
    const elc = $(id);
    return { el: elc, ctx: elc.getContext('2d'), which: which, w: 900, h: 700, dpr: 1, frame: null, cache: null, cacheKey: '' };
  }

  /** Size the canvases to the available space (CSS px) and their backing stores to CSS px * devicePixelRatio. */
  function resizeCanvases() {
    const forkShown = !$('scene-fork-box').hidden;
    for (const c of [C.main, C.fork]) {
      if (c === C.fork && !forkShown) continue;
      const box = c.el.parentElement;
      const availW = Math.max(200, box.clientWidth);
      const top = c.el.getBoundingClientRect().top + window.scrollY;
      const availH = Math.max(260, window.innerHeight - Math.max(top, 40) - 120);
      const w = Math.floor(Math.min(availW, availH / CANVAS_ASPECT));
      const h = Math.floor(w * CANVAS_ASPECT);
      const dpr = window.devicePixelRatio || 1;
      c.w = w; c.h = h; c.dpr = dpr;
      c.el.style.width = w + 'px';
      c.el.style.height = h + 'px';
      c.el.width = Math.round(w * dpr);
      c.el.height = Math.round(h * dpr);
      c.cacheKey = '';
    }
    S.dirty = true;
  }

  /** World -> CSS pixel transform for a canvas: X = ox + x*s, Y = oy - y*s. */
  function viewFor(c) {
    const s = baseScale(c) * S.view.zoom;
    return { s: s, ox: c.w / 2 - S.view.cx * s, oy: c.h / 2 + S.view.cy * s };
  }

  /** CSS px per metre at zoom 1 ("fit all": the network's bounds fill the canvas). */
  function baseScale(c) {
    const b = (S.net && S.net.bounds) || [-100, -100, 100, 100];
    const m = VIEW_MARGIN_PX;
    return Math.min((c.w - 2 * m) / Math.max(1, b[2] - b[0]), (c.h - 2 * m) / Math.max(1, b[3] - b[1]));
  }

  /** Closest zoom: MAX_ZOOM, or more on a large network (up to MAX_PX_PER_M). */
  function maxZoom(c) { return Math.max(MAX_ZOOM, MAX_PX_PER_M / Math.max(EPS, baseScale(c))); }

  function clampZoom(c, zoom) { return Math.min(maxZoom(c), Math.max(MIN_ZOOM, zoom)); }

  function resetView() {
    const b = (S.net && S.net.bounds) || [-100, -100, 100, 100];
    S.view = { zoom: 1, cx: (b[0] + b[2]) / 2, cy: (b[1] + b[3]) / 2 };
    S.dirty = true;
  }

  /** The user's "fit all" (button, double-click): the whole network, following off. */
  function fitAll() {
    setFollow(false);
    setJunctionFocus(null);
    resetView();
  }

  /** World rectangle [xmin, ymin, xmax, ymax] visible on a canvas. */
  function visibleBounds(c) {
    const v = viewFor(c);
    return [-v.ox / v.s, (v.oy - c.h) / v.s, (c.w - v.ox) / v.s, v.oy / v.s];
  }

  // ------------------------------------------------------------------ follow an actor
  /** World position {x, y} of actor id in the main scene now (interpolated like the drawing), or null. */
  function actorPosition(id) {
    if (id == null) return null;
    const a = sceneTick('main', S.idx);
    const fa = findActor(a, id);
    if (!fa) return null;
    let x = fa.cols.x[fa.i], y = fa.cols.y[fa.i];
    const fb = S.frac > 0 ? findActor(sceneTick('main', S.idx + 1), id) : null;
    if (fb && fb.kind === fa.kind) { x += (fb.cols.x[fb.i] - x) * S.frac; y += (fb.cols.y[fb.i] - y) * S.frac; }
    return { x: x, y: y };
  }

  /** Turn following the selected actor on or off; `note` explains why it stopped. */
  function setFollow(on, note) {
    on = !!on && S.selected != null && !!actorPosition(S.selected);
    const changed = on !== S.follow;
    S.follow = on;
    if (on) setJunctionFocus(null);
    if (changed || note !== undefined) $('follow-note').textContent = note || '';
    updateFollowButton();
    if (on) applyFollow();
    S.dirty = true;
  }

  function toggleFollow() {
    if (S.selected == null) { showMessage('Select a vehicle or pedestrian first, then press f to follow it.', 'info'); return; }
    if (!S.follow && !actorPosition(S.selected)) {
      $('follow-note').textContent = 'not in the scene at t = ' + fmt(currentT()) + ' s';
      return;
    }
    setFollow(!S.follow);
  }

  /** Centre the view on the followed actor (at the current zoom); stop following when it has left the scene. */
  function applyFollow() {
    if (!S.follow) return;
    const p = actorPosition(S.selected);
    if (!p) {
      S.follow = false;
      $('follow-note').textContent = 'stopped following: not in the scene at t = ' + fmt(currentT()) + ' s';
      updateFollowButton();
      return;
    }
    if (p.x !== S.view.cx || p.y !== S.view.cy) { S.view.cx = p.x; S.view.cy = p.y; S.dirty = true; }
  }

  function updateFollowButton() {
    const b = $('follow');
    b.disabled = S.selected == null || (!S.follow && !actorPosition(S.selected));
    b.setAttribute('aria-pressed', S.follow ? 'true' : 'false');
    b.textContent = S.follow ? 'Following' : 'Follow';
  }

  // ------------------------------------------------------------------ zoom to a junction
  /**
   * The junctions the list offers: an imported network's (named by the server, see
   * inspector/junctions.py), else the junction boxes found in a built-in layout's lanes.
   */
  function networkJunctions(net) {
    if (net.junction_index && net.junction_index.length) return net.junction_index;
    const found = junctionHulls(net).map((hull) => {
      const xs = hull.map((p) => p[0]), ys = hull.map((p) => p[1]);
      const box = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
      return { at: [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], box: box, edges: [] };
    });
    found.sort((p, q) => q.at[1] - p.at[1] || p.at[0] - q.at[0]);   // reading order: north to south, west to east
    found.forEach((j, k) => { j.id = 'junction ' + (k + 1); });
    return found;
  }

  function buildJunctionNav() {
    S.junctions = S.net ? networkJunctions(S.net) : [];
    $('junction-nav').hidden = !S.junctions.length;
    setContent($('junction-list'), S.junctions.map((j) =>
      el('option', { value: j.id, label: j.edges && j.edges.length ? j.edges.join(', ') : '' })));
    $('junction').title = S.junctions.length + ' junctions: type an id or a street (edge) that meets there; Enter zooms';
  }

  /** The junction a search names: its id (any case), else the first whose id starts with it, else one it names a street of. */
  function findJunction(query) {
    const q = String(query == null ? '' : query).trim().toLowerCase();
    if (!q) return null;
    const js = S.junctions;
    return js.find((j) => j.id === query) || js.find((j) => j.id.toLowerCase() === q) ||
      js.find((j) => j.id.toLowerCase().startsWith(q)) ||
      js.find((j) => (j.edges || []).some((e) => e.toLowerCase() === q)) ||
      js.find((j) => j.id.toLowerCase().includes(q) || (j.edges || []).some((e) => e.toLowerCase().includes(q))) || null;
  }

  /** Outline junction j (null: none, and the junction box is emptied). */
  function setJunctionFocus(j) {
    if (!j && $('junction').value) $('junction').value = '';
    if (S.junctionFocus !== j) { S.junctionFocus = j; S.dirty = true; }
  }

  /** Centre the view on a junction, zoomed so it and JUNCTION_MARGIN_M around it fill the view. Returns its id or null. */
  function zoomToJunction(query) {
    const j = typeof query === 'object' && query ? query : findJunction(query);
    if (!j) {
      if (String(query || '').trim()) showMessage('No junction matches "' + String(query).trim() + '".', 'info');
      return null;
    }
    const c = C.main;
    const [x, y] = j.at, b = j.box || [x, y, x, y];
    const halfW = Math.max(x - b[0], b[2] - x) + JUNCTION_MARGIN_M;
    const halfH = Math.max(y - b[1], b[3] - y) + JUNCTION_MARGIN_M;
    const s = Math.min((c.w - 2 * VIEW_MARGIN_PX) / (2 * halfW), (c.h - 2 * VIEW_MARGIN_PX) / (2 * halfH));
    setFollow(false);
    S.view = { zoom: clampZoom(c, s / baseScale(c)), cx: x, cy: y };
    setJunctionFocus(j);
    $('junction').value = j.id;
    clearMessage();
    S.dirty = true;
    render();
    return j.id;
  }

  // ------------------------------------------------------------------ drawing
  function pathPoly(ctx, pts) {
    ctx.beginPath();
    pts.forEach((p, k) => (k ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
    ctx.closePath();
  }

  /** Static network (grass, sidewalks, lanes, crossings, stop lines), cached per view. */
  function networkLayer(c, v) {
    const key = [c.el.width, c.el.height, v.s.toFixed(5), v.ox.toFixed(2), v.oy.toFixed(2)].join('|');
    if (c.cache && c.cacheKey === key) return c.cache;
    const cv = c.cache || document.createElement('canvas');
    cv.width = c.el.width; cv.height = c.el.height;
    const ctx = cv.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = GRASS;
    ctx.fillRect(0, 0, cv.width, cv.height);
    const net = S.net;
    if (net) {
      const d = c.dpr;
      ctx.setTransform(d * v.s, 0, 0, -d * v.s, d * v.ox, d * v.oy);
      const px = 1 / v.s;  // one CSS pixel in metres
      // junction boxes: filled hull of each group of turning lanes, so the box reads as road
      ctx.fillStyle = ASPHALT;
      for (const hull of junctionHulls(net)) { pathPoly(ctx, hull); ctx.fill(); }
      // sidewalks: thick light grey polylines
      ctx.strokeStyle = SIDEWALK;
      ctx.lineWidth = net.sidewalk_width_m || 2;
      ctx.lineJoin = 'round';
      ctx.lineCap = 'butt';
      for (const line of net.sidewalks || []) {
        if (!line.length) continue;
        ctx.beginPath();
        line.forEach((p, k) => (k ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
        ctx.stroke();
      }
      // lanes: asphalt polygons (a hairline of the same colour hides seams), faint edges
      ctx.strokeStyle = ASPHALT;
      ctx.lineWidth = px;
      for (const lane of net.lanes || []) { pathPoly(ctx, lane.outline); ctx.fill(); ctx.stroke(); }
      for (const shape of net.junctions || []) { pathPoly(ctx, shape); ctx.fill(); ctx.stroke(); }  // imported networks
      ctx.strokeStyle = 'rgba(255,255,255,0.10)';
      for (const lane of net.lanes || []) { pathPoly(ctx, lane.outline); ctx.stroke(); }
      // stop lines: white bar across the lane end
      ctx.strokeStyle = 'rgba(255,255,255,0.85)';
      ctx.lineWidth = Math.max(0.4, px);
      for (const lane of net.lanes || []) {
        if (!lane.stop_line || lane.signal_group < 0 || !lane.centre || lane.centre.length < 2) continue;
        const n = lane.centre.length;
        const [x0, y0] = lane.centre[n - 2], [x1, y1] = lane.centre[n - 1];
        const len = Math.hypot(x1 - x0, y1 - y0) || 1;
        const nx = -(y1 - y0) / len * 1.6, ny = (x1 - x0) / len * 1.6;
        const [sx, sy] = lane.stop_line;
        ctx.beginPath(); ctx.moveTo(sx - nx, sy - ny); ctx.lineTo(sx + nx, sy + ny); ctx.stroke();
      }
      // crossings: light base with zebra stripes along the walking direction
      // (a crossing named "jaywalk" is only a virtual path across the road: not painted)
      for (const cr of net.crossings || []) if (cr.name !== 'jaywalk') drawZebra(ctx, cr.outline);
    }
    c.cache = cv; c.cacheKey = key;
    return cv;
  }

  /**
   * Junction areas: lanes that start where a signalled lane ends are the turning
   * movements inside a junction; group overlapping ones and return each group's
   * convex hull (world coordinates). Cached on the network object.
   */
  function junctionHulls(net) {
    if (hullCache.has(net)) return hullCache.get(net);
    const lanes = net.lanes || [];
    const ends = lanes.filter((l) => l.signal_group >= 0 && l.centre && l.centre.length)
      .map((l) => l.centre[l.centre.length - 1]);
    const conn = lanes.filter((l) => l.signal_group < 0 && l.centre && l.centre.length && l.outline &&
      ends.some((e) => Math.hypot(e[0] - l.centre[0][0], e[1] - l.centre[0][1]) < 1.0));
    const boxes = conn.map((l) => {
      const xs = l.outline.map((p) => p[0]), ys = l.outline.map((p) => p[1]);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    });
    // union-find over overlapping bounding boxes
    const parent = conn.map((_, k) => k);
    const root = (k) => (parent[k] === k ? k : (parent[k] = root(parent[k])));
    for (let i = 0; i < conn.length; i++) {
      for (let j = i + 1; j < conn.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]) parent[root(i)] = root(j);
      }
    }
    const groups = new Map();
    conn.forEach((l, k) => {
      const r = root(k);
      if (!groups.has(r)) groups.set(r, []);
      groups.get(r).push(...l.outline);
    });
    const hulls = Array.from(groups.values()).filter((g) => g.length >= 3).map(convexHull);
    hullCache.set(net, hulls);
    return hulls;
  }

  /** Convex hull (monotone chain) of [x, y] points. */
  function convexHull(points) {
    const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [], upper = [];
    for (const q of p) {
      while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
      lower.push(q);
    }
    for (let i = p.length - 1; i >= 0; i--) {
      const q = p[i];
      while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
      upper.push(q);
    }
    return lower.slice(0, -1).concat(upper.slice(0, -1));
  }

  function drawZebra(ctx, pts) {
    if (!pts || pts.length < 3) return;
    // walking direction = longest edge of the outline
    let best = 0, ux = 1, uy = 0, cx = 0, cy = 0;
    pts.forEach((p, k) => {
      const q = pts[(k + 1) % pts.length];
      const L = Math.hypot(q[0] - p[0], q[1] - p[1]);
      if (L > best) { best = L; ux = (q[0] - p[0]) / L; uy = (q[1] - p[1]) / L; }
      cx += p[0] / pts.length; cy += p[1] / pts.length;
    });
    ctx.save();
    pathPoly(ctx, pts);
    ctx.fillStyle = '#8d9096';
    ctx.fill();
    ctx.clip();
    ctx.translate(cx, cy);
    ctx.rotate(Math.atan2(uy, ux));
    ctx.fillStyle = 'rgba(245,245,245,0.95)';
    for (let d = -best / 2 - 1; d < best / 2 + 1; d += 1.0) ctx.fillRect(d, -50, 0.5, 100);
    ctx.restore();
  }

  /** Dynamic signal state: crossing borders by walk state, a dot per lane stop line by group state. */
  function drawSignals(ctx, tick, px) {
    const net = S.net, sig = tick.signals || {};
    const groups = sig.groups || [], walks = sig.crossings || [];
    const sNames = S.legend.signal_states || [], wNames = S.legend.walk_states || [];
    ctx.lineWidth = Math.max(0.35, 2 * px);
    for (const cr of net.crossings || []) {
      if (cr.signal == null || cr.signal < 0 || walks[cr.signal] == null) continue;
      ctx.strokeStyle = WALK_COLOURS[wNames[walks[cr.signal]]] || '#999';
      pathPoly(ctx, cr.outline); ctx.stroke();
    }
    const r = Math.max(0.9, 3.5 * px);
    ctx.lineWidth = Math.max(0.15, px);
    ctx.strokeStyle = '#111';
    for (const lane of net.lanes || []) {
      if (lane.signal_group == null || lane.signal_group < 0 || !lane.stop_line) continue;
      const st = groups[lane.signal_group];
      ctx.fillStyle = st == null || sig.dark ? '#777' : (SIGNAL_COLOURS[sNames[st]] || '#777');  // grey: dark heads
      ctx.beginPath(); ctx.arc(lane.stop_line[0], lane.stop_line[1], r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
    for (const head of net.signal_heads || []) {  // imported networks: one head per signalised link
      const st = groups[head.group];
      ctx.fillStyle = st == null || sig.dark ? '#777' : (SIGNAL_COLOURS[sNames[st]] || '#777');
      ctx.beginPath(); ctx.arc(head.at[0], head.at[1], 0.7 * r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
  }

  function lerpAngle(a, b, f) {
    let d = b - a;
    while (d > Math.PI) d -= 2 * Math.PI;
    while (d < -Math.PI) d += 2 * Math.PI;
    return a + d * f;
  }

  /** Actor positions for a frame, interpolated from tick a towards tick b by frac (actors in both, by id). */
  function computeFrame(a, b, frac) {
    const fr = { veh: [], ped: [], tick: a };
    if (!a) return fr;
    const bi = b && frac > 0 ? tickIndex(b) : null;
    const V = a.vehicles || {}, P = a.pedestrians || {};
    (V.id || []).forEach((id, i) => {
      let x = V.x[i], y = V.y[i], h = V.heading ? V.heading[i] : 0;
      if (bi && bi.v.has(id)) {
        const j = bi.v.get(id), W = b.vehicles;
        x += (W.x[j] - x) * frac; y += (W.y[j] - y) * frac;
        h = lerpAngle(h, W.heading ? W.heading[j] : h, frac);
      }
      fr.veh.push({ id: id, i: i, x: x, y: y, h: h,
        len: (V.length && V.length[i]) || 4.5, wid: (V.width && V.width[i]) || 1.8 });
    });
    (P.id || []).forEach((id, i) => {
      let x = P.x[i], y = P.y[i];
      if (bi && bi.p.has(id)) {
        const j = bi.p.get(id), W = b.pedestrians;
        x += (W.x[j] - x) * frac; y += (W.y[j] - y) * frac;
      }
      fr.ped.push({ id: id, i: i, x: x, y: y });
    });
    return fr;
  }

  function pedRadius(px) { return Math.max(0.6, 3.5 * px); }

  function vehicleColour(V, i) {
    if (V.crashed && V.crashed[i]) return CRASH_COLOUR;
    if (V.controlled && V.controlled[i]) return RL_COLOUR;
    const type = (S.legend.vehicle_types || [])[V.type ? V.type[i] : 0];
    return VEHICLE_COLOURS[type] || '#2f6fde';
  }

  function pedColour(P, i) {
    const phase = (S.legend.pedestrian_phases || [])[P.phase ? P.phase[i] : 0];
    if (phase === 'hit') return CRASH_COLOUR;
    return P.jaywalker && P.jaywalker[i] ? JAYWALKER_COLOUR : PED_COLOUR;
  }

  /** Draw one scene canvas ('main' or 'fork') at the current display position. */
  function drawScene(c, which) {
    const ctx = c.ctx, d = c.dpr, v = viewFor(c);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(networkLayer(c, v), 0, 0);
    const a = sceneTick(which, S.idx);
    const b = S.frac > 0 ? sceneTick(which, S.idx + 1) : null;
    const fr = computeFrame(a, b, S.frac);
    c.frame = fr;
    const px = 1 / v.s;
    ctx.setTransform(d * v.s, 0, 0, -d * v.s, d * v.ox, d * v.oy);
    if (a) drawSignals(ctx, a, px);

    // hazards active now: translucent circles by severity
    const t = displayT();
    for (const h of sessionHazards(which)) {
      if (!(h.start_s <= t + EPS && t <= h.end_s + 1 + EPS) || h.x_m == null) continue;
      const col = SEVERITY_COLOURS[h.severity] || SEVERITY_COLOURS.medium;
      ctx.beginPath(); ctx.arc(h.x_m, h.y_m, Math.max(6, 14 * px), 0, 2 * Math.PI);
      ctx.globalAlpha = 0.35; ctx.fillStyle = col; ctx.fill();
      ctx.globalAlpha = 0.9; ctx.strokeStyle = col; ctx.lineWidth = 1.5 * px; ctx.stroke();
      ctx.globalAlpha = 1;
    }

    // vehicles: rotated rectangles with a darker windscreen at the front
    const V = (a && a.vehicles) || {};
    for (const o of fr.veh) {
      ctx.save();
      ctx.translate(o.x, o.y);
      ctx.rotate(o.h);
      ctx.fillStyle = vehicleColour(V, o.i);
      ctx.fillRect(-o.len / 2, -o.wid / 2, o.len, o.wid);
      ctx.fillStyle = 'rgba(0,0,0,0.35)';
      ctx.fillRect(o.len / 2 - Math.min(1.4, o.len * 0.3), -o.wid / 2 + 0.15, 0.6, o.wid - 0.3);
      if (V.human && V.human[o.i]) {   // LLM-driven human: thick white outline, drawn outside the body
        const lw = Math.max(0.3, 1.6 * px);
        ctx.strokeStyle = '#fff';
        ctx.lineWidth = lw;
        ctx.strokeRect(-o.len / 2 - lw / 2, -o.wid / 2 - lw / 2, o.len + lw, o.wid + lw);
      }
      ctx.restore();
    }
    // pedestrians: circles
    const P = (a && a.pedestrians) || {};
    const pr = pedRadius(px);
    for (const o of fr.ped) {
      ctx.beginPath(); ctx.arc(o.x, o.y, pr, 0, 2 * Math.PI);
      ctx.fillStyle = pedColour(P, o.i); ctx.fill();
      const human = P.human && P.human[o.i];
      ctx.strokeStyle = human ? '#fff' : 'rgba(0,0,0,0.6)';
      ctx.lineWidth = human ? Math.max(0.25, 1.8 * px) : px;
      ctx.stroke();
    }

    // selection ring
    let selPos = null;
    if (S.selected != null) {
      const o = fr.veh.find((q) => q.id === S.selected) || fr.ped.find((q) => q.id === S.selected);
      if (o) {
        const r = Math.max((o.len ? o.len / 2 : pr) + 1.5, 11 * px);
        ctx.beginPath(); ctx.arc(o.x, o.y, r, 0, 2 * Math.PI);
        ctx.strokeStyle = SELECT_COLOUR; ctx.lineWidth = 2.5 * px; ctx.stroke();
        selPos = [v.ox + o.x * v.s, v.oy - o.y * v.s, r * v.s];
      }
    }

    // the junction zoomed to: a dashed outline around its box, 2 CSS px wide
    const jf = S.junctionFocus;
    if (jf && jf.box) {
      const pad = 3 * px, bx = jf.box;
      ctx.save();
      ctx.setLineDash([6 * px, 4 * px]);
      ctx.strokeStyle = '#fde047'; ctx.lineWidth = 2 * px;
      ctx.strokeRect(bx[0] - pad, bx[1] - pad, bx[2] - bx[0] + 2 * pad, bx[3] - bx[1] + 2 * pad);
      ctx.restore();
    }

    // overlay text in CSS pixels
    ctx.setTransform(d, 0, 0, d, 0, 0);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    if (selPos) label(ctx, String(S.selected), selPos[0] + selPos[2] * 0.75, selPos[1] - selPos[2] - 8, SELECT_COLOUR);
    let text = 't = ' + fmt(t) + ' s';
    if (a && a.signals && a.signals.interval) text += ' · ' + a.signals.interval;
    if (S.follow && which === 'main') text += ' · following ' + S.selected;
    if (which === 'fork' && S.fork) {
      if (S.idx < S.fork.startIndex) text = 'before fork (main run) · ' + text;
      else if (!a) text = 'fork has no tick at this time yet';
      else text = 'fork · ' + text;
    }
    label(ctx, text, 8, 8, '#fff');
  }

  function label(ctx, text, x, y, colour) {
    const w = ctx.measureText(text).width;
    ctx.fillStyle = 'rgba(0,0,0,0.55)';
    ctx.fillRect(x - 4, y - 3, w + 8, 18);
    ctx.fillStyle = colour;
    ctx.fillText(text, x, y);
  }

  function render() {
    S.dirty = false;
    if (!S.net) return;
    applyFollow();
    drawScene(C.main, 'main');
    if (S.fork && !$('scene-fork-box').hidden) drawScene(C.fork, 'fork');
    renderCharts();
  }

  // ------------------------------------------------------------------ picking / view interaction
  /** Nearest actor to a CSS-pixel point on a canvas, within PICK_RADIUS_M (distance to the vehicle's box). */
  function pick(c, cssX, cssY) {
    const v = viewFor(c);
    const wx = (cssX - v.ox) / v.s, wy = (v.oy - cssY) / v.s;
    const fr = c.frame || { veh: [], ped: [] };
    const limit = Math.max(PICK_RADIUS_M, 6 / v.s);
    let best = null, bestD = Infinity;
    for (const o of fr.veh) {
      const dx = wx - o.x, dy = wy - o.y, ch = Math.cos(o.h), sh = Math.sin(o.h);
      const lx = dx * ch + dy * sh, ly = -dx * sh + dy * ch;   // in the vehicle's frame
      const dd = Math.hypot(Math.max(0, Math.abs(lx) - o.len / 2), Math.max(0, Math.abs(ly) - o.wid / 2));
      if (dd < bestD) { bestD = dd; best = o.id; }
    }
    for (const o of fr.ped) {
      const dd = Math.max(0, Math.hypot(wx - o.x, wy - o.y) - 0.3);
      if (dd < bestD) { bestD = dd; best = o.id; }
    }
    return bestD <= limit ? best : null;
  }

  function attachCanvasHandlers(c) {
    const cv = c.el;
    cv.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      S.drag = { x: e.clientX, y: e.clientY, cx: S.view.cx, cy: S.view.cy, s: viewFor(c).s, moved: false };
    });
    cv.addEventListener('click', (e) => {
      if (S.suppressClick) { S.suppressClick = false; return; }
      const r = cv.getBoundingClientRect();
      select(pick(c, e.clientX - r.left, e.clientY - r.top));
    });
    cv.addEventListener('dblclick', () => { fitAll(); });
    cv.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect();
      const mx = e.clientX - r.left, my = e.clientY - r.top;
      const v0 = viewFor(c);
      const wx = (mx - v0.ox) / v0.s, wy = (v0.oy - my) / v0.s;   // keep this world point under the cursor
      S.view.zoom = clampZoom(c, S.view.zoom * Math.exp(-e.deltaY * 0.0015));
      S.dirty = true;
      if (S.follow) return;   // following: zoom about the actor, which stays at the centre
      const s = viewFor(c).s;
      S.view.cx = wx - (mx - c.w / 2) / s;
      S.view.cy = wy + (my - c.h / 2) / s;
      S.dirty = true;
    }, { passive: false });
  }

  window.addEventListener('mousemove', (e) => {
    const g = S.drag;
    if (!g) return;
    const dx = e.clientX - g.x, dy = e.clientY - g.y;
    if (!g.moved && Math.hypot(dx, dy) < 4) return;
    if (!g.moved) setFollow(false, 'stopped following: the view was panned');   // panning by hand ends following
    g.moved = true;
    S.view.cx = g.cx - dx / g.s;
    S.view.cy = g.cy + dy / g.s;
    S.dirty = true;
  });
  window.addEventListener('mouseup', () => {
    if (S.drag && S.drag.moved) S.suppressClick = true;
    S.drag = null;
  });

  // ------------------------------------------------------------------ time control
  /** Show tick i (clamped); resets interpolation. */
  function setTick(i) {
    const n = S.main.ticks.length;
    S.idx = Math.max(0, Math.min(n - 1, Math.round(Number(i) || 0)));
    if (n === 0) S.idx = 0;
    S.frac = 0;
    onTickChanged();
  }

  /** First tick with t >= time (or the last one). */
  function indexAtTime(time) {
    const ticks = S.main.ticks;
    let lo = 0, hi = ticks.length - 1;
    if (hi < 0) return 0;
    if (time > ticks[hi].t) return hi;
    while (lo < hi) { const m = (lo + hi) >> 1; if (ticks[m].t < time - EPS) lo = m + 1; else hi = m; }
    return lo;
  }

  function jumpToTime(time) { setTick(indexAtTime(Number(time))); }

  function onTickChanged() {
    const n = S.main.ticks.length;
    const tl = $('timeline');
    tl.max = String(Math.max(0, n - 1));
    tl.value = String(S.idx);
    $('time').textContent = 't = ' + fmt(currentT()) + ' s';
    $('tick-label').textContent = n ? 'tick ' + S.idx + ' / ' + (n - 1) : 'no ticks';
    renderPanel();
    applyFollow();
    S.dirty = true;
    syncExports();
  }

  function setPlaying(on) {
    S.playing = !!on;
    if (S.playing && S.idx >= S.main.ticks.length - 1 && !S.running) setTick(0);  // replay from start
    $('play').textContent = S.playing ? 'Pause' : 'Play';
  }

  /** Advance the playback clock by simDt simulated seconds, interpolating between ticks. */
  function advance(simDt) {
    const ticks = S.main.ticks, n = ticks.length;
    if (n < 2) { if (!S.running) setPlaying(false); return; }
    const before = S.idx;
    const target = displayT() + simDt;
    let i = S.idx;
    while (i < n - 1 && ticks[i + 1].t <= target + EPS) i++;
    if (i >= n - 1) {
      S.idx = n - 1; S.frac = 0;
      if (!S.running) setPlaying(false);
    } else {
      S.idx = i;
      const span = ticks[i + 1].t - ticks[i].t;
      S.frac = span > 0 ? Math.min(0.999, Math.max(0, (target - ticks[i].t) / span)) : 0;
    }
    if (S.idx !== before) onTickChanged();
    S.dirty = true;
  }

  function frameLoop(ts) {
    const dt = S.lastFrame == null ? 0 : Math.min(0.25, (ts - S.lastFrame) / 1000);
    S.lastFrame = ts;
    if (S.playing) advance(dt * S.speed);
    if (S.dirty) render();
    requestAnimationFrame(frameLoop);
  }

  function stepTick(delta) {
    setPlaying(false);
    setTick(S.idx + delta);
  }

  // ------------------------------------------------------------------ panel
  function select(id) {
    if (id === undefined || id === '') id = null;
    if (typeof id === 'string' && /^-?\d+$/.test(id)) id = Number(id);
    if (id !== S.selected) {   // another actor, or none: following ends
      S.follow = false;
      $('follow-note').textContent = '';
    }
    S.selected = id;
    // preselect the human in the fork box
    const info = id == null ? null : S.main.actors.get(id);
    if (info && info.human && S.mode === 'live') {
      const sel = $('fork-human');
      if (Array.from(sel.options).some((o) => o.value === info.human)) sel.value = info.human;
    }
    renderPanel();
    S.dirty = true;
    render();
    syncExports();
    return id != null && S.main.actors.has(id);
  }

  function setPre(node, text) { if (node.textContent !== text) node.textContent = text; }

  /** Measures of an actor in a tick as a key/value table. */
  function measuresTable(tick, found) {
    const c = found.cols, i = found.i;
    const col = (name) => (c[name] ? c[name][i] : null);
    if (found.kind === 'vehicle') {
      const v = col('v'), lane = (S.net.lanes || [])[col('lane')];
      return kvTable({
        speed: v == null ? '—' : fmt(v) + ' m/s (' + fmt(v * 3.6, 0) + ' km/h)',
        acceleration: fmt(col('a'), 2) + ' m/s²',
        gap: col('gap') == null ? '—' : fmt(col('gap')) + ' m',
        TTC: col('ttc') == null ? '—' : fmt(col('ttc')) + ' s',
        lane: lane ? lane.name : String(col('lane')),
        type: (S.legend.vehicle_types || [])[col('type')] || String(col('type')),
        size: fmt(col('length')) + ' × ' + fmt(col('width')) + ' m',
        'RL-controlled': col('controlled') ? 'yes' : 'no',
        crashed: col('crashed') ? 'YES' : 'no',
        position: '(' + fmt(col('x')) + ', ' + fmt(col('y')) + ') m',
        heading: fmt((col('heading') || 0) * 180 / Math.PI, 0) + '°',
      });
    }
    const cr = (S.net.crossings || [])[col('crossing')];
    return kvTable({
      phase: (S.legend.pedestrian_phases || [])[col('phase')] || String(col('phase')),
      crossing: cr ? cr.name : String(col('crossing')),
      jaywalker: col('jaywalker') ? 'yes' : 'no',
      waited: fmt(col('waited')) + ' s',
      position: '(' + fmt(col('x')) + ', ' + fmt(col('y')) + ') m',
    });
  }

  function intentNode(tick, identity) {
    if (!identity) return el('span', { class: 'muted' }, 'rule-based (no intent)');
    const intent = tick && tick.intents ? tick.intents[identity] : null;
    return intent ? kvTable(intent) : el('span', { class: 'muted' }, 'no intent at this time');
  }

  function decisionMeta(d, id) {
    const parts = [
      el('div', null, el('b', null, 't = ' + fmt(d.time_s) + ' s'), ' · trigger ', el('b', null, d.trigger || '—'),
        ' · source ', el('span', { class: 'badge src-' + d.source }, d.source || '—')),
    ];
    if (d.fallback) parts.push(el('div', { class: 'warn' }, 'fallback: ' + d.fallback + (d.detail ? ' (' + d.detail + ')' : '')));
    else if (d.detail) parts.push(el('div', { class: 'muted' }, d.detail));
    if (d.effects && d.effects.length) parts.push(el('div', null, 'effects: ' + d.effects.join('; ')));
    if (id != null && d.actor != null && d.actor !== id) {
      parts.push(el('div', { class: 'muted' }, '(made while this human drove actor ' + d.actor + ')'));
    }
    return parts;
  }

  function memoriesNode(d) {
    if (!d || !d.memories || !d.memories.length) return el('span', { class: 'muted' }, 'none');
    return el('ul', { class: 'memories' }, d.memories.map((m) => el('li', { title: m.id || '' }, m.text)));
  }

  function renderPanel() {
    const id = S.selected;
    updateFollowButton();
    const hint = $('panel-presence');
    const blocks = ['panel-persona', 'panel-intent', 'panel-memories', 'panel-measures', 'panel-hazards'];
    if (id == null || !S.net) {
      $('panel-title').textContent = 'No actor selected';
      hint.className = 'muted';
      hint.textContent = 'Click a vehicle or pedestrian in the scene.';
      blocks.forEach((b) => setContent($(b), '—'));
      setContent($('panel-decision-meta'), '—');
      $('panel-decision-body').hidden = true;
      $('panel-fork').hidden = true;
      updateInterviewBox(null);
      return;
    }
    const tick = currentTick();
    const t = currentT();
    const found = findActor(tick, id);
    const info = S.main.actors.get(id);
    const kind = found ? found.kind : (info ? info.kind : 'actor');
    const identity = found ? (found.cols.human ? found.cols.human[found.i] : null) : (info ? info.human : null);

    $('panel-title').textContent = kind + ' ' + id + (identity ? ' — ' + identity : '');
    if (found) {
      hint.className = 'muted';
      hint.textContent = 'in the scene at t = ' + fmt(t) + ' s';
    } else {
      hint.className = 'warn';
      hint.textContent = info
        ? 'not in the scene at t = ' + fmt(t) + ' s (seen ' + fmt(info.first) + '–' + fmt(info.last) + ' s)'
        : 'unknown actor: not in the scene at t = ' + fmt(t) + ' s';
    }

    // persona
    const human = identity ? S.humans.get(identity) : null;
    if (human) {
      setContent($('panel-persona'),
        el('div', null, el('b', null, human.name || identity), ' · ', human.role || '', ' · persona ',
          el('code', null, human.persona || '—'), ' · ', human.llm ? 'LLM-driven' : 'rule-based'),
        el('p', null, human.summary || ''),
        el('div', null, el('span', { class: 'label' }, 'trip purpose: '), human.trip_purpose || '—'),
        el('details', { open: '' }, el('summary', null, 'traits'), kvTable(human.traits)));
    } else if (identity) {
      setContent($('panel-persona'), el('div', null, identity));
    } else {
      setContent($('panel-persona'), el('span', { class: 'muted' }, 'background traffic (rule-based)'));
    }

    // intent
    setContent($('panel-intent'), intentNode(tick, identity));

    // latest decision at or before t
    const d = latestDecision('main', identity, t);
    if (d) {
      setContent($('panel-decision-meta'), decisionMeta(d, id));
      $('panel-decision-body').hidden = false;
      setPre($('panel-prompt'), d.prompt || '');
      setPre($('panel-answer'), d.answer || '');
      const reason = d.intent && d.intent.reason;
      setContent($('panel-reason'), el('span', { class: 'label' }, 'reason: '), reason || '—');
    } else {
      setContent($('panel-decision-meta'), el('span', { class: 'muted' },
        !identity ? 'none (rule-based actor)'
          : human && !human.llm ? 'none (rule-based human, no LLM decisions)' : 'no decision yet at this time'));
      $('panel-decision-body').hidden = true;
      setPre($('panel-prompt'), '');
      setPre($('panel-answer'), '');
    }
    setContent($('panel-memories'), memoriesNode(d));

    // measures
    setContent($('panel-measures'), found ? measuresTable(tick, found)
      : el('span', { class: 'warn' }, 'not present at t = ' + fmt(t) + ' s'));

    // hazards involving this actor
    const hz = sessionHazards('main').filter((h) => (h.actors || []).includes(id))
      .sort((p, q) => p.start_s - q.start_s);
    setContent($('panel-hazards'), hz.length ? el('ul', { class: 'hazards' }, hz.map((h) =>
      el('li', { class: 'clickable', title: 'jump to ' + fmt(h.start_s) + ' s', onclick: () => jumpToTime(h.start_s) },
        el('span', { class: 'sev sev-' + h.severity }, h.severity), ' ', el('b', null, h.kind),
        ' (' + h.category + ') at ' + fmt(h.start_s) + (h.end_s > h.start_s ? '–' + fmt(h.end_s) : '') + ' s' +
        (h.worst != null ? ', worst ' + fmt(h.worst, 2) : '')))) : el('span', { class: 'muted' }, 'none'));

    renderForkPanel(id, t);
    updateInterviewBox(identity || null);
  }

  /** The same actor in the fork (compact): measures, intent, latest fork decision. */
  function renderForkPanel(id, t) {
    const box = $('panel-fork');
    if (!S.fork) { box.hidden = true; return; }
    box.hidden = false;
    const body = $('panel-fork-body');
    if (S.idx < S.fork.startIndex) {
      setContent(body, el('span', { class: 'muted' }, 'the fork starts at t = ' + fmt(S.fork.startT) + ' s'));
      return;
    }
    const ft = sceneTick('fork', S.idx);
    const found = findActor(ft, id);
    if (!found) { setContent(body, el('span', { class: 'warn' }, 'not present in the fork at t = ' + fmt(t) + ' s')); return; }
    const identity = found.cols.human ? found.cols.human[found.i] : null;
    const d = latestDecision('fork', identity, t);
    const parts = [measuresTable(ft, found), el('div', { class: 'label' }, 'intent'), intentNode(ft, identity)];
    if (d) {
      parts.push(el('div', { class: 'label' }, 'latest decision'), ...decisionMeta(d, id),
        el('pre', { class: 'small' }, d.answer || ''),
        el('div', null, el('span', { class: 'label' }, 'reason: '), (d.intent && d.intent.reason) || '—'));
    }
    setContent(body, parts);
  }

  // ------------------------------------------------------------------ live: interview
  function updateInterviewBox(identity) {
    const box = $('interview');
    const show = S.mode === 'live' && !!identity;
    box.hidden = !show;
    if (identity !== S.panelActor) {   // new human: clear the previous answer
      S.panelActor = identity;
      setContent($('interview-answer'));
    }
  }

  async function askInterview() {
    const human = S.panelActor;
    const q = $('interview-question').value.trim();
    if (!human) return;
    if (!q) { showMessage('Type a question first.'); return; }
    const out = $('interview-answer');
    const btn = $('interview-ask');
    setContent(out, el('span', { class: 'muted' }, 'asking...'));
    btn.disabled = true;
    clearMessage();
    try {
      const r = await api('/api/interview', { human: human, question: q }, 'Interview');
      if (S.panelActor !== human) return;   // selection changed meanwhile
      setContent(out,
        el('div', { class: 'muted' }, 'Q (t = ' + fmt(r.t) + ' s): ' + (r.question || q)),
        el('div', { class: 'answer' }, r.answer || ''),
        r.fallback ? el('div', { class: 'warn' }, 'fallback: ' + r.fallback) : null,
        el('div', { class: 'label' }, 'memories recalled'),
        memoriesNode(r));
    } catch (e) {
      setContent(out, el('span', { class: 'warn' }, 'failed: ' + e.message));
    } finally {
      btn.disabled = false;
    }
  }

  // ------------------------------------------------------------------ live: stepping
  /** Fetch new ticks for main and fork; follow the newest tick if asked or if the user was at the end. */
  async function refreshTicks(follow) {
    const wasAtEnd = S.idx >= S.main.ticks.length - 1;
    const alerts = S.main.alerts.size, collisions = S.collisions.length;
    await fetchTicks(S.main);
    if (S.fork) await fetchTicks(S.fork);
    buildMarks();   // new hazards, and the duration changed so marks move
    if (S.main.alerts.size !== alerts) buildEvents();
    if (S.collisions.length !== collisions) buildIncidents();
    if (follow || wasAtEnd) setTick(S.main.ticks.length - 1);
    else onTickChanged();
  }

  async function doStep(seconds, follow) {
    await api('/api/step', { seconds: seconds }, 'Step');
    await refreshTicks(follow);
  }

  function updateLiveButtons() {
    $('run').textContent = S.running ? 'Stop' : 'Run';
    $('step').disabled = S.running || S.busy;
    $('fork-apply').disabled = S.running || S.busy;
  }

  async function onStep() {
    if (S.busy || S.running) return;
    S.busy = true; updateLiveButtons(); clearMessage();
    setPlaying(false);
    try { await doStep(0.5, true); } catch (e) { /* message shown */ }
    S.busy = false; updateLiveButtons();
  }

  async function onRunToggle() {
    if (S.running) { S.running = false; updateLiveButtons(); return; }
    if (S.busy) return;
    S.running = true; S.busy = true; updateLiveButtons(); clearMessage();
    setPlaying(false);
    setTick(S.main.ticks.length - 1);
    while (S.running) {
      try { await doStep(1.0, true); } catch (e) { S.running = false; break; }
      await new Promise((r) => setTimeout(r, 30));   // let the page breathe between steps
    }
    S.busy = false; updateLiveButtons();
    setTick(S.main.ticks.length - 1);
  }

  // ------------------------------------------------------------------ live: fork
  function updateForkFields() {
    const kind = $('fork-kind').value;
    $('fork-persona-row').hidden = kind !== 'persona';
    $('fork-friction-row').hidden = kind !== 'friction';
    $('fork-fault-row').hidden = kind !== 'fault';
  }

  function forkChange() {
    const kind = $('fork-kind').value;
    if (kind === 'persona') {
      return { kind: 'persona', human: $('fork-human').value, persona: $('fork-persona').value };
    }
    if (kind === 'friction') return { kind: 'friction', value: parseFloat($('fork-friction').value) };
    const fk = $('fork-fault').value;
    const fault = { kind: fk };
    if (!/^signal/.test(fk)) fault.actor = 'closest_follower';   // signal faults have no actor
    return { kind: 'fault', fault: fault };
  }

  async function onForkApply() {
    if (S.busy || S.running || !S.main.ticks.length) return;
    S.busy = true; updateLiveButtons(); clearMessage();
    setPlaying(false);
    const tick = S.idx;
    $('fork-status').textContent = 'forking at t = ' + fmt(currentT()) + ' s…';
    try {
      const r = await api('/api/fork', { tick: tick, change: forkChange() }, 'Fork');
      await loadFork({ description: r.description, tick: tick });
      $('fork-status').textContent = 'fork ready (' + S.fork.ticks.length + ' ticks)';
    } catch (e) {
      $('fork-status').textContent = 'fork failed';
    }
    S.busy = false; updateLiveButtons();
  }

  /** (Re)load the fork's ticks and show the second canvas. */
  async function loadFork(info) {
    const f = Object.assign(newSession('fork'), { description: info.description || 'fork', startIndex: info.tick || 0, startT: 0 });
    S.fork = f;
    await fetchTicks(f);
    // align on t: the fork's first tick shares t with a main tick
    if (f.ticks.length) {
      const t0 = f.ticks[0].t;
      const k = S.main.ticks.findIndex((m) => Math.abs(m.t - t0) < 1e-3);
      if (k >= 0) f.startIndex = k;
      f.startT = t0;
    } else {
      f.startT = (S.main.ticks[f.startIndex] || { t: 0 }).t;
    }
    $('scene-fork-box').hidden = false;
    $('fork-caption').textContent = 'fork from t = ' + fmt(f.startT) + ' s: ' + f.description;
    $('scene-caption').textContent = 'main run';
    C.fork.cache = null;
    resizeCanvases();
    onTickChanged();
    render();
  }

  // ------------------------------------------------------------------ charts
  /*
   * Time series drawn with plain canvas under the timeline, on its time axis (x = t / duration).
   * The run's series are computed once per tick as ticks arrive (ingest); the selected actor's
   * when it is selected (or new ticks arrive). The strips are drawn once into an offscreen canvas;
   * a redraw (every frame while playing) only copies it and draws the cursor and the current values.
   */
  const CHART_STRIP_PX = 52;        // [CSS px] height of one strip
  const MOVING_MS = 0.5;            // [m/s] a vehicle faster than this is "moving" (flow proxy)
  const HAZARD_WINDOW_S = 10;       // [s] hazards counted over the last this many seconds
  const TTC_CHART_MAX_S = 15;       // [s] TTC axis cap (a far leader would flatten the rest)
  const RUN_CHARTS = [
    { key: 'speed', label: 'mean speed', unit: 'm/s', colour: '#2563eb', digits: 1 },
    { key: 'count', label: 'vehicles', unit: '', colour: '#374151', digits: 0 },
    { key: 'moving', label: 'flow proxy: moving (v > 0.5 m/s)', unit: 'veh', colour: '#16a34a', digits: 0 },
    { key: 'density', label: 'density', unit: 'veh/km lane', colour: '#b45309', digits: 1 },
    { key: 'hazards', label: 'hazards / 10 s', unit: '', colour: '#e53935', digits: 0 },
  ];
  const ACTOR_CHARTS = [
    { key: 'speed', label: 'speed', unit: 'm/s', colour: SELECT_COLOUR, digits: 1 },
    { key: 'gap', label: 'gap to leader', unit: 'm', colour: '#0891b2', digits: 1 },
    { key: 'ttc', label: 'TTC', unit: 's', colour: '#e53935', digits: 1, cap: TTC_CHART_MAX_S },
  ];

  function newChartSeries() {
    return { t: [], speed: [], count: [], moving: [], density: [], hazards: [], hazardEvents: [], hzFrom: 0, hzSum: 0 };
  }

  const CH = {
    run: newChartSeries(),
    laneKm: 0,               // [km] sum of the lane centre lines
    actor: null,             // {id, n, t, idx, speed, gap, ttc}
    run_c: null, actor_c: null,
  };

  function polylineLength(pts) {
    let len = 0;
    for (let k = 1; k < (pts || []).length; k++) len += Math.hypot(pts[k][0] - pts[k - 1][0], pts[k][1] - pts[k - 1][1]);
    return len;
  }

  function laneKilometres(net) {
    return (net.lanes || []).reduce((sum, l) => sum + polylineLength(l.centre), 0) / 1000;
  }

  /** Append one main tick to the run's series (hazards: a rolling count over the last HAZARD_WINDOW_S). */
  function chartAppend(tick) {
    const r = CH.run, V = tick.vehicles || {};
    const vs = (V.v || []).filter((v) => v != null);
    const n = (V.id || []).length;
    r.t.push(tick.t);
    r.count.push(n);
    r.speed.push(vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : null);
    r.moving.push(vs.filter((v) => v > MOVING_MS).length);
    r.density.push(CH.laneKm > 0 ? n / CH.laneKm : null);
    r.hazardEvents.push((tick.hazards || []).length);
    r.hzSum += r.hazardEvents[r.hazardEvents.length - 1];
    while (r.hzFrom < r.t.length && r.t[r.hzFrom] <= tick.t - HAZARD_WINDOW_S + EPS) r.hzSum -= r.hazardEvents[r.hzFrom++];
    r.hazards.push(r.hzSum);
  }

  /** The selected vehicle's speed / gap / TTC at the ticks it is in (cached until the selection or the ticks change). */
  function actorSeries() {
    const id = S.selected, ticks = S.main.ticks;
    if (id == null) return null;
    if (CH.actor && CH.actor.id === id && CH.actor.n === ticks.length) return CH.actor;
    const a = { id: id, n: ticks.length, t: [], idx: [], speed: [], gap: [], ttc: [] };
    ticks.forEach((tick, k) => {
      const i = tickIndex(tick).v.get(id);
      if (i === undefined) return;
      const V = tick.vehicles, col = (name) => (V[name] ? V[name][i] : null);
      a.t.push(tick.t); a.idx.push(k);
      a.speed.push(col('v')); a.gap.push(col('gap')); a.ttc.push(col('ttc'));
    });
    CH.actor = a;
    return a;
  }

  function makeChartCanvas(id) {
    const c = { el: $(id), w: 0, h: 0, dpr: 1, bg: null, bgKey: '' };
    c.ctx = c.el.getContext('2d');
    c.el.addEventListener('click', (e) => {
      const r = c.el.getBoundingClientRect();
      const ticks = S.main.ticks;
      if (!ticks.length || r.width <= 0) return;
      setPlaying(false);
      jumpToTime((e.clientX - r.left) / r.width * ticks[ticks.length - 1].t);
    });
    return c;
  }

  /** Size a chart canvas to its box's width and `strips` strips (backing store * devicePixelRatio). */
  function sizeChart(c, strips) {
    const w = Math.max(200, Math.floor(c.el.clientWidth || c.el.parentElement.clientWidth));
    const h = strips * CHART_STRIP_PX, dpr = window.devicePixelRatio || 1;
    if (w === c.w && h === c.h && dpr === c.dpr) return;
    c.w = w; c.h = h; c.dpr = dpr;
    c.el.style.height = h + 'px';
    c.el.width = Math.round(w * dpr);
    c.el.height = Math.round(h * dpr);
    c.bgKey = '';
  }

  /** Largest value of a strip (at most its cap; null: no values), and the top of its y axis [0, top]. */
  function stripRange(def, values) {
    let m = null;
    for (const v of values) if (v != null && (m == null || v > m)) m = v;
    if (m != null && def.cap) m = Math.min(m, def.cap);
    return { max: m, top: m > 0 ? m * 1.1 : 1 };
  }

  /** Draw the strips (axes, labels, lines) into c.bg; `idx` (optional) breaks the line where ticks are missing. */
  function drawChartBackground(c, defs, series, idx) {
    const bg = c.bg || (c.bg = document.createElement('canvas'));
    bg.width = c.el.width; bg.height = c.el.height;
    const ctx = bg.getContext('2d');
    ctx.setTransform(c.dpr, 0, 0, c.dpr, 0, 0);
    ctx.clearRect(0, 0, c.w, c.h);
    ctx.font = '10px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    const ts = series.t;
    defs.forEach((def, k) => {
      const top = k * CHART_STRIP_PX, h = CHART_STRIP_PX - 18, y0 = top + CHART_STRIP_PX - 3;   // labels above the plot
      const vals = series[def.key], range = stripRange(def, vals), ymax = range.top;
      ctx.fillStyle = k % 2 ? '#f8f9fb' : '#fff';
      ctx.fillRect(0, top, c.w, CHART_STRIP_PX);
      ctx.strokeStyle = '#e1e4e8';
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(0, y0 + 0.5); ctx.lineTo(c.w, y0 + 0.5); ctx.stroke();
      ctx.strokeStyle = def.colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let pen = false;
      for (let j = 0; j < vals.length; j++) {
        const v = vals[j];
        if (v == null || (idx && j > 0 && idx[j] !== idx[j - 1] + 1)) pen = false;
        if (v == null) continue;
        const x = timeFraction(ts[j]) * c.w, y = y0 - Math.min(v, ymax) / ymax * h;
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true;
      }
      ctx.stroke();
      const note = range.max == null ? 'no data' : 'max ' + fmt(range.max, def.digits) + (def.cap && range.max >= def.cap ? '+' : '');
      const nw = ctx.measureText(note).width;
      ctx.fillStyle = 'rgba(255,255,255,0.8)';
      ctx.fillRect(c.w - nw - 7, top + 1, nw + 6, 12);
      ctx.fillStyle = '#6b7280';
      ctx.fillText(note, c.w - nw - 4, top + 2);
    });
  }

  /** Copy the cached strips, then the cursor at the display time and each strip's current value. */
  function drawChart(c, defs, series, idx, key) {
    if (c.bgKey !== key) { drawChartBackground(c, defs, series, idx); c.bgKey = key; }
    const ctx = c.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.el.width, c.el.height);
    ctx.drawImage(c.bg, 0, 0);
    ctx.setTransform(c.dpr, 0, 0, c.dpr, 0, 0);
    const x = Math.round(timeFraction(displayT()) * c.w) + 0.5;
    ctx.strokeStyle = '#1d2330';
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, c.h); ctx.stroke();
    // value at the current tick (the latest sample at or before it)
    let j = -1;
    const ts = series.t, now = currentT();
    for (let lo = 0, hi = ts.length; lo < hi;) { const m = (lo + hi) >> 1; if (ts[m] <= now + EPS) { j = m; lo = m + 1; } else hi = m; }
    const present = j >= 0 && (!idx || idx[j] === S.idx);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    defs.forEach((def, k) => {
      const v = present ? series[def.key][j] : null;
      const text = def.label + ': ' + (v == null ? '—' : fmt(v, def.digits) + (def.unit ? ' ' + def.unit : ''));
      const w = ctx.measureText(text).width;
      ctx.fillStyle = 'rgba(255,255,255,0.8)';
      ctx.fillRect(2, k * CHART_STRIP_PX + 1, w + 6, 14);
      ctx.fillStyle = def.colour;
      ctx.fillText(text, 5, k * CHART_STRIP_PX + 2);
    });
  }

  function renderCharts() {
    if (!CH.run_c) return;
    const n = S.main.ticks.length;
    sizeChart(CH.run_c, RUN_CHARTS.length);
    drawChart(CH.run_c, RUN_CHARTS, CH.run, null, n + '|' + CH.run_c.w + '|' + CH.run_c.dpr);
    const a = actorSeries();
    const box = $('actor-charts-box');
    const shown = !!a && S.main.actors.has(a.id) && S.main.actors.get(a.id).kind === 'vehicle';
    if (box.hidden === shown) {
      box.hidden = !shown;
      if (shown) CH.actor_c.bgKey = '';
    }
    if (!shown) return;
    $('actor-charts-title').textContent = 'Selected vehicle ' + a.id + ' (' + a.t.length + ' ticks)';
    sizeChart(CH.actor_c, ACTOR_CHARTS.length);
    drawChart(CH.actor_c, ACTOR_CHARTS, a, a.idx, a.id + '|' + n + '|' + CH.actor_c.w + '|' + CH.actor_c.dpr);
  }

  function chartExports() {
    const r = CH.run, a = actorSeries();
    return {
      t: r.t, speed: r.speed, count: r.count, moving: r.moving, density: r.density, hazards: r.hazards,
      laneKm: CH.laneKm,
      actor: a ? { id: a.id, t: a.t, speed: a.speed, gap: a.gap, ttc: a.ttc } : null,
      actorShown: !$('actor-charts-box').hidden,
    };
  }

  // ------------------------------------------------------------------ marks, alerts, summary
  /** Position of a time on the timeline: time / duration (duration = t of the last tick). */
  function timeFraction(time) {
    const ticks = S.main.ticks;
    const duration = ticks.length ? ticks[ticks.length - 1].t : 0;
    if (duration <= 0) return 0;
    return Math.min(1, Math.max(0, time / duration));
  }

  /** One .mark per hazard/violation/incident/anomaly under the timeline; alerts in a second row. */
  function buildMarks() {
    const box = $('marks');
    const hz = Array.from(S.main.hazards.values()).sort((a, b) => a.start_s - b.start_s);
    setContent(box, hz.map((h) => {
      const m = el('div', {
        class: 'mark sev-' + h.severity + ' cat-' + h.category,
        title: h.kind + ' ' + h.severity + ' at ' + fmt(h.start_s) + ' s',
        'data-t': String(h.start_s),
      });
      m.style.left = (timeFraction(h.start_s) * 100).toFixed(3) + '%';
      const incident = h.kind === 'collision' ? collisionFor(h) : null;
      if (incident) {
        m.classList.add('collision');
        m.setAttribute('data-incident', String(incident.id));
        m.title += ' · click, then Why? below';
      }
      m.addEventListener('click', () => { jumpToTime(h.start_s); if (incident) focusIncident(incident.id); });
      return m;
    }));
    buildCauseMarks();
    const abox = $('alert-marks');
    setContent(abox, sortedAlerts().map((a) => {
      const m = el('div', {
        class: 'alert-mark sev-' + ((a.triage && a.triage.severity) || 'medium'),
        title: 'alert ' + ((a.triage && a.triage.severity) || '') + ' at ' + fmt(a.time_s) + ' s',
        'data-t': String(a.time_s),
      });
      m.style.left = (timeFraction(a.time_s) * 100).toFixed(3) + '%';
      m.addEventListener('click', () => jumpToTime(a.time_s));
      return m;
    }));
  }

  function sortedAlerts() {
    return Array.from(S.main.alerts.values()).sort((a, b) => a.time_s - b.time_s);
  }

  function buildEvents() {
    const list = sortedAlerts();
    setContent($('events'), list.length ? list.map((a) => {
      const tri = a.triage || {};
      const kinds = (a.events || []).map((e) => e.kind + ' (' + e.severity + ')').join(', ');
      return el('div', { class: 'event clickable', title: 'jump to ' + fmt(a.time_s) + ' s', onclick: () => jumpToTime(a.time_s) },
        el('div', null, el('b', null, 't = ' + fmt(a.time_s) + ' s'), ' ',
          el('span', { class: 'sev sev-' + tri.severity }, tri.severity || '?'), ' ', kinds),
        el('div', null, tri.explanation || ''),
        tri.mitigation && tri.mitigation !== 'none' ? el('div', { class: 'muted' }, 'mitigation: ' + tri.mitigation) : null);
    }) : el('span', { class: 'muted' }, 'No alerts.'));
  }

  function buildSummary() {
    const sm = S.run.summary;
    if (!sm) { $('summary-box').hidden = true; return; }
    $('summary-box').hidden = false;
    const flat = {};
    for (const [k, v] of Object.entries(sm)) if (v == null || typeof v !== 'object') flat[k] = v;
    setContent($('summary'), el('details', null, el('summary', null,
      fmt(sm.simulated_s) + ' s simulated · ' + (sm.collisions || 0) + ' collisions · ' +
      (sm.near_misses || 0) + ' near misses · ' + (sm.llm_decisions || 0) + ' LLM decisions'), kvTable(flat)));
  }

  // ------------------------------------------------------------------ collisions: why did it happen?
  /*
   * Each collision of the main run is listed with "Why?": the server forks the world from
   * before it once per candidate cause taken away (causes/counterfactual.py, cached in the
   * run's causes.json) and answers explain's JSON, shown as a table. On the timeline, an
   * explained collision gets its fork point and, per but-for cause, a band from there to it.
   */
  function addCollision(e) {
    S.collisions.push({ id: S.collisions.length, time_s: Number(e.time_s), actors: (e.actors || []).slice().sort((a, b) => a - b) });
  }

  /** The collision a collision hazard reports: the same pair, about the same time (or null). */
  function collisionFor(h) {
    const pair = (h.actors || []).slice().sort((a, b) => a - b).join(',');
    return S.collisions.find((c) => c.actors.join(',') === pair && Math.abs(c.time_s - h.start_s) <= COLLISION_MATCH_S) || null;
  }

  function addCauses(result) {
    for (const incident of (result && result.incidents) || []) S.causes.set(incident.id, incident);
  }

  function collisionText(c) {
    return 't = ' + fmt(c.time_s, 2) + ' s · ' + c.actors.join(' and ') + ' collided';
  }

  /** The list of collisions, each with its Why? button and, once explained, its causes. */
  function buildIncidents() {
    $('incidents-box').hidden = !S.collisions.length;
    setContent($('incidents'), S.collisions.map(incidentEntry));
  }

  function incidentEntry(c) {
    const busy = S.explaining === c.id;
    const why = el('button', { type: 'button', class: 'why', 'data-incident': String(c.id),
      title: 'fork the run from before this collision without each candidate cause (takes seconds)' },
    busy ? 'explaining…' : 'Why?');
    why.disabled = S.explaining != null;
    why.addEventListener('click', () => explainIncident(c.id));
    const incident = S.causes.get(c.id);
    return el('div', { class: 'incident' + (S.focusIncident === c.id ? ' focused' : ''), id: 'incident-' + c.id },
      el('div', { class: 'row' },
        el('span', { class: 'clickable', title: 'jump to ' + fmt(c.time_s) + ' s', onclick: () => jumpToTime(c.time_s) },
          el('b', null, 'collision ' + c.id), ' ', collisionText(c)),
        incident ? null : why,
        busy ? el('span', { class: 'muted' }, 'forking the world, one run per cause…') : null),
      incident ? causesNode(incident) : null);
  }

  /** An explained incident: where it forks, how often it happens, the supervisor's triage told its causes, and the causes table. */
  function causesNode(incident) {
    const often = incident.happens_in ? '; it happens in ' + incident.happens_in + ' futures' : '';
    return el('div', { class: 'causes' },
      el('div', { class: 'muted' }, 'forked at t = ' + fmt(incident.fork_at_s, 2) + ' s' + often + '. ',
        el('span', { class: 'clickable link', onclick: () => jumpToTime(incident.fork_at_s) }, 'jump to the fork point')),
      incident.triage ? el('div', { class: 'triage' }, incident.triage) : null,
      causesTable(incident.causes || []));
  }

  function causesTable(causes) {
    if (!causes.length) return el('div', { class: 'muted' }, 'No candidate cause.');
    const head = el('tr', null, ['cause', 'what', 'class', 'prevented', 'evidence'].map((h) => el('th', null, h)));
    return el('table', { class: 'causes-table' }, el('thead', null, head), el('tbody', null, causes.map((c) => el('tr', null,
      el('td', null, el('code', null, c.cause)),
      el('td', null, c.what || ''),
      el('td', { class: 'cls cls-' + c.class }, CAUSE_CLASSES[c.class] || c.class),
      el('td', { class: 'num' }, c.prevented || ''),
      el('td', null, (c.evidence_runs || []).map(evidenceText).join('; '))))));
  }

  function evidenceText(run) {
    return run.collided_at_s == null ? 'no collision' : 'collided at ' + fmt(run.collided_at_s, 2) + ' s';
  }

  /** Ask the server why collision `id` happened; the table and the timeline show the answer. */
  async function explainIncident(id) {
    if (S.explaining != null) return;
    S.explaining = id;
    clearMessage();
    buildIncidents();
    syncExports();
    try {
      addCauses(await api('/api/explain', { incident: id }, 'Why collision ' + id));
    } catch (e) { /* the message is shown */ }
    S.explaining = null;
    buildIncidents();
    buildCauseMarks();
    syncExports();
  }

  /** A collision picked on the timeline: its entry is highlighted and scrolled to. */
  function focusIncident(id) {
    S.focusIncident = id;
    buildIncidents();
    const entry = $('incident-' + id);
    if (entry) entry.scrollIntoView({ block: 'nearest' });
  }

  /** Under the timeline, per explained collision: the fork point and a band per but-for cause up to the collision. */
  function buildCauseMarks() {
    const box = $('cause-marks');
    const incidents = Array.from(S.causes.values()).sort((a, b) => a.id - b.id);
    let rows = 1;
    const marks = [];
    for (const incident of incidents) {
      const butFor = (incident.causes || []).filter((c) => c.class === 'but_for');
      rows = Math.max(rows, butFor.length);
      butFor.forEach((c, k) => marks.push(causeBand(incident, c, k)));
      marks.push(forkMark(incident));
    }
    box.hidden = !incidents.length;
    box.style.height = (rows * 6 + 2) + 'px';
    setContent(box, marks);
  }

  function causeBand(incident, cause, row) {
    const a = timeFraction(incident.fork_at_s), b = timeFraction(incident.time_s);
    const band = el('div', { class: 'cause-band', 'data-incident': String(incident.id), 'data-cause': cause.cause,
      title: 'collision ' + incident.id + ': but for ' + cause.cause + ' (' + cause.what + ') it does not happen; prevented ' +
        cause.prevented + ' · from the fork at ' + fmt(incident.fork_at_s) + ' s to the collision at ' + fmt(incident.time_s) + ' s' });
    band.style.left = (a * 100).toFixed(3) + '%';
    band.style.width = (Math.max(0, b - a) * 100).toFixed(3) + '%';
    band.style.top = (1 + row * 6) + 'px';
    band.addEventListener('click', () => { jumpToTime(incident.fork_at_s); focusIncident(incident.id); });
    return band;
  }

  function forkMark(incident) {
    const m = el('div', { class: 'fork-mark', 'data-incident': String(incident.id), 'data-t': String(incident.fork_at_s),
      title: 'collision ' + incident.id + ': forked here, t = ' + fmt(incident.fork_at_s, 2) + ' s' });
    m.style.left = (timeFraction(incident.fork_at_s) * 100).toFixed(3) + '%';
    m.addEventListener('click', () => { jumpToTime(incident.fork_at_s); focusIncident(incident.id); });
    return m;
  }

  // ------------------------------------------------------------------ test contract
  const inspector = window.inspector = {
    ready: false,
    tickIndex: 0,
    time: 0,
    ticks: S.main.ticks,
    selected: null,
    fork: null,
    mode: null,
    select: (id) => select(id),
    /** [px, py] of actor id's centre in CSS px relative to the main canvas's top-left, or null. */
    screenPosition: (id) => {
      if (!C.main || !S.net) return null;
      const fr = computeFrame(sceneTick('main', S.idx), S.frac > 0 ? sceneTick('main', S.idx + 1) : null, S.frac);
      const o = fr.veh.find((q) => q.id === id) || fr.ped.find((q) => q.id === id);
      if (!o) return null;
      const v = viewFor(C.main);
      return [v.ox + o.x * v.s, v.oy - o.y * v.s];
    },
    setTick: (i) => { setPlaying(false); setTick(i); },   // convenience for tests / console
    /** [x, y] world position [m] of actor id in the main scene now (as drawn), or null. */
    worldPosition: (id) => { const p = actorPosition(id); return p ? [p.x, p.y] : null; },
    /** The view: centre [m] and zoom (1 = fit all). */
    get view() { return { cx: S.view.cx, cy: S.view.cy, zoom: S.view.zoom }; },
    /** [xmin, ymin, xmax, ymax] of the world [m] the main canvas shows. */
    visibleBounds: () => (C.main ? visibleBounds(C.main) : null),
    get follow() { return S.follow; },
    setFollow: (on) => { setFollow(on); render(); return S.follow; },
    /** The junction list: [{id, at: [x, y], box, edges}]. */
    get junctions() { return S.junctions; },
    zoomToJunction: (query) => zoomToJunction(query),
    fitAll: () => { fitAll(); render(); },
    /** The charts' series: run-wide (one value per main tick) and the selected vehicle's (see renderCharts). */
    get charts() { return chartExports(); },
    /** The main run's collisions [{id, time_s, actors}] and the explained ones (explain's incidents). */
    get collisions() { return S.collisions; },
    get causes() { return Array.from(S.causes.values()).sort((a, b) => a.id - b.id); },
    /** The collision id being explained now, or null. */
    get explaining() { return S.explaining; },
    explain: (id) => explainIncident(id),
    header: null,
  };

  function syncExports() {
    inspector.tickIndex = S.idx;
    inspector.time = currentT();
    inspector.ticks = S.main.ticks;
    inspector.selected = S.selected;
    inspector.mode = S.mode;
    inspector.header = S.header;
    inspector.fork = S.fork ? { ticks: S.fork.ticks, description: S.fork.description, tick: S.fork.startIndex } : null;
    inspector.ready = S.ready;
  }

  // ------------------------------------------------------------------ setup
  function bindControls() {
    $('message-close').addEventListener('click', clearMessage);
    $('play').addEventListener('click', () => setPlaying(!S.playing));
    $('speed').addEventListener('change', (e) => { S.speed = parseFloat(e.target.value) || 1; });
    $('timeline').addEventListener('input', (e) => setTick(e.target.value));
    $('step').addEventListener('click', onStep);
    $('run').addEventListener('click', onRunToggle);
    $('interview-ask').addEventListener('click', askInterview);
    $('interview-question').addEventListener('keydown', (e) => { if (e.key === 'Enter') askInterview(); });
    $('fork-kind').addEventListener('change', updateForkFields);
    $('fork-apply').addEventListener('click', onForkApply);
    $('follow').addEventListener('click', toggleFollow);
    $('fit-all').addEventListener('click', fitAll);
    const junction = $('junction');
    junction.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); zoomToJunction(junction.value); } });
    junction.addEventListener('input', (e) => {   // picked from the list: zoom at once
      if (!junction.value.trim()) setJunctionFocus(null);
      else if (e.inputType === undefined || e.inputType === 'insertReplacementText') {
        const j = S.junctions.find((q) => q.id === junction.value);
        if (j) zoomToJunction(j);
      }
    });

    // keyboard: space = play/pause, arrows = one tick, f = follow the selected actor (not while typing in a field)
    document.addEventListener('keydown', (e) => {
      const tg = e.target, tag = tg && tg.tagName;
      const isRange = tag === 'INPUT' && tg.type === 'range';
      if ((tag === 'INPUT' && !isRange) || tag === 'SELECT' || tag === 'TEXTAREA') return;
      if (e.key === ' ' || e.code === 'Space') {
        e.preventDefault();
        setPlaying(!S.playing);
      } else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && !isRange) {   // the range steps itself
        e.preventDefault();
        stepTick(e.key === 'ArrowLeft' ? -1 : 1);
      } else if ((e.key === 'f' || e.key === 'F') && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        toggleFollow();
      }
    });
    // stop space from also "clicking" a focused button
    document.addEventListener('keyup', (e) => {
      if ((e.key === ' ' || e.code === 'Space') && e.target && e.target.tagName === 'BUTTON') e.preventDefault();
    });
    window.addEventListener('resize', () => { resizeCanvases(); render(); });
  }

  function fillSelect(sel, items) {
    setContent(sel, items.map((it) => el('option', { value: it.value }, it.text)));
  }

  async function init() {
    C.main = makeCanvas('scene', 'main');
    C.fork = makeCanvas('scene-fork', 'fork');
    CH.run_c = makeChartCanvas('charts');
    CH.actor_c = makeChartCanvas('actor-charts');
    attachCanvasHandlers(C.main);
    attachCanvasHandlers(C.fork);
    bindControls();
    updateForkFields();

    const run = await api('/api/run', undefined, 'Loading the run');
    S.run = run;
    S.mode = run.mode === 'live' ? 'live' : 'recorded';
    S.header = run.header || {};
    S.net = S.header.network || { bounds: [-100, -100, 100, 100], lanes: [], crossings: [], sidewalks: [] };
    S.legend = S.header.legend || {};
    CH.laneKm = laneKilometres(S.net);
    for (const h of S.header.humans || []) S.humans.set(h.identity, h);
    for (const h of run.hazards || []) addHazard(S.main, h);
    for (const a of run.alerts || []) addAlert(S.main, a);
    if (S.mode !== 'live') for (const c of run.collisions || []) addCollision(c);   // live: from the ticks
    addCauses(run.causes);

    $('scenario').textContent = (S.header.scenario || 'scenario') + (S.header.seed != null ? ' (seed ' + S.header.seed + ')' : '');
    $('mode').textContent = S.mode;
    $('mode').className = 'badge mode-' + S.mode;
    $('run-dir').textContent = run.run_dir || '';
    document.title = 'Inspector · ' + (S.header.scenario || '');

    // live-only controls
    const live = S.mode === 'live';
    $('live').hidden = !live;
    $('fork').hidden = !live;
    if (live) {
      fillSelect($('fork-human'), (S.header.humans || []).filter((h) => h.role === 'driver' || h.role === 'pedestrian')
        .map((h) => ({ value: h.identity, text: h.identity + ' (' + (h.name || h.persona) + ', ' + h.role + ')' })));
      fillSelect($('fork-persona'), (run.personas || []).map((p) => ({ value: p, text: p })));
      fillSelect($('fork-fault'), (run.fault_kinds || []).map((k) => ({ value: k, text: k })));
      updateLiveButtons();
    }

    resetView();
    buildJunctionNav();
    await fetchTicks(S.main);
    if (run.fork) await loadFork(run.fork);
    buildMarks();
    buildEvents();
    buildIncidents();
    buildSummary();
    resizeCanvases();
    setTick(live ? S.main.ticks.length - 1 : 0);   // live: show the current state
    render();
    S.ready = true;
    syncExports();
    requestAnimationFrame(frameLoop);
  }

  init().catch((e) => {
    console.error(e);
    if ($('message').hidden) showMessage('Could not load the inspector: ' + e.message);
  });
})();
