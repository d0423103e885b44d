/* segue demo page: what the server decides, what plays, and controls for the game state.
 * Built on segue.js (window.Segue); `window.segue` is the page's client, for the console and
 * for tests (`window.segue.debug()`). No framework, no build step. */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  };

  // ----------------------------------------------------------------- room and client

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || undefined;
  let room = params.get("session") || params.get("room") || "";
  if (!Segue.isSessionId(room)) room = `room-${Math.random().toString(36).slice(2, 7)}`;
  rememberRoom(room);

  // watch: the controls show the room's state, whichever tab (or game) sent it.
  const client = new Segue.Client({ session: room, token, watch: true });
  window.segue = client;

  function rememberRoom(name) {
    const url = new URL(location.href);
    url.searchParams.delete("room");
    url.searchParams.set("session", name);
    history.replaceState(null, "", url);
    $("room").value = name;
  }

  const apiQuery = token ? `?token=${encodeURIComponent(token)}` : "";

  // ----------------------------------------------------------------- colours

  const MOOD_HUES = [
    [/boss|wyrm|dragon/, "#ff4f7b"],
    [/danger|desperat|critical/, "#ff5a4e"],
    [/combat|battle|fight|action/, "#ff8a3d"],
    [/tension|suspense|alert|uneasy/, "#f5c542"],
    [/stealth|sneak|hide/, "#a48bfa"],
    [/village|town|market|home/, "#e8a86c"],
    [/explore|calm|wander|peace|ambient/, "#42d3a5"],
    [/victory|triumph|win|fanfare/, "#ffd84d"],
    [/defeat|death|lose|died/, "#9aa8bb"],
    [/discover|secret|treasure|magic/, "#6ee0f5"],
    [/menu|title/, "#59c3ff"],
  ];
  const PALETTE = ["#59c3ff", "#42d3a5", "#f5c542", "#ff8a3d", "#a48bfa", "#f472b6", "#6ee0f5", "#c3e66e"];
  const colours = {};
  function moodColour(name) {
    if (!name) return "#59c3ff";
    if (!colours[name]) {
      const hit = MOOD_HUES.find(([re]) => re.test(name.toLowerCase()));
      colours[name] = hit ? hit[1] : PALETTE[Object.keys(colours).length % PALETTE.length];
    }
    return colours[name];
  }

  // ----------------------------------------------------------------- formatting

  const fmtTime = (s) => {
    if (s == null || !isFinite(s)) return "–";
    const m = Math.floor(s / 60);
    return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
  };
  const clockText = (unix) => new Date(unix * 1000).toISOString().slice(11, 23);
  const shortId = (id) => (id ? id.slice(0, 10) : "–");
  const kb = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1024)} KB`);
  const fadeText = (tr) => (tr ? `${tr.at} · ${tr.fade} ${tr.fade_ms} ms${tr.entry === "same_position" ? " · same position" : ""}` : "");

  const OPS = { eq: "=", ne: "≠", lt: "<", le: "≤", gt: ">", ge: "≥", in: "∈", not_in: "∉" };
  function conditionText(when) {
    if (!when) return "always (the default)";
    const parts = [];
    for (const [key, value] of Object.entries(when)) {
      if (key === "all") parts.push(value.map(conditionText).join(" and "));
      else if (key === "any") parts.push(`(${value.map(conditionText).join(" or ")})`);
      else if (key === "not") parts.push(`not (${conditionText(value)})`);
      else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        for (const [op, operand] of Object.entries(value)) {
          if (op === "exists") parts.push(operand ? `${key} exists` : `no ${key}`);
          else parts.push(`${key} ${OPS[op] || op} ${JSON.stringify(operand)}`);
        }
      } else parts.push(`${key} = ${JSON.stringify(value)}`);
    }
    return parts.join(", ");
  }

  // A mirror of the server's conditions (core/conditions.py), for highlighting only.
  const kindOf = (v) => (typeof v === "boolean" ? "bool" : typeof v === "number" ? "number" : typeof v === "string" ? "str" : v === null ? "null" : "object");
  const same = (a, b) => kindOf(a) === kindOf(b) && JSON.stringify(a) === JSON.stringify(b);
  function lookupKey(state, parts) {
    if (state === null || typeof state !== "object" || Array.isArray(state)) return undefined;
    for (let i = parts.length; i > 0; i--) {
      const head = parts.slice(0, i).join(".");
      if (!(head in state)) continue;
      if (i === parts.length) return state[head];
      const found = lookupKey(state[head], parts.slice(i));
      if (found !== undefined) return found;
    }
    return undefined;
  }
  function termMatches(found, op, value) {
    if (op === "exists") return (found !== undefined) === value;
    if (found === undefined) return false;
    if (op === "eq") return same(found, value);
    if (op === "ne") return !same(found, value);
    if (op === "in") return value.some((v) => same(found, v));
    if (op === "not_in") return !value.some((v) => same(found, v));
    const k = kindOf(found);
    if ((k !== "number" && k !== "str") || k !== kindOf(value)) return false;
    return { lt: found < value, le: found <= value, gt: found > value, ge: found >= value }[op] === true;
  }
  function ruleMatches(when, state) {
    if (!when) return true;
    return Object.entries(when).every(([key, value]) => {
      if (key === "all") return value.every((w) => ruleMatches(w, state));
      if (key === "any") return value.some((w) => ruleMatches(w, state));
      if (key === "not") return !ruleMatches(value, state);
      const found = lookupKey(state, key.split("."));
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        return Object.entries(value).every(([op, operand]) => termMatches(found, op, operand));
      }
      return termMatches(found, "eq", value);
    });
  }

  /** Every number a rule compares `key` with (to give sliders a sensible range). */
  function thresholds(rules, key) {
    const out = [];
    const walk = (when) => {
      if (!when || typeof when !== "object") return;
      for (const [k, v] of Object.entries(when)) {
        if (k === "all" || k === "any") v.forEach(walk);
        else if (k === "not") walk(v);
        else if (k === key) {
          const vals = v !== null && typeof v === "object" && !Array.isArray(v) ? Object.values(v) : [v];
          for (const x of vals.flat()) if (typeof x === "number") out.push(x);
        }
      }
    };
    for (const r of rules) walk(r.when);
    return out;
  }

  // ----------------------------------------------------------------- score: moods, rules, controls

  let score = null;
  const tracks = new Map(); // id → track
  const trackStatus = new Map(); // id → "fetched" | "decoded"

  async function loadScore() {
    const r = await fetch(`/api/score${apiQuery}`);
    if (!r.ok) throw new Error(`/api/score: HTTP ${r.status}`);
    score = await r.json();
    document.title = `${score.title} — segue`;
    $("score-title").textContent = score.title;
    renderMoods();
    renderRules();
    renderControls();
    renderEvents();
  }

  async function loadTracks() {
    const r = await fetch(`/api/tracks${apiQuery}`);
    if (!r.ok) return;
    const body = await r.json();
    for (const t of body.tracks || []) tracks.set(t.id, t);
    renderTracks();
  }

  function renderMoods() {
    const list = $("mood-list");
    list.textContent = "";
    const loops = score.moods.filter((m) => !m.stinger);
    const stingers = score.moods.filter((m) => m.stinger);
    const chip = (m) => {
      const meta = [m.bpm ? `${Math.round(m.bpm)} bpm` : null, m.key, m.variants > 1 ? `×${m.variants}` : null]
        .filter(Boolean)
        .join(" · ");
      const node = el(
        "div",
        { class: `mood${m.stinger ? " stinger" : ""}`, "data-mood": m.name, title: m.prompt || "" },
        el("span", { class: "sw" }),
        el("span", { class: "mn", text: m.name }),
        el("span", { class: "md", text: meta || (m.stinger ? "stinger" : "") })
      );
      node.style.setProperty("--c", moodColour(m.name));
      return node;
    };
    loops.forEach((m) => list.append(chip(m)));
    if (stingers.length) {
      list.append(el("span", { class: "mood-sep" }));
      stingers.forEach((m) => list.append(chip(m)));
    }
    $("moods-hint").textContent = `${loops.length} loops, ${stingers.length} stingers`;
  }

  function renderRules() {
    const ol = $("rules");
    ol.textContent = "";
    for (const r of score.rules) {
      const li = el(
        "li",
        { "data-mood": r.mood },
        el("span", { class: "p", text: r.priority }),
        el("span", { class: "m", text: r.mood }),
        el("code", { text: conditionText(r.when) })
      );
      li.style.setProperty("--c", moodColour(r.mood));
      ol.append(li);
    }
  }

  const controls = new Map(); // key → {node, set(value|undefined)}

  function renderControls() {
    const box = $("controls");
    box.textContent = "";
    controls.clear();
    const keys = score.state_keys || [];
    if (!keys.length) box.append(el("p", { class: "hint", text: "The rules read no state." }));
    for (const k of keys) box.append(makeControl(k));
  }

  // State changes go out at most every 80 ms per key (sliders fire fast; the server rate-limits).
  const throttled = new Map();
  function sendSet(key, value) {
    const entry = throttled.get(key) || { timer: null, last: 0, value };
    entry.value = value;
    throttled.set(key, entry);
    const go = () => {
      entry.timer = null;
      entry.last = performance.now();
      if (entry.value === undefined) client.setState(null, { unset: [key] });
      else client.setState({ [key]: entry.value });
    };
    const wait = 80 - (performance.now() - entry.last);
    if (wait <= 0 && !entry.timer) go();
    else if (!entry.timer) entry.timer = setTimeout(go, Math.max(0, wait));
  }

  function makeControl(spec) {
    const key = spec.key;
    const type = spec.type;
    const x = el("button", { class: "x", type: "button", title: `unset ${key}`, "aria-label": `unset ${key}`, text: "×" });
    const val = el("span", { class: "val", text: "unset" });
    const head = el("div", { class: "key", title: key }, key, el("span", { class: "type", text: type }));
    const node = el("div", { class: "ctl unset", "data-key": key, "data-type": type }, head);
    let input;
    let show;
    if (type === "bool") {
      input = el("input", { type: "checkbox", "aria-label": key });
      const sw = el("label", { class: "switch" }, input, el("span"));
      node.append(el("div", { style: "display:flex;align-items:center;gap:6px" }, x, val, sw));
      input.addEventListener("change", () => {
        show(input.checked);
        sendSet(key, input.checked);
      });
      show = (v) => {
        node.classList.toggle("unset", v === undefined);
        input.checked = v === true;
        val.textContent = v === undefined ? "unset" : String(v);
      };
    } else if (type === "number") {
      const nums = thresholds(score.rules, key);
      const maxT = nums.length ? Math.max(...nums) : 1;
      const minT = nums.length ? Math.min(...nums) : 0;
      const ints = nums.length > 0 && nums.every(Number.isInteger);
      const lo = Math.min(0, minT);
      const hi = ints ? Math.max(5, maxT * 2) : maxT <= 1 ? 1 : Math.ceil(maxT * 2);
      const step = ints ? 1 : hi <= 1 ? 0.01 : (hi - lo) / 100;
      input = el("input", { type: "range", min: lo, max: hi, step, value: lo, "aria-label": key });
      node.append(el("div", { style: "display:flex;align-items:center;gap:6px" }, x, val));
      node.append(el("div", { class: "wide" }, input));
      input.addEventListener("input", () => {
        const v = Number(input.value);
        show(v);
        sendSet(key, v);
      });
      show = (v) => {
        node.classList.toggle("unset", v === undefined);
        if (v !== undefined) input.value = v;
        val.textContent = v === undefined ? "unset" : ints ? String(v) : Number(v).toFixed(2);
      };
    } else {
      const listId = `values-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      input = el("input", {
        type: "text",
        list: spec.values && spec.values.length ? listId : null,
        placeholder: spec.values && spec.values.length ? spec.values.join(", ") : "a value (true, 3, text…)",
        spellcheck: "false",
        "aria-label": key,
      });
      node.append(el("div", { style: "display:flex;align-items:center;gap:6px" }, x, val));
      const wide = el("div", { class: "wide" }, input);
      if (spec.values && spec.values.length) {
        wide.append(el("datalist", { id: listId }, ...spec.values.map((v) => el("option", { value: v }))));
        for (const v of spec.values.slice(0, 4)) {
          wide.append(
            el("button", {
              type: "button",
              class: "tiny",
              text: v,
              onclick: () => {
                show(v);
                sendSet(key, v);
              },
            })
          );
        }
      }
      node.append(wide);
      input.addEventListener("change", () => {
        const raw = input.value.trim();
        const v = raw === "" ? undefined : type === "string" ? raw : parseLoose(raw);
        show(v);
        sendSet(key, v);
      });
      show = (v) => {
        node.classList.toggle("unset", v === undefined);
        if (document.activeElement !== input) input.value = v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
        val.textContent = v === undefined ? "unset" : JSON.stringify(v);
      };
    }
    x.addEventListener("click", () => {
      show(undefined);
      sendSet(key, undefined);
    });
    controls.set(key, { node, show });
    return node;
  }

  function parseLoose(raw) {
    try {
      return JSON.parse(raw);
    } catch (_) {
      return raw;
    }
  }

  function renderEvents() {
    const box = $("events");
    box.textContent = "";
    if (!score.events.length) box.append(el("span", { class: "hint", text: "The score defines no events." }));
    for (const ev of score.events) {
      const b = el(
        "button",
        { type: "button", "data-event": ev.name },
        el("span", { class: "n", text: ev.name }),
        el("span", {
          class: "s",
          text: [ev.stinger ? `→ ${ev.stinger} · ${ev.at}` : "", ev.duck ? `duck ${ev.duck.depth_db} dB` : ""]
            .filter(Boolean)
            .join(" · "),
        })
      );
      b.addEventListener("click", () => {
        client.event(ev.name);
        b.classList.add("fired");
        setTimeout(() => b.classList.remove("fired"), 600);
      });
      box.append(b);
    }
  }

  function resetControls() {
    for (const c of controls.values()) c.show(undefined);
    $("state-json").textContent = "{}";
  }

  // ----------------------------------------------------------------- tracks and waveforms

  function sortedTracks() {
    const order = score ? score.moods.map((m) => m.name) : [];
    return Array.from(tracks.values()).sort(
      (a, b) => order.indexOf(a.mood) - order.indexOf(b.mood) || a.variant - b.variant
    );
  }

  const trackNodes = new Map(); // id → {node, canvas, status, peaks}

  function renderTracks() {
    const list = $("track-list");
    const all = sortedTracks();
    $("tracks-hint").textContent = all.length
      ? `${all.length} stored · waveform, bar lines; lead-in, loop, outro and the seam`
      : "none stored yet";
    for (const t of all) {
      if (trackNodes.has(t.id)) continue;
      const canvas = el("canvas", { height: 52, "aria-label": `${t.mood} waveform` });
      const status = el("span", { class: "st", text: trackStatus.get(t.id) || "remote" });
      const keyText = t.extra && t.extra.key ? ` · ${t.extra.key}` : "";
      const loopText = t.loop ? `loop ${t.loop_start_s.toFixed(1)}–${Number(t.loop_end_s).toFixed(1)}` : "one-shot";
      const node = el(
        "div",
        { class: "track", "data-track": t.id, "data-mood": t.mood },
        el(
          "div",
          { class: "info" },
          el("div", { class: "tn" }, el("i"), t.mood, el("span", { class: "v", text: `v${t.variant}` })),
          el(
            "div",
            { class: "tm" },
            `${t.duration_s.toFixed(1)} s · ${t.bpm ? Math.round(t.bpm) : "?"} bpm`,
            el("br"),
            `${keyText.slice(3) || t.format} · ${kb(t.bytes || 0)}`,
            el("br"),
            `${loopText} · `,
            status
          )
        ),
        el("div", { class: "wave" }, canvas, regionsBar(t))
      );
      node.style.setProperty("--c", moodColour(t.mood));
      trackNodes.set(t.id, { node, canvas, status, peaks: null, track: t });
      list.append(node);
      client
        .peaks(t, 240)
        .then((p) => {
          trackNodes.get(t.id).peaks = p;
          drawTrack(t.id, null);
        })
        .catch(() => {});
    }
    // Keep the score's order (tracks may arrive late, by prefetch).
    for (const t of all) list.append(trackNodes.get(t.id).node);
  }

  /** A track's parts on its timeline, from its metadata (docs/audio.md, "What happens to a
   * generated song"): the lead-in (played once), the loop, the outro (the song's ending,
   * played when a transition leaves the mood with `exit: outro`), a tail after it, and the
   * seam (the loop's end, with the crossfade baked in before it). */
  function trackRegions(t) {
    const dur = Number(t.duration_s) || 0;
    const info = (t.extra && t.extra.loop) || {};
    const fmt = (x) => `${Number(x).toFixed(1)} s`;
    if (!t.loop || !(dur > 0)) {
      return { parts: [{ kind: "oneshot", start: 0, end: dur, label: "one-shot" }], seam: null };
    }
    const region = Segue.loopRegion(t, dur);
    const parts = [];
    if (region.start > 0.005) {
      parts.push({ kind: "lead", start: 0, end: region.start, label: `lead-in ${fmt(region.start)}` });
    }
    const bars = info.bars ? ` · ${info.bars} bars` : "";
    const loopLabel = info.fallback ? "whole-song loop" : `loop${bars}`;
    parts.push({ kind: "loop", start: region.start, end: region.end, label: loopLabel });
    let outroEnd = region.end;
    const oe = Number(info.outro_end_s);
    if (oe > region.end + 0.01) {
      outroEnd = Math.min(oe, dur);
      parts.push({ kind: "outro", start: region.end, end: outroEnd, label: `outro ${fmt(outroEnd - region.end)}` });
    }
    if (dur - outroEnd > 0.01) parts.push({ kind: "tail", start: outroEnd, end: dur, label: "tail" });
    const crossfade = Math.min(Number(info.crossfade_s) || 0, region.end - region.start);
    const ok = t.extra && t.extra.seam_ok;
    return { parts, seam: { at: region.end, crossfade, ok: ok !== false } };
  }

  /** The parts as a labelled bar under the waveform (positions in % of the track). */
  function regionsBar(t) {
    const dur = Number(t.duration_s) || 1;
    const pct = (s) => `${((100 * s) / dur).toFixed(3)}%`;
    const { parts, seam } = trackRegions(t);
    const bar = el("div", { class: "regions", "aria-label": `${t.mood} regions` });
    for (const p of parts) {
      const span = el("span", {
        class: `rg ${p.kind}`,
        "data-start": p.start,
        "data-end": p.end,
        title: `${p.label}: ${p.start.toFixed(2)}–${p.end.toFixed(2)} s`,
        text: p.label,
      });
      span.style.left = pct(p.start);
      span.style.width = pct(p.end - p.start);
      bar.append(span);
    }
    if (seam) {
      const mark = el("span", {
        class: seam.ok ? "seam" : "seam bad",
        "data-at": seam.at,
        "data-crossfade": seam.crossfade,
        title: `seam at ${seam.at.toFixed(2)} s: back to the loop's start` +
          (seam.crossfade ? `, the last ${seam.crossfade.toFixed(2)} s crossfaded into it` : "") +
          (seam.ok ? "" : " · stands out (extra.seam)"),
      });
      mark.style.left = pct(seam.at - seam.crossfade);
      mark.style.width = pct(seam.crossfade);
      bar.append(mark);
    }
    return bar;
  }

  function sizeCanvas(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    return { w, h, dpr };
  }

  /** Waveform (min/max peaks), loop region and markers, bar lines, and a playhead. */
  function drawWave(canvas, peaks, track, colour, playhead, labels) {
    const { w, h, dpr } = sizeCanvas(canvas);
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, h);
    const dur = track.duration_s || 1;
    const xOf = (s) => (s / dur) * w;
    const region = Segue.loopRegion(track, dur);
    // bar lines
    if (track.bpm) {
      const bar = (60 / track.bpm) * (track.beats_per_bar || 4);
      g.fillStyle = "#ffffff10";
      for (let s = track.first_beat_s || 0; s < dur; s += bar) g.fillRect(Math.round(xOf(s)), 0, Math.max(1, dpr), h);
    }
    // peaks
    if (peaks) {
      const n = peaks.length / 2;
      const mid = h / 2;
      const colW = w / n;
      for (let i = 0; i < n; i++) {
        const lo = peaks[2 * i];
        const hi = peaks[2 * i + 1];
        const x = i * colW;
        const t = ((i + 0.5) / n) * dur;
        const inLoop = !track.loop || (t >= region.start && t <= region.end);
        g.fillStyle = inLoop ? colour : "#5b6675";
        g.globalAlpha = playhead != null && t <= playhead ? 1 : 0.72;
        const y0 = mid - hi * mid * 0.95;
        const y1 = mid - lo * mid * 0.95;
        g.fillRect(x + colW * 0.15, y0, Math.max(dpr, colW * 0.7), Math.max(dpr, y1 - y0));
      }
      g.globalAlpha = 1;
    } else {
      g.fillStyle = "#ffffff14";
      g.fillRect(0, h / 2, w, dpr);
    }
    // loop region: dim what lies outside, mark both ends with a flag
    if (track.loop) {
      g.fillStyle = "#0a0d11b0";
      if (region.start > 0) g.fillRect(0, 0, xOf(region.start), h);
      if (region.end < dur) g.fillRect(xOf(region.end), 0, w - xOf(region.end), h);
      g.fillStyle = "#e6edf5";
      for (const [s, dir] of [
        [region.start, 1],
        [region.end, -1],
      ]) {
        const x = Math.min(w - dpr, Math.max(0, xOf(s) - (dir < 0 ? dpr : 0)));
        g.fillRect(x, 0, dpr * 1.5, h);
        g.beginPath();
        g.moveTo(x, 0);
        g.lineTo(x + dir * 7 * dpr, 0);
        g.lineTo(x, 7 * dpr);
        g.fill();
      }
    }
    // sections the generator reports (composition-plan sections), labelled
    const sections = (track.extra && track.extra.sections) || [];
    if (labels && track.bpm && sections.length > 1) {
      const bar = (60 / track.bpm) * (track.beats_per_bar || 4);
      g.font = `${10 * dpr}px ui-monospace, Menlo, monospace`;
      g.textBaseline = "bottom";
      let free = 0; // labels never overlap: one that would is left out
      for (const sec of sections) {
        const x = xOf((track.first_beat_s || 0) + sec.start_bar * bar);
        g.fillStyle = "#ffffff55";
        g.fillRect(x, h - 14 * dpr, dpr, 14 * dpr);
        const name = String(sec.name || "");
        const lx = x + 4 * dpr;
        if (lx >= free) {
          g.fillStyle = "#c9d2dd";
          g.fillText(name, lx, h - 2 * dpr);
          free = lx + g.measureText(name).width + 6 * dpr;
        }
      }
    }
    if (playhead != null) {
      const x = xOf(playhead);
      g.fillStyle = "#ffffff";
      g.shadowColor = colour;
      g.shadowBlur = 8 * dpr;
      g.fillRect(x - dpr, 0, 2 * dpr, h);
      g.shadowBlur = 0;
    }
  }

  function drawTrack(id, playhead) {
    const t = trackNodes.get(id);
    if (!t) return;
    drawWave(t.canvas, t.peaks, t.track, moodColour(t.track.mood), playhead);
  }

  // ----------------------------------------------------------------- log

  function log(kind, main, sub) {
    const ol = $("log");
    const li = el(
      "li",
      { class: kind },
      el("span", { class: "t", text: clockText(client.serverNow()).slice(0, 12) }),
      el("span", { class: "what" }, el("span", { class: "k", text: kind }), " ", main, sub ? el("span", { class: "sub", text: sub }) : null)
    );
    ol.prepend(li);
    while (ol.children.length > 200) ol.lastChild.remove();
  }

  const moodEl = (name) => {
    const b = el("b", { text: name || "—" });
    b.style.color = moodColour(name);
    return b;
  };

  // ----------------------------------------------------------------- client events

  client.on("status", (s) => {
    $("conn").dataset.status = s.status;
    const text = {
      idle: "offline",
      connecting: "connecting…",
      open: "connected",
      reconnecting: "reconnecting…",
      closed: "closed",
      failed: "disconnected",
    }[s.status];
    $("conn-text").textContent = text || s.status;
    if (s.status === "open") log("conn", `joined ${s.session}`, s.resumed ? "resumed the session" : null);
    else if (s.status === "reconnecting" && s.inS != null) log("conn", `lost (${s.code})`, `retrying in ${s.inS.toFixed(1)} s`);
    // "failed" comes with an error event, logged below.
  });

  client.on("clock", (c) => {
    if (c.rtt == null) return;
    const off = c.offset * 1000;
    $("clock-text").textContent = `offset ${off >= 0 ? "+" : ""}${off.toFixed(1)} ms · rtt ${(c.rtt * 1000).toFixed(1)} ms`;
  });

  client.on("cue", (cue) => {
    const wait = cue.start_at - client.serverNow();
    const when = wait >= 0 ? `in ${wait.toFixed(2)} s` : `${(-wait).toFixed(2)} s ago (joined mid-track)`;
    log(
      "cue",
      el("span", {}, `#${cue.seq} `, cue.previous ? moodEl(cue.previous) : "start", " → ", moodEl(cue.mood)),
      `${fadeText(cue.transition)} · ${when} · at ${Number(cue.offset_s).toFixed(2)} s of ${shortId(cue.track.id)}`
    );
    if (!tracks.has(cue.track.id)) {
      tracks.set(cue.track.id, cue.track);
      renderTracks();
    }
    updateMoodMarks();
  });

  client.on("mood", () => updateMoodMarks());
  client.on("play", () => updateMoodMarks());

  client.on("stinger", (s) => {
    const wait = s.start_at - client.serverNow();
    log("stinger", el("span", {}, moodEl(s.mood || s.track.mood), ` (${s.event || s.name})`), `${s.at} · in ${Math.max(0, wait).toFixed(2)} s`);
    const chip = document.querySelector(`.mood[data-mood="${CSS.escape(s.mood || s.track.mood)}"]`);
    if (chip) {
      setTimeout(() => {
        chip.classList.remove("flash");
        void chip.offsetWidth;
        chip.classList.add("flash");
      }, Math.max(0, wait * 1000));
    }
  });

  // Layers: one meter per stem of the mood heard, following the ramps of `layers` messages.
  const stemRamps = new Map(); // mood → stem → {from, to, t0, t1}
  function stemGainAt(r, t) {
    if (t <= r.t0) return r.from;
    if (t >= r.t1) return r.to;
    return r.from + ((r.to - r.from) * (t - r.t0)) / (r.t1 - r.t0);
  }
  client.on("layers", (m) => {
    const ramps = stemRamps.get(m.mood) || new Map();
    const t1 = m.start_at + m.ramp_ms / 1000;
    for (const [stem, to] of Object.entries(m.gains)) {
      const old = ramps.get(stem);
      const from = old ? stemGainAt(old, m.start_at) : to;
      ramps.set(stem, { from, to, t0: m.start_at, t1 });
    }
    stemRamps.set(m.mood, ramps);
  });
  function drawLayers() {
    const box = $("layers");
    const pos = client.position();
    const ramps = pos && stemRamps.get(pos.mood);
    const names = ramps ? Array.from(ramps.keys()) : [];
    if (box.dataset.stems !== names.join(",")) {
      box.textContent = "";
      for (const n of names) {
        box.append(el("label", { class: "stem" }, el("span", { text: n }), el("meter", { min: 0, max: 1, "data-stem": n })));
      }
      box.dataset.stems = names.join(",");
    }
    const now = client.serverNow();
    for (const m of box.querySelectorAll("meter")) m.value = stemGainAt(ramps.get(m.dataset.stem), now);
  }
  $("duck-btn").addEventListener("click", () => {
    const b = $("duck-btn");
    const on = b.getAttribute("aria-pressed") !== "true";
    if (on) client.duck({ depth_db: -12 });
    else client.endDuck();
    b.setAttribute("aria-pressed", String(on));
    b.textContent = on ? "End duck" : "Duck music";
  });

  client.on("pending", (p) => {
    log("pending", el("span", {}, moodEl(p.mood), `: ${p.reason}`), p.reason === "generating" ? "its cue follows when the track is stored" : null);
    updateMoodMarks();
  });

  client.on("prefetch", (m) => {
    let added = false;
    for (const t of m.tracks) {
      if (!tracks.has(t.id)) {
        tracks.set(t.id, t);
        added = true;
      }
    }
    if (added) renderTracks();
  });

  client.on("track", (t) => {
    const prev = trackStatus.get(t.id);
    if (prev === "decoded") return;
    trackStatus.set(t.id, t.state);
    const n = trackNodes.get(t.id);
    if (n) {
      n.status.textContent = t.state;
      n.status.className = `st ${t.state}`;
    }
  });

  client.on("error", (e) => {
    const hint = e.code === "unauthorized" && !token ? " — add ?token=… to this page's URL" : "";
    log("error", e.code || "error", `${e.message || ""}${hint}`);
  });

  client.on("state", (s) => {
    $("state-json").textContent = JSON.stringify(s.state, null, 2);
    updateMoodMarks();
  });

  // The room's state, whoever sent it: every control shows its key's value (a control
  // being dragged keeps what the hand says until it is let go).
  client.on("room", (r) => {
    for (const [key, c] of controls) c.show(lookupKey(r.state, key.split(".")));
  });

  client.on("decision", (d) => {
    const wait = d.until ? `for ${Math.max(0, d.until - client.serverNow()).toFixed(1)} s` : null;
    log("decision", el("span", {}, moodEl(d.desired), `: ${d.reason.replace("_", " ")}`), wait);
  });

  client.on("audio", (a) => {
    const on = a.state === "running";
    document.body.classList.toggle("audio-on", on);
    const btn = $("start-audio");
    btn.dataset.on = on ? "1" : "0";
    btn.textContent = on ? (muted ? "Muted" : "Audio on") : "Start audio";
    if (a.unlocked) log("conn", `audio ${a.state}`, client.audio.ctx ? `${client.audio.ctx.sampleRate} Hz` : null);
  });

  function updateMoodMarks() {
    const pos = client.position();
    const current = pos ? pos.mood : null;
    const next = pos && pos.next ? pos.next.mood : null;
    const pending = client.pending ? client.pending.mood : null;
    for (const chip of document.querySelectorAll(".mood")) {
      const m = chip.dataset.mood;
      chip.classList.toggle("current", m === current);
      chip.classList.toggle("next", m === next && m !== current);
      chip.classList.toggle("pending", m === pending && m !== current && m !== next);
    }
    // The rule that wins for the room's state (the server's order: priority, then score
    // order); if it is not the mood playing (a change still waiting), that mood's first rule.
    const rules = score ? score.rules : [];
    let winner = null;
    for (const r of rules) {
      if ((winner === null || r.priority > winner.priority) && ruleMatches(r.when, client.state)) winner = r;
    }
    if (!winner || winner.mood !== current) winner = rules.find((r) => r.mood === current) || null;
    document.querySelectorAll("#rules li").forEach((li, i) => li.classList.toggle("current", rules[i] === winner));
    document.documentElement.style.setProperty("--mood", moodColour(current));
    $("now-mood").textContent = current || "—";
    $("now").dataset.mood = current || "";
    for (const [id, n] of trackNodes) n.node.classList.toggle("playing", pos && pos.track.id === id);
  }

  // ----------------------------------------------------------------- the animation frame

  let beatCount = 0;
  let lastPlayingCue = null;
  let bigPeaks = null;
  let bigPeaksFor = null;
  let headOn = null; // the track list entry that shows a playhead

  function frame() {
    drawLayers();
    const pos = client.position();
    const beatsBox = $("beats");
    if (pos) {
      const perBar = pos.beatsPerBar || 4;
      if (beatCount !== perBar) {
        beatsBox.textContent = "";
        for (let i = 0; i < perBar; i++) beatsBox.append(el("i", { class: i === 0 ? "down" : null }));
        beatCount = perBar;
      }
      beatsBox.querySelectorAll("i").forEach((d, i) => {
        const on = i === pos.beatInBar;
        d.classList.toggle("on", on);
        // Bright on the beat, fading through it: reads as a pulse, not a blink.
        d.style.opacity = on ? String(1 - 0.55 * pos.phase) : "";
      });
      $("bar-num").textContent = pos.bar == null ? "–" : String(pos.bar + 1);
      $("beat-num").textContent = pos.beatInBar == null ? "–" : String(pos.beatInBar + 1);
      const t = pos.track;
      $("tempo").textContent = `${t.bpm ? Math.round(t.bpm) : "?"} bpm · ${perBar}/4${t.extra && t.extra.key ? " · " + t.extra.key : ""}`;
      $("pos-text").textContent = `${fmtTime(pos.position)} / ${fmtTime(t.duration_s)}`;
      $("loop-text").textContent = t.loop
        ? `loop ${fmtTime(t.loop_start_s)} → ${fmtTime(t.loop_end_s)}`
        : "one-shot";
      if (lastPlayingCue !== pos.cue) {
        lastPlayingCue = pos.cue;
        const cue = pos.cue;
        const meta = $("now-meta");
        meta.textContent = "";
        meta.append(
          el("span", {}, "track ", el("b", { text: shortId(t.id) })),
          el("span", {}, "variant ", el("b", { text: String(t.variant) })),
          el("span", {}, "seq ", el("b", { text: String(pos.seq) })),
          cue && cue.transition ? el("span", {}, "in via ", el("b", { text: fadeText(cue.transition) })) : null
        );
        updateMoodMarks();
      }
      // The big waveform of what plays, with the playhead.
      const n = trackNodes.get(t.id);
      if (n && n.peaks && bigPeaksFor !== t.id) {
        bigPeaksFor = t.id;
        bigPeaks = null;
        client.peaks(t, 600).then((p) => {
          if (bigPeaksFor === t.id) bigPeaks = p;
        });
      }
      drawWave($("now-wave"), bigPeaks, t, moodColour(pos.mood), pos.position, true);
      if (headOn && headOn !== t.id) drawTrack(headOn, null); // clear the old playhead
      headOn = t.id;
      if (n) drawTrack(t.id, pos.position);
    }
    // What comes next: a cue waiting for its start_at, or a mood still being generated.
    const next = $("next");
    if (pos && pos.next) {
      const wait = pos.next.start_at - client.serverNow();
      next.hidden = false;
      next.className = "next";
      next.textContent = "";
      next.append(
        el("span", { class: "arrow", text: "next" }),
        moodEl(pos.next.mood),
        el("span", { text: fadeText(pos.next.transition) }),
        el("span", { class: "eta", text: `in ${Math.max(0, wait).toFixed(2)} s` })
      );
    } else if (client.pending) {
      next.hidden = false;
      next.className = "next pending";
      next.textContent = "";
      next.append(el("span", { class: "arrow", text: "wanted" }), moodEl(client.pending.mood), el("span", { class: "eta", text: "generating…" }));
    } else {
      next.hidden = true;
    }
    requestAnimationFrame(frame);
  }

  // ----------------------------------------------------------------- header controls

  let muted = false;
  $("volume").addEventListener("input", (e) => {
    muted = false;
    client.setVolume(Number(e.target.value));
  });
  client.setVolume(Number($("volume").value));

  async function startAudio() {
    try {
      await client.unlock();
    } catch (err) {
      log("error", "audio", err.message);
    }
  }
  $("unlock-btn").addEventListener("click", startAudio);
  $("start-audio").addEventListener("click", async () => {
    if (!client.audio.ready || client.audio.ctx.state !== "running") return startAudio();
    muted = !muted;
    client.setVolume(muted ? 0 : Number($("volume").value));
    $("start-audio").textContent = muted ? "Muted" : "Audio on";
  });

  $("room-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("room").value.trim();
    if (!Segue.isSessionId(name)) {
      log("error", "room", "1-64 characters: letters, digits, _ . -");
      return;
    }
    if (name === client.session) return;
    rememberRoom(name);
    resetControls();
    log("conn", `moving to room ${name}`);
    client.setSession(name);
  });

  $("copy-link").addEventListener("click", async () => {
    const btn = $("copy-link");
    try {
      await navigator.clipboard.writeText(location.href);
      btn.textContent = "copied";
    } catch (_) {
      $("room").select();
      btn.textContent = "select";
    }
    setTimeout(() => (btn.textContent = "link"), 1200);
  });

  $("clear-log").addEventListener("click", () => ($("log").textContent = ""));

  window.addEventListener("resize", () => {
    for (const id of trackNodes.keys()) drawTrack(id, null);
  });

  // ----------------------------------------------------------------- start

  loadScore()
    .then(loadTracks)
    .catch((err) => log("error", "score", err.message))
    .finally(() => {
      client.connect();
      requestAnimationFrame(frame);
    });
})();
