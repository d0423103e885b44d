/*! segue.js — the browser client of segue's WebSocket protocol 1. No build step, no dependencies.
 *
 *   <script src="/static/segue.js"></script>            → window.Segue
 *   import "/static/segue.js"; const { Client } = globalThis.Segue;   (from an ES module)
 *
 *   const music = new Segue.Client({ session: "room-1" });
 *   music.on("cue", (cue) => console.log(cue.mood, cue.start_at));
 *   music.on("beat", (b) => flash(b.beatInBar));
 *   music.connect();
 *   music.setState({ in_combat: true });
 *
 * What it does:
 * - keeps one WebSocket to one session, and reconnects to the same session with exponential
 *   backoff and full jitter (the server resends the current cue; a cue already playing is not
 *   restarted);
 * - estimates the server clock NTP-style: the offset of the ping with the shortest round trip
 *   among the recent samples, refreshed periodically;
 * - keeps the session's musical clock (which cue plays, where in its track, which beat and bar)
 *   from the cues' `start_at`/`offset_s` and the track's tempo, audio or not;
 * - fetches the tracks the server announces (`prefetch`) and decodes them with WebAudio
 *   (cached by id), and plays each cue at `start_at` converted to AudioContext time, looping
 *   `loop_start_s`..`loop_end_s`, seeking forward when `start_at` is already past (a late
 *   join), with the transition's fade (equal-power crossfade, fade out, fade in, cut), or,
 *   when the cue has an `exit`, the track left jumping to its outro (its song's ending) and
 *   playing it out before the new track comes in;
 * - plays stingers on top and ducks the music under them;
 * - creates the AudioContext on the first user gesture (browsers keep audio locked until one).
 *
 * This file is both a classic script and a side-effect ES module: it never uses `export`.
 */
(function (root) {
  "use strict";

  const PROTOCOL = 1;
  const VERSION = "0.1.0";
  // Close codes that reconnecting would not cure: unauthorized, flood, frame too large.
  const FATAL_CLOSE_CODES = new Set([4401, 1008, 1009]);
  const SESSION_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  const TAU = Math.PI / 2;

  /** Local wall clock in unix seconds, from the monotonic high-resolution timer. */
  function localNow() {
    return (performance.timeOrigin + performance.now()) / 1000;
  }

  function sleepMs(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Where a track is `seconds` into its file after playing from `pos`: wraps in the loop.
   * Returns null when a non-looping track has ended. */
  function wrapPosition(track, duration, pos) {
    const dur = duration || track.duration_s || 0;
    if (track.loop) {
      const region = loopRegion(track, dur);
      if (pos >= region.end && region.end > region.start) {
        pos = region.start + ((pos - region.start) % (region.end - region.start));
      }
      return Math.max(0, pos);
    }
    return pos < dur ? Math.max(0, pos) : null;
  }

  /** The loop region of a track, clamped to its decoded length. */
  function loopRegion(track, duration) {
    const dur = duration || track.duration_s || 0;
    let start = Number(track.loop_start_s) || 0;
    let end = track.loop_end_s == null ? dur : Number(track.loop_end_s);
    if (!(end > 0) || end > dur) end = dur;
    if (start >= end) start = 0;
    return { start, end };
  }

  /** Beat arithmetic for a track at a position (seconds into the file). */
  function beatAt(track, pos) {
    const bpm = Number(track.bpm) || 0;
    const perBar = Number(track.beats_per_bar) || 4;
    if (!(bpm > 0) || pos == null) {
      return { beat: null, bar: null, beatInBar: null, beatsPerBar: perBar, phase: 0 };
    }
    const beatLen = 60 / bpm;
    const t = (pos - (Number(track.first_beat_s) || 0)) / beatLen;
    const beat = Math.floor(t);
    const beatInBar = ((beat % perBar) + perBar) % perBar;
    return {
      beat,
      bar: Math.floor(beat / perBar),
      beatInBar,
      beatsPerBar: perBar,
      phase: t - beat, // 0 at the beat, rising to 1 just before the next
    };
  }

  // ------------------------------------------------------------------------- events

  class Emitter {
    constructor() {
      this._listeners = new Map();
    }

    /** Listen to `type`; returns a function that stops listening. `"*"` hears everything. */
    on(type, fn) {
      if (!this._listeners.has(type)) this._listeners.set(type, new Set());
      this._listeners.get(type).add(fn);
      return () => this.off(type, fn);
    }

    once(type, fn) {
      const off = this.on(type, (detail) => {
        off();
        fn(detail);
      });
      return off;
    }

    off(type, fn) {
      const set = this._listeners.get(type);
      if (set) set.delete(fn);
    }

    /** A promise of the next `type` event (optionally one that `test` accepts). */
    next(type, test, timeoutMs) {
      return new Promise((resolve, reject) => {
        let timer = null;
        const off = this.on(type, (detail) => {
          if (test && !test(detail)) return;
          off();
          if (timer) clearTimeout(timer);
          resolve(detail);
        });
        if (timeoutMs) {
          timer = setTimeout(() => {
            off();
            reject(new Error(`no ${type} within ${timeoutMs} ms`));
          }, timeoutMs);
        }
      });
    }

    emit(type, detail) {
      for (const key of [type, "*"]) {
        const set = this._listeners.get(key);
        if (!set) continue;
        for (const fn of Array.from(set)) {
          try {
            fn(detail, type);
          } catch (err) {
            console.error(`segue: a "${type}" listener failed`, err);
          }
        }
      }
    }
  }

  // ------------------------------------------------------------------------- clock

  /** Server clock estimate: offset = server - local, from the best recent ping by round trip. */
  class ServerClock {
    constructor(keep) {
      this.keep = keep || 12;
      this.samples = [];
      this.offset = null; // seconds; null until a first estimate
      this.rtt = null; // round trip of the sample in use
      this.rough = true; // true while the offset only comes from a welcome timestamp
    }

    /** A one-way estimate from a message's `server_time` (until pings come back). */
    seed(serverTime, receivedAt) {
      if (this.offset === null || this.rough) {
        this.offset = serverTime - receivedAt;
        this.rough = true;
      }
    }

    add(sentAt, receivedAt, serverTime) {
      const rtt = receivedAt - sentAt;
      if (!(rtt >= 0)) return;
      // NTP: the server stamped its time half-way through the round trip.
      this.samples.push({ offset: serverTime - (sentAt + receivedAt) / 2, rtt, at: receivedAt });
      if (this.samples.length > this.keep) this.samples.shift();
      let best = this.samples[0];
      for (const s of this.samples) if (s.rtt < best.rtt) best = s;
      this.offset = best.offset;
      this.rtt = best.rtt;
      this.rough = false;
    }

    reset() {
      this.samples = [];
      this.rough = true;
    }

    now() {
      return localNow() + (this.offset || 0);
    }
  }

  // ------------------------------------------------------------------------- audio

  function equalPowerCurve(from, to, fadeIn, points) {
    const curve = new Float32Array(points);
    for (let i = 0; i < points; i++) {
      const x = i / (points - 1);
      const w = fadeIn ? Math.sin(x * TAU) : 1 - Math.cos(x * TAU);
      curve[i] = from + (to - from) * w;
    }
    return curve;
  }

  /** The value `param` has at context time `t` by the ramps scheduled through
   * rampGain (a Web Audio ramp starts from the previous event, so each one is anchored
   * at its start with the value computed here). */
  function gainAt(param, t) {
    const segs = param._segue || [];
    let v = param._segueBase == null ? param.value : param._segueBase;
    for (const [t0, v0, t1, v1] of segs) {
      if (t < t0) return v;
      if (t < t1) return v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
      v = v1;
    }
    return v;
  }

  /** From context time `t`, ramp `param` linearly to `target` over `rampS` (at least 5 ms:
   * a jump in gain clicks). What was scheduled after `t` is dropped and the value at `t`
   * held, so a ramp under way is continued from where it is (no zipper, no jump). */
  function rampGain(param, target, t, rampS) {
    if (param._segueBase == null) param._segueBase = param.value;
    const v = gainAt(param, t);
    let segs = (param._segue || []).filter((s) => s[0] < t);
    // Ramps long over are folded into the base value: the list stays short.
    while (segs.length > 1 && segs[0][2] < t - 10) {
      param._segueBase = segs[0][3];
      segs = segs.slice(1);
    }
    const last = segs[segs.length - 1];
    if (last && last[2] > t) segs[segs.length - 1] = [last[0], last[1], t, v];
    if (param.cancelAndHoldAtTime) param.cancelAndHoldAtTime(t);
    else param.cancelScheduledValues(t);
    param.setValueAtTime(v, t);
    const t1 = t + Math.max(0.005, rampS || 0);
    param.linearRampToValueAtTime(target, t1);
    segs.push([t, v, t1, target]);
    param._segue = segs;
  }

  /** Hold `param` at its value from `t` and ramp to `target` over [t, t + rampS], after
   * what is scheduled before `t` (nothing is cancelled). */
  function appendRamp(param, target, t, rampS) {
    const v = gainAt(param, t);
    const t1 = t + Math.max(0.005, rampS || 0);
    param.setValueAtTime(v, t);
    param.linearRampToValueAtTime(target, t1);
    (param._segue = param._segue || []).push([t, v, t1, target]);
  }

  /** A `duck` message on `param` (the duck bus's gain): ramp to the depth over the
   * attack from `toCtx(start_at)`, hold, and from `toCtx(end_at)` back to 1 over the
   * release. `end_at` null: held until a later message gives the end. */
  function scheduleDuck(param, duck, toCtx) {
    const depth = Math.pow(10, (Number(duck.depth_db) || 0) / 20);
    const attack = Math.max(0.005, (Number(duck.attack_ms) || 0) / 1000);
    const release = Math.max(0.005, (Number(duck.release_ms) || 0) / 1000);
    const start = toCtx(duck.start_at);
    const end = duck.end_at == null ? null : toCtx(duck.end_at);
    if (end === null || end > start + attack) {
      rampGain(param, depth, start, attack);
      if (end !== null) appendRamp(param, 1, end, release);
    } else {
      // Ended during its attack (or an end for a duck this client joined late): release.
      rampGain(param, 1, Math.max(start, end), release);
    }
  }

  // The jump into an outro is crossfaded this long: it lands on a bar line of the song,
  // but the bar it leaves is not the one that led there.
  const OUTRO_JUMP_S = 0.02;

  /** The music voice `old` leaves through its outro (a cue's `exit`, protocol.md): from
   * context time `when`, a copy of its audio plays from `offset` (the outro's start, or
   * further in when the jump is already past) without looping, crossfaded from `old`
   * over OUTRO_JUMP_S, and stops at `exit.outro_end_s`. It is never faded out by the cue
   * that follows (the outro is the song's own ending); `stopMusic` still fades it.
   * Returns the outro's voice, or null when nothing of the outro is left to play. */
  function startOutro(engine, old, exit, when, offset) {
    const end = Number(exit.outro_end_s);
    if (!(end - offset > 0.005)) {
      old.leave(when, OUTRO_JUMP_S, null);
      return null;
    }
    const track = Object.assign({}, old.track, { loop: false });
    const voice = new Voice(engine, Object.assign({}, old.cue, { track }), old.input, "music");
    voice.outro = exit;
    voice.leaving = "outro"; // not the music a new cue replaces: it ends by itself
    if (engine.voices) engine.voices.add(voice);
    voice.start(when, offset, 0);
    voice.fade(1, when, OUTRO_JUMP_S);
    voice.replaced = [old];
    old.leave(when, OUTRO_JUMP_S, voice);
    const stopAt = when + (end - offset);
    for (const src of voice.sources) src.stop(stopAt);
    return voice;
  }

  /** One playing (or scheduled) track: a buffer source and its gain. With stems
   * (`buffer` a Map of stem name → AudioBuffer), one source per stem, each through its
   * own gain, all started at one time with the same loop points: sample-aligned. */
  class Voice {
    constructor(engine, cue, buffer, kind) {
      const ctx = engine.ctx;
      this.engine = engine;
      this.cue = cue;
      this.track = cue.track;
      this.buffer = buffer;
      this.input = buffer; // what a copy of this voice plays (an AudioBuffer or stems)
      this.kind = kind; // "music" | "stinger"
      this.gain = ctx.createGain();
      this.stems = null; // stem name → {source, gain}, when the track plays as stems
      const make = (buf, to) => {
        const src = ctx.createBufferSource();
        src.buffer = buf;
        if (kind === "music" && cue.track.loop) {
          const region = loopRegion(cue.track, buf.duration);
          src.loop = true;
          src.loopStart = region.start;
          src.loopEnd = region.end;
        }
        src.connect(to);
        return src;
      };
      if (buffer instanceof Map) {
        this.stems = new Map();
        this.sources = [];
        for (const [name, buf] of buffer) {
          const g = ctx.createGain();
          g.gain.value = engine.stemGain(cue.mood, name);
          g.connect(this.gain);
          const src = make(buf, g);
          this.stems.set(name, { source: src, gain: g, buffer: buf });
          this.sources.push(src);
        }
        this.buffer = buffer.values().next().value;
        this.source = this.sources[0];
      } else {
        this.source = make(buffer, this.gain);
        this.sources = [this.source];
      }
      this.gain.connect(kind === "music" ? engine.musicBus : engine.stingerBus);
      this.seg = { t0: 0, t1: 0, from: 1, to: 1, fadeIn: true }; // last gain automation
      this.startTime = null;
      this.startOffset = 0;
      this.leaving = null; // the voice that replaces this one, while it fades out
      this.replaced = []; // the voices this one fades out
      this.stopTimer = null;
      this.ended = false;
      this.source.onended = () => {
        this.ended = true;
        engine._forget(this);
      };
    }

    start(when, offset, level) {
      this.gain.gain.setValueAtTime(level, 0);
      this.seg = { t0: 0, t1: 0, from: level, to: level, fadeIn: true };
      this.startTime = when;
      this.startOffset = offset;
      for (const src of this.sources) src.start(when, offset);
    }

    /** Ramp the stem `name` to `gain` from context time `t` over `rampS`. */
    rampStem(name, gain, t, rampS) {
      const stem = this.stems && this.stems.get(name);
      if (stem) rampGain(stem.gain.gain, gain, t, rampS);
    }

    levelAt(t) {
      const s = this.seg;
      if (t <= s.t0) return s.from;
      if (t >= s.t1) return s.to;
      const x = (t - s.t0) / (s.t1 - s.t0);
      const w = s.fadeIn ? Math.sin(x * TAU) : 1 - Math.cos(x * TAU);
      return s.from + (s.to - s.from) * w;
    }

    /** Ramp the gain to `target` over [t, t+dur] (equal-power), keeping what plays until t. */
    fade(target, t, dur) {
      const ctx = this.engine.ctx;
      const g = this.gain.gain;
      const now = ctx.currentTime;
      t = Math.max(t, now);
      const levelNow = this.levelAt(now);
      const levelT = this.levelAt(t);
      g.cancelScheduledValues(now);
      g.setValueAtTime(levelNow, now);
      if (t > now + 1e-4) g.linearRampToValueAtTime(levelT, t);
      if (dur >= 0.01) {
        g.setValueCurveAtTime(equalPowerCurve(levelT, target, target > levelT, 64), t + 1e-4, dur);
      } else {
        // A "cut" still ramps over 5 ms: a jump in gain clicks.
        g.linearRampToValueAtTime(target, t + 0.005);
        dur = 0.005;
      }
      this.seg = { t0: t, t1: t + dur, from: levelT, to: target, fadeIn: target > levelT };
    }

    /** Fade out from t over dur, then stop. */
    leave(t, dur, by) {
      this.leaving = by;
      this.fade(0, t, dur);
      this._stopLater(t + Math.max(dur, 0.005) + 0.05);
    }

    /** Undo a leave() that a newer cue made moot: back to full level. */
    stay() {
      this.leaving = null;
      if (this.stopTimer) clearTimeout(this.stopTimer);
      this.stopTimer = null;
      this.fade(1, this.engine.ctx.currentTime, 0.03);
    }

    _stopLater(ctxTime) {
      if (this.stopTimer) clearTimeout(this.stopTimer);
      const ms = Math.max(0, (ctxTime - this.engine.ctx.currentTime) * 1000) + 30;
      // The gain is already at 0 then, so a late timer is harmless.
      this.stopTimer = setTimeout(() => this.stop(), ms);
    }

    stop() {
      if (this.stopTimer) clearTimeout(this.stopTimer);
      this.stopTimer = null;
      for (const src of this.sources) {
        try {
          src.stop();
        } catch (_) {
          /* never started */
        }
        try {
          src.disconnect();
        } catch (_) {
          /* already */
        }
      }
      try {
        this.gain.disconnect();
      } catch (_) {
        /* already */
      }
      this.ended = true;
      this.engine._forget(this);
    }

    /** Position in the file at AudioContext time t (null before the start). */
    positionAt(t) {
      if (this.startTime === null || t < this.startTime) return null;
      return wrapPosition(this.track, this.buffer.duration, this.startOffset + (t - this.startTime));
    }
  }

  /** The WebAudio side: context, buses, decoded buffers, voices. */
  class AudioEngine {
    constructor(client, options) {
      this.client = client;
      this.options = options;
      this.ctx = null;
      this.master = null;
      this.musicBus = null;
      this.stingerBus = null;
      this.voices = new Set();
      this.buffers = new Map(); // track id → Promise<AudioBuffer>
      this.decoded = new Map(); // track id → AudioBuffer (settled)
      this.volume = options.volume == null ? 1 : options.volume;
      this.chain = null; // cues are placed on the timeline one after the other
      this.gains = new Map(); // mood → {stem → the latest target gain}
      this.duckBus = null;
    }

    /** The gain a new voice of `mood` gives stem `name` (1 before any `layers`). */
    stemGain(mood, name) {
      const g = this.gains.get(mood);
      return g && name in g ? g[name] : 1;
    }

    /** A `layers` message: ramp the stems of every voice of its mood. */
    applyLayers(msg) {
      this.gains.set(msg.mood, Object.assign({}, this.gains.get(msg.mood), msg.gains));
      if (!this.ctx) return;
      const t = Math.max(this.toContextTime(msg.start_at), this.ctx.currentTime);
      for (const v of this.voices) {
        if (v.kind !== "music" || !v.stems || !v.cue || v.cue.mood !== msg.mood) continue;
        for (const [name, gain] of Object.entries(msg.gains)) v.rampStem(name, gain, t, msg.ramp_ms / 1000);
      }
    }

    /** A `duck` message: on the duck bus (music only, never stingers). */
    applyDuck(msg) {
      if (!this.ctx) return;
      const now = this.ctx.currentTime;
      scheduleDuck(this.duckBus.gain, msg, (st) => Math.max(now, this.toContextTime(st)));
    }

    /** The stems of `track` decoded (a Map), or null when it has none or stems are off. */
    decodeStems(track) {
      if (!track.stems || this.options.stems === false) return null;
      const names = Object.keys(track.stems);
      if (!names.length) return null;
      return Promise.all(
        names.map((n) => this.decode(Object.assign({}, track, { id: `${track.id}.${n}`, url: track.stems[n].url })))
      ).then((bufs) => new Map(names.map((n, i) => [n, bufs[i]])));
    }

    get ready() {
      return this.ctx !== null;
    }

    /** Create (or resume) the AudioContext; call from a user gesture. */
    unlock() {
      if (!this.ctx) {
        const Ctx = root.AudioContext || root.webkitAudioContext;
        if (!Ctx) throw new Error("this browser has no Web Audio API");
        const ctx = new Ctx({ latencyHint: this.options.latencyHint || "interactive" });
        this.ctx = ctx;
        this.master = ctx.createGain();
        this.master.gain.value = this.volume;
        this.master.connect(ctx.destination);
        // music → musicBus (stingers' own ducking) → duckBus (the server's `duck`) → master
        this.duckBus = ctx.createGain();
        this.duckBus.connect(this.master);
        this.musicBus = ctx.createGain();
        this.musicBus.connect(this.duckBus);
        this.stingerBus = ctx.createGain();
        this.stingerBus.connect(this.master);
        let wasRunning = false;
        ctx.onstatechange = () => {
          this.client.emit("audio", { state: ctx.state });
          if (ctx.state === "running") {
            // The audio clock stood still while suspended (an iOS interruption, a
            // suspend()): what plays is behind the room now. Place it again.
            if (wasRunning) this.resync(true);
            wasRunning = true;
          } else {
            // Whichever check runs first once it runs again (this handler, or the periodic
            // one when the context resumed before this event came) places it at once.
            if (wasRunning) this._stalled = true;
            if (wasRunning && this.client.options.autoUnlock) {
              this.client._installUnlock(); // the next gesture resumes it
            }
          }
        };
        // iOS unlocks only on a sound started inside the gesture: one silent sample.
        const blip = ctx.createBufferSource();
        blip.buffer = ctx.createBuffer(1, 1, ctx.sampleRate);
        blip.connect(ctx.destination);
        blip.start(0);
      }
      const resumed = this.ctx.state === "running" ? Promise.resolve() : this.ctx.resume();
      return resumed.then(() => this.ctx.state);
    }

    setVolume(v) {
      this.volume = Math.max(0, Math.min(1, v));
      if (this.master) this.master.gain.setTargetAtTime(this.volume, this.ctx.currentTime, 0.02);
    }

    /** Server unix time → AudioContext time (what is heard at that server time). */
    toContextTime(serverTime) {
      const ctx = this.ctx;
      let ctxNow = ctx.currentTime;
      let perfNow = performance.now();
      if (ctx.getOutputTimestamp) {
        const ts = ctx.getOutputTimestamp();
        // Headless or device-less contexts report zeros: fall back to currentTime.
        if (ts && ts.performanceTime > 0 && ts.contextTime > 0) {
          ctxNow = ts.contextTime;
          perfNow = ts.performanceTime;
        }
      }
      const serverAtThen = (performance.timeOrigin + perfNow) / 1000 + (this.client.clock.offset || 0);
      return ctxNow + (serverTime - serverAtThen);
    }

    decode(track) {
      let p = this.buffers.get(track.id);
      if (p) return p;
      p = this.client
        .fetchTrack(track)
        .then((bytes) => this.ctx.decodeAudioData(bytes.slice(0)))
        .then((buffer) => {
          this.decoded.set(track.id, buffer);
          this._evict();
          this.client.emit("track", { id: track.id, track, state: "decoded", buffer });
          return buffer;
        });
      p.catch((err) => {
        this.buffers.delete(track.id);
        this.client.emit("error", {
          code: "decode_failed",
          message: `${track.url}: ${err && err.message ? err.message : err}`,
          track,
        });
      });
      this.buffers.set(track.id, p);
      return p;
    }

    _evict() {
      const max = this.options.maxDecoded || 24;
      if (this.decoded.size <= max) return;
      const busy = new Set(Array.from(this.voices, (v) => v.track.id));
      for (const id of this.decoded.keys()) {
        if (this.decoded.size <= max) break;
        if (busy.has(id)) continue;
        this.decoded.delete(id);
        this.buffers.delete(id);
      }
    }

    _forget(voice) {
      this.voices.delete(voice);
    }

    /** Play a cue: at its start_at, or at once (seeking forward) when that is past.
     * Cues are placed in arrival order; one that a newer cue has already overtaken is skipped. */
    playCue(cue) {
      // A failure is reported and the chain goes on: the next cue must still play.
      this.chain = (this.chain || Promise.resolve())
        .then(() => this._playCue(cue))
        .catch((err) => this.client.emit("error", { code: "playback_failed", message: String(err), cue }));
      return this.chain;
    }

    _superseded(cue) {
      const latest = this.client.cue;
      if (!latest || latest === cue) return false;
      if (latest.session !== cue.session) return true;
      return latest.start_at <= this.client.serverNow() + (this.options.scheduleLeadS || 0.03);
    }

    async _playCue(cue) {
      if (this._superseded(cue)) return;
      let buffer;
      let stems = null;
      try {
        stems = await this.decodeStems(cue.track);
        buffer = stems ? stems.values().next().value : await this.decode(cue.track);
      } catch (_) {
        return; // reported by decode()
      }
      if (!this.ctx || this._superseded(cue)) return;
      const ctx = this.ctx;
      const now = ctx.currentTime;
      const lead = this.options.scheduleLeadS || 0.03;
      const tr = cue.transition || {};
      const fadeKind = tr.fade || "cross";
      const fade = Math.max(0, (Number(tr.fade_ms) || 0) / 1000);
      let when = this.toContextTime(cue.start_at);
      let offset = Number(cue.offset_s) || 0;
      let late = 0;
      if (when < now + lead) {
        late = now + lead - when;
        offset = wrapPosition(cue.track, buffer.duration, offset + late);
        when = now + lead;
      }

      // Latest wins: voices not yet started belong to cues this one replaces.
      for (const v of Array.from(this.voices)) {
        if (v.kind === "music" && v.startTime > now) {
          for (const old of v.replaced) if (old.leaving === v) old.stay();
          v.stop();
        }
      }
      if (offset === null) {
        // A one-shot track that has already ended: only the leaving part applies.
        this._leaveAll(when, fade, null);
        return;
      }
      let outgoing = Array.from(this.voices).filter((v) => v.kind === "music" && !v.leaving);
      // The same track at the same place (the server taking back a cue that had not
      // started yet re-cues what plays): keep the voice rather than swap it for a copy.
      if (outgoing.length === 1 && outgoing[0].track.id === cue.track.id && outgoing[0].startTime <= when) {
        const same = outgoing[0];
        const there = same.positionAt(when);
        const lap = loopRegion(cue.track, buffer.duration);
        let gap = there === null ? Infinity : Math.abs(there - offset);
        if (cue.track.loop && lap.end > lap.start) gap = Math.min(gap, lap.end - lap.start - gap);
        if (gap < 0.02) {
          same.cue = cue;
          this.client.emit("scheduled", { cue, contextTime: when, offset, late, kept: true });
          return;
        }
      }
      // The track left plays its outro (cue.exit): it jumps there at exit.at, and the new
      // track (start_at is at or near the outro's end) only fades in.
      let outro = null;
      const exit = cue.exit;
      if (exit) {
        const old = outgoing.find((v) => v.track.id === exit.track);
        if (old) {
          outgoing = outgoing.filter((v) => v !== old);
          let jump = this.toContextTime(Number(exit.at));
          let into = 0;
          if (jump < now + lead) {
            into = now + lead - jump; // heard late: seek into the outro
            jump = now + lead;
          }
          const offsetIn = Number(exit.outro_start_s) + into;
          const ov = startOutro(this, old, exit, jump, offsetIn);
          outro = { contextTime: jump, offset: offsetIn, voice: ov };
        } else {
          // Already jumped (a newer cue after the jump carries the same exit): it plays on.
          const ov = Array.from(this.voices).find((v) => v.outro && v.track.id === exit.track);
          if (ov) outro = { contextTime: ov.startTime, offset: ov.startOffset, voice: ov };
        }
      }
      const voice = new Voice(this, cue, stems || buffer, "music");
      voice.late = late;
      this.voices.add(voice);
      let inFade = 0;
      let outFade = 0;
      if (fadeKind === "cross") inFade = outFade = fade;
      else if (fadeKind === "in") inFade = fade;
      else if (fadeKind === "out") outFade = fade;
      // Nothing to move from: a late start comes in over a short ramp, a timely one as cued.
      if (outgoing.length === 0 && !outro) inFade = late > 0 ? 0.05 : Math.max(inFade, 0.01);
      if (inFade >= 0.01) {
        voice.start(when, offset, 0);
        voice.fade(1, when, inFade);
      } else {
        voice.start(when, offset, 1);
      }
      voice.replaced = outgoing;
      for (const old of outgoing) old.leave(when, outFade, voice);
      this.client.emit("scheduled", {
        cue,
        contextTime: when,
        offset,
        late,
        fade: fadeKind,
        fadeIn: inFade,
        fadeOut: outFade,
        outro: outro && { contextTime: outro.contextTime, offset: outro.offset },
      });
    }

    _leaveAll(when, fade, by) {
      for (const v of Array.from(this.voices)) {
        if (v.kind === "music" && (!v.leaving || v.outro)) v.leave(when, fade, by);
      }
    }

    /** Stop all music (e.g. on leaving a room). */
    stopMusic(fadeS) {
      if (!this.ctx) return;
      this._leaveAll(this.ctx.currentTime, fadeS == null ? 0.3 : fadeS, null);
    }

    async playStinger(msg) {
      let buffer;
      try {
        buffer = await this.decode(msg.track);
      } catch (_) {
        return;
      }
      if (!this.ctx) return;
      const ctx = this.ctx;
      const now = ctx.currentTime;
      let when = this.toContextTime(msg.start_at);
      let offset = 0;
      if (when < now + 0.02) {
        offset = now + 0.02 - when;
        when = now + 0.02;
        if (offset >= buffer.duration) return; // long gone
      }
      const voice = new Voice(this, msg, buffer, "stinger");
      this.voices.add(voice);
      voice.start(when, offset, 1);
      this._duck(when, buffer.duration - offset);
      this.client.emit("scheduled", { stinger: msg, contextTime: when, offset });
    }

    /** Lower the music bus under a stinger: attack, hold for (most of) it, release. */
    _duck(when, length) {
      const d = Object.assign({ gain: 0.45, attackS: 0.06, releaseS: 0.8, maxHoldS: 4 }, this.options.duck);
      const g = this.musicBus.gain;
      const now = this.ctx.currentTime;
      const hold = Math.min(Math.max(0.1, length - d.releaseS), d.maxHoldS);
      g.cancelScheduledValues(now);
      g.setValueAtTime(g.value, now);
      g.setValueAtTime(g.value, Math.max(now, when - d.attackS));
      g.linearRampToValueAtTime(d.gain, when);
      g.setValueAtTime(d.gain, when + hold);
      g.linearRampToValueAtTime(1, when + hold + d.releaseS);
    }

    /**
     * Compare what is heard with the room's musical clock; past `driftToleranceS` (or with
     * `force`), crossfade to the same track at the right position. Audio hardware clocks
     * drift from the system clock (tens of ppm: a few ms a minute), and a suspended context
     * stops its clock, so a long loop would slowly leave the room's beat without this.
     */
    resync(force) {
      const c = this.client;
      const v = this.audible();
      if (!this.ctx || this.ctx.state !== "running" || !v || v.cue !== c.playing) return null;
      for (const x of this.voices) if (x.kind === "music" && x.startTime > this.ctx.currentTime) return null;
      if (this._stalled) force = true; // the first check since a suspension
      const now = c.serverNow();
      const want = c.position(now);
      if (!want || want.position === null) return null;
      const heard = v.positionAt(this.toContextTime(now));
      if (heard === null) return null;
      const region = loopRegion(v.track, v.buffer.duration);
      const lap = region.end - region.start;
      let gap = heard - want.position;
      if (v.track.loop && lap > 0) gap -= lap * Math.round(gap / lap); // across the seam
      this.drift = gap;
      const tol = this.options.driftToleranceS == null ? 0.03 : this.options.driftToleranceS;
      if (!force && Math.abs(gap) <= tol) return gap;
      const lead = this.options.scheduleLeadS || 0.03;
      const when = this.ctx.currentTime + lead;
      // want.position is heard at toContextTime(now), not at currentTime (output latency).
      const offset = wrapPosition(v.track, v.buffer.duration, want.position + (when - this.toContextTime(now)));
      if (offset === null) return gap;
      const nv = new Voice(this, v.cue, v.input, "music");
      this.voices.add(nv);
      nv.start(when, offset, 0);
      nv.fade(1, when, 0.08);
      nv.replaced = [v];
      v.leave(when, 0.08, nv);
      this._stalled = false;
      this.resyncs = (this.resyncs || 0) + 1;
      c.emit("resync", { gap, forced: !!force });
      return gap;
    }

    /** The music voice heard now (the latest started), if any. */
    audible() {
      if (!this.ctx) return null;
      const now = this.ctx.currentTime;
      let best = null;
      for (const v of this.voices) {
        if (v.kind !== "music" || v.startTime === null || v.startTime > now || v.leaving) continue;
        if (!best || v.startTime > best.startTime) best = v;
      }
      return best;
    }
  }

  // ------------------------------------------------------------------------- client

  /**
   * A connection to one session of a segue server, with its musical clock and its audio.
   *
   * Options (all optional):
   *   url          WebSocket URL (default: /ws on this page's host; http(s):// is accepted)
   *   session      session (room) id; without one the server makes one
   *   token        access token (sent as ?token=, which is how browsers authenticate)
   *   audio        play audio (default true); false: clock and events only
   *   autoUnlock   create the AudioContext on the first click/key/touch (default true)
   *   prefetch     fetch announced tracks early (default true); "decode" also decodes them
   *                once audio is unlocked (default), true fetches bytes only until then
   *   volume       0..1 (default 1)
   *   pingSamples  pings per clock sync (default 5); clockRefreshS (default 20)
   *   backoffInitialS (0.25), backoffMaxS (8): reconnect backoff, full jitter
   *   duck         {gain: 0.45, attackS: 0.06, releaseS: 0.8, maxHoldS: 4}
   *   driftToleranceS (0.03), driftCheckS (5): how far the audio may leave the room's
   *                clock before it is re-placed, and how often that is checked
   *   watch (false): receive the room's state (`room` messages) whoever changes it;
   *                `state` then holds the room's state, not only what this client sent
   *   onCue, onBeat, onStinger, ... : listeners, as on("cue"), on("beat"), ...
   *
   * Events: status, welcome, cue, play (a cue's start_at has come), mood, beat, stinger,
   * pending, decision (why no cue came: debounce, dwell…), room (the room's state, with
   * watch), prefetch, track (fetched/decoded), scheduled (audio placed on the timeline),
   * audio (AudioContext state), resync (audio re-placed on the room's clock), clock, state
   * (the state as this client knows it: what it sent, and the room's with watch), error,
   * message (every server message).
   */
  class Client extends Emitter {
    constructor(options) {
      super();
      const o = Object.assign(
        {
          audio: true,
          autoUnlock: true,
          prefetch: "decode",
          pingSamples: 5,
          clockRefreshS: 20,
          backoffInitialS: 0.25,
          backoffMaxS: 8,
          tickMs: 20,
        },
        options || {}
      );
      this.options = o;
      for (const [key, fn] of Object.entries(o)) {
        if (/^on[A-Z]/.test(key) && typeof fn === "function") {
          this.on(key[2].toLowerCase() + key.slice(3), fn);
        }
      }
      if (o.session != null && !SESSION_RE.test(o.session)) {
        throw new Error(`session: 1-64 characters of A-Z a-z 0-9 _ . -, not ${JSON.stringify(o.session)}`);
      }
      this.session = o.session || null;
      this.url = o.url || null;
      this.clock = new ServerClock();
      this.audio = new AudioEngine(this, o);
      this.status = "idle"; // idle | connecting | open | reconnecting | closed | failed
      this.ws = null;
      this.welcome = null;
      this.moods = [];
      this.cue = null; // the latest cue received
      this.playing = null; // the cue whose start_at has come
      this.lastStinger = null;
      this.pending = null;
      this.layers = {}; // mood → the latest `layers` message
      this.duckState = null; // the latest `duck` message
      this.tracks = new Map(); // id → track metadata (prefetched or cued)
      this.bytes = new Map(); // id → Promise<ArrayBuffer>
      this.peakCache = new Map();
      this.state = {}; // what this client has sent; with `watch`, the room's state
      this.room = null; // the latest `room` message (with `watch`)
      this.decision = null; // the latest `decision`: why no cue came
      this.reconnects = 0;
      this.lastError = null;
      this.lastClose = null;
      this._attempt = 0;
      this._closing = false;
      this._queue = [];
      this._ids = 0;
      this._pings = new Map();
      this._clockTimer = null;
      this._reconnectTimer = null;
      this._tick = null;
      this._lastBeat = null;
      this._unlockHandler = null;
      this._known = []; // recent cues (session#seq@start_at), to skip resends
      this._joining = false; // between a welcome and its prefetch
      if (o.audio && o.autoUnlock && root.document) this._installUnlock();
    }

    // --- connection ----------------------------------------------------------

    /** The WebSocket URL for the current session. */
    wsUrl() {
      let base = this.url;
      const loc = root.location;
      if (!base) base = `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
      const u = new URL(base, loc ? loc.href : undefined);
      if (u.protocol === "http:") u.protocol = "ws:";
      if (u.protocol === "https:") u.protocol = "wss:";
      if (u.pathname === "" || u.pathname === "/") u.pathname = "/ws";
      u.searchParams.delete("session");
      if (this.session) u.searchParams.set("session", this.session);
      if (this.options.token) u.searchParams.set("token", this.options.token);
      if (this.options.watch) u.searchParams.set("watch", "state");
      return u.toString();
    }

    /** The HTTP base the track URLs are relative to (the WebSocket's host). */
    httpBase() {
      const u = new URL(this.wsUrl());
      u.protocol = u.protocol === "wss:" ? "https:" : "http:";
      u.pathname = "/";
      u.search = "";
      return u.toString();
    }

    connect() {
      this._closing = false;
      if (this.ws && this.ws.readyState <= 1) return this;
      this._open();
      if (!this._tick) this._tick = setInterval(() => this._onTick(), this.options.tickMs);
      return this;
    }

    _setStatus(status, detail) {
      if (this.status === status && !detail) return;
      this.status = status;
      this.emit("status", Object.assign({ status }, detail || {}));
    }

    _open() {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      this._setStatus(this._attempt > 0 ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = new WebSocket(this.wsUrl());
      } catch (err) {
        this._fail(`cannot connect: ${err.message}`);
        return;
      }
      this.ws = ws;
      ws.onmessage = (ev) => {
        if (this.ws === ws) this._onMessage(ev.data);
      };
      ws.onclose = (ev) => {
        if (this.ws === ws) this._onClose(ev);
      };
      ws.onerror = () => {
        /* onclose follows with the code */
      };
    }

    _onClose(ev) {
      this.ws = null;
      this.lastClose = { code: ev.code, reason: ev.reason };
      clearInterval(this._clockTimer);
      this._clockTimer = null;
      this._pings.clear();
      if (this._closing) {
        this._setStatus("closed", { code: ev.code });
        return;
      }
      if (FATAL_CLOSE_CODES.has(ev.code)) {
        const why =
          ev.code === 4401 ? "the server wants a valid token (closed 4401)" : `closed ${ev.code} ${ev.reason || ""}`.trim();
        this._fail(why, ev.code);
        return;
      }
      this._attempt += 1;
      const cap = Math.min(this.options.backoffMaxS, this.options.backoffInitialS * 2 ** (this._attempt - 1));
      const delay = cap / 2 + Math.random() * (cap / 2);
      this._setStatus("reconnecting", { code: ev.code, inS: delay, attempt: this._attempt });
      this._reconnectTimer = setTimeout(() => this._open(), delay * 1000);
    }

    _fail(message, code) {
      this._closing = true;
      this.lastError = { code: code || "failed", message };
      this._setStatus("failed", { code, message });
      this.emit("error", { code: code === 4401 ? "unauthorized" : "connection", message });
    }

    /** Close for good (no reconnect); music fades out. */
    close() {
      this._closing = true;
      clearTimeout(this._reconnectTimer);
      clearInterval(this._clockTimer);
      clearInterval(this._tick);
      this._tick = null;
      if (this.ws) this.ws.close(1000);
      this.audio.stopMusic(0.3);
      this._setStatus("closed");
    }

    /** Move to another session (room): reconnects, and plays that session's music. */
    setSession(session) {
      if (session != null && session !== "" && !SESSION_RE.test(session)) {
        throw new Error(`session: 1-64 characters of A-Z a-z 0-9 _ . -, not ${JSON.stringify(session)}`);
      }
      session = session || null;
      if (session === this.session && this.ws) return;
      this.session = session;
      this.state = {};
      this.room = null;
      this.decision = null;
      this.cue = null;
      this.playing = null;
      this.pending = null;
      this._lastBeat = null;
      this._known = [];
      this._queue = [];
      this._attempt = 0;
      this._closing = false;
      if (this.ws) {
        const old = this.ws;
        this.ws = null;
        old.close(1000);
      }
      this._open();
      if (!this._tick) this._tick = setInterval(() => this._onTick(), this.options.tickMs);
    }

    _send(msg) {
      const ws = this.ws;
      if (ws && ws.readyState === 1 && this.welcome) {
        ws.send(JSON.stringify(msg));
        return true;
      }
      // Held until the connection is back (bounded: state is re-sent whole anyway).
      if (msg.type !== "ping") {
        this._queue.push(msg);
        if (this._queue.length > 200) this._queue.shift();
      }
      return false;
    }

    /** Merge `set` into the session's state; `opts.unset` drops keys, `opts.replace` replaces it. */
    setState(set, opts) {
      const msg = { type: "state" };
      if (set && Object.keys(set).length) msg.set = set;
      if (opts && opts.unset && opts.unset.length) msg.unset = Array.from(opts.unset);
      if (opts && opts.replace) msg.replace = opts.replace;
      if (opts && opts.id != null) msg.id = opts.id;
      if (msg.replace) this.state = JSON.parse(JSON.stringify(msg.replace));
      for (const [k, v] of Object.entries(msg.set || {})) setPath(this.state, k, v);
      for (const k of msg.unset || []) unsetPath(this.state, k);
      this._send(msg);
      this.emit("state", { state: this.state, sent: msg });
    }

    /** Duck the music (never stingers), e.g. under dialogue: `{depth_db, hold_s,
     * attack_ms, release_ms}`, each optional; without hold_s until `endDuck()`. */
    duck(opts, id) {
      const msg = Object.assign({ type: "duck" }, opts || {});
      if (id != null) msg.id = id;
      this._send(msg);
    }

    /** End the duck under way (the music comes back over its release). */
    endDuck(id) {
      const msg = { type: "duck", end: true };
      if (id != null) msg.id = id;
      this._send(msg);
    }

    /** Send a game event (e.g. "boss_defeated"). */
    event(name, data, id) {
      const msg = { type: "event", name, data: data || {} };
      if (id != null) msg.id = id;
      this._send(msg);
    }

    // --- messages ------------------------------------------------------------

    _onMessage(raw) {
      const received = localNow();
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch (_) {
        console.warn("segue: ignored a message that is not JSON");
        return;
      }
      this.emit("message", msg);
      switch (msg.type) {
        case "welcome":
          return this._onWelcome(msg, received);
        case "cue":
          return this._onCue(msg);
        case "stinger":
          return this._onStinger(msg);
        case "prefetch":
          return this._onPrefetch(msg);
        case "pending":
          this.pending = msg.reason === "failed" ? null : msg;
          return this.emit("pending", msg);
        case "layers":
          this.layers[msg.mood] = msg;
          if (this.options.audio && this.audio.ready) this.audio.applyLayers(msg);
          return this.emit("layers", msg);
        case "duck":
          this.duckState = msg;
          if (this.options.audio && this.audio.ready) this.audio.applyDuck(msg);
          return this.emit("duck", msg);
        case "decision":
          this.decision = msg;
          return this.emit("decision", msg);
        case "room":
          // The room's state, whoever sent it: it replaces this client's copy.
          this.room = msg;
          this.state = msg.state || {};
          this.emit("room", msg);
          return this.emit("state", { state: this.state, room: msg });
        case "pong":
          return this._onPong(msg, received);
        case "error":
          this.lastError = msg;
          return this.emit("error", msg);
        default:
          return undefined; // a newer server's message: ignored
      }
    }

    _onWelcome(msg, received) {
      if (msg.protocol !== PROTOCOL) {
        this._fail(`the server speaks protocol ${msg.protocol}, segue.js ${PROTOCOL}`);
        if (this.ws) this.ws.close(1000);
        return;
      }
      const resumed = this.welcome !== null && this.welcome.session === msg.session;
      if (this.welcome && !resumed) this.clock.reset();
      this.welcome = msg;
      this._joining = true;
      this.session = msg.session;
      this.moods = msg.moods || [];
      if (this._attempt > 0) this.reconnects += 1;
      this._attempt = 0;
      this.clock.seed(msg.server_time, received);
      this._setStatus("open", { session: msg.session, resumed });
      this.emit("welcome", msg);
      const queued = this._queue;
      this._queue = [];
      for (const m of queued) this._send(m);
      this.syncClock(this.options.pingSamples).then(() => this._settleClock(3));
      clearInterval(this._clockTimer);
      this._clockTimer = setInterval(() => this.syncClock(3), this.options.clockRefreshS * 1000);
    }

    /** Send `n` pings, one after the other's pong (or 1 s); the best round trip wins. */
    async syncClock(n) {
      for (let i = 0; i < (n || 1); i++) {
        const ws = this.ws;
        if (!ws || ws.readyState !== 1) return;
        const id = `clk-${++this._ids}`;
        const done = new Promise((resolve) => this._pings.set(id, resolve));
        const t = localNow();
        this._send({ type: "ping", t, id });
        await Promise.race([done, sleepMs(1000)]);
        this._pings.delete(id);
      }
    }

    /** A busy main thread (decoding, layout) stretches round trips, and the offset is only
     * as good as half the best one: while it is over 10 ms, sample again a little later. */
    async _settleClock(tries) {
      for (let i = 0; i < tries && this.clock.rtt !== null && this.clock.rtt > 0.01; i++) {
        await sleepMs(1000 + 500 * i);
        await this.syncClock(this.options.pingSamples);
      }
    }

    _onPong(msg, received) {
      const resolve = this._pings.get(msg.id);
      if (typeof msg.t === "number") {
        const before = this.clock.offset;
        this.clock.add(msg.t, received, msg.server_time);
        this.emit("clock", { offset: this.clock.offset, rtt: this.clock.rtt });
        // Audio placed with a rougher estimate: check it against the better one now.
        if (this.audio.ready && before !== null && Math.abs(this.clock.offset - before) > 0.005) {
          this.audio.resync(false);
        }
      }
      if (resolve) resolve();
    }

    _onCue(cue) {
      const key = `${cue.session}#${cue.seq}@${cue.start_at}`;
      if (this._known.includes(key)) return; // resent on reconnect: already playing or placed
      const prev = this.cue;
      // Between joins seq only grows; right after a welcome a lower seq means the server
      // forgot the session (a restart), and its cues start over.
      if (prev && prev.session === cue.session && cue.seq <= prev.seq && !this._joining) return;
      this._known.push(key);
      if (this._known.length > 16) this._known.shift();
      this.cue = cue;
      this.tracks.set(cue.track.id, cue.track);
      this.pending = this.pending && this.pending.mood === cue.mood ? null : this.pending;
      this.emit("cue", cue);
      this._onTick(); // a cue in the past becomes the playing one at once
      if (this.options.audio && this.audio.ready) this.audio.playCue(cue);
      else this.fetchTrack(cue.track).catch(() => {});
    }

    _onStinger(msg) {
      this.lastStinger = msg;
      this.tracks.set(msg.track.id, msg.track);
      this.emit("stinger", msg);
      if (this.options.audio && this.audio.ready) this.audio.playStinger(msg);
    }

    _onPrefetch(msg) {
      this._joining = false;
      const tracks = msg.tracks || [];
      for (const t of tracks) this.tracks.set(t.id, t);
      this.emit("prefetch", msg);
      if (!this.options.prefetch) return;
      // Two at a time, the current cue's track first: it may be needed at once.
      const want = tracks.slice();
      if (this.cue) want.sort((a, b) => (b.id === this.cue.track.id) - (a.id === this.cue.track.id));
      const work = want.slice();
      const step = () => {
        const t = work.shift();
        if (!t) return Promise.resolve();
        const go =
          this.audio.ready && this.options.prefetch === "decode" ? this.audio.decode(t) : this.fetchTrack(t);
        return go.catch(() => {}).then(step);
      };
      step();
      step();
    }

    // --- tracks --------------------------------------------------------------

    trackUrl(track) {
      return new URL(track.url || `/tracks/${track.id}.${track.format}`, this.httpBase()).toString();
    }

    /** The track's bytes (fetched once; cached by id). */
    fetchTrack(track) {
      let p = this.bytes.get(track.id);
      if (p) return p;
      p = fetch(this.trackUrl(track)).then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status} for ${track.url}`);
        return r.arrayBuffer();
      });
      p.then(
        () => this.emit("track", { id: track.id, track, state: "fetched" }),
        (err) => {
          this.bytes.delete(track.id);
          this.emit("error", { code: "fetch_failed", message: err.message, track });
        }
      );
      this.bytes.set(track.id, p);
      return p;
    }

    /**
     * Peak envelope of a track for drawing (`buckets` pairs of [min, max] in a Float32Array).
     * Uses the decoded buffer when there is one, else decodes offline at a low rate.
     */
    async peaks(track, buckets) {
      buckets = buckets || 200;
      const key = `${track.id}/${buckets}`;
      if (this.peakCache.has(key)) return this.peakCache.get(key);
      let buffer = this.audio.decoded.get(track.id);
      if (!buffer) {
        const bytes = await this.fetchTrack(track);
        const Offline = root.OfflineAudioContext || root.webkitOfflineAudioContext;
        const off = new Offline(1, 1, 8000);
        buffer = await off.decodeAudioData(bytes.slice(0));
      }
      const out = computePeaks(buffer, buckets);
      this.peakCache.set(key, out);
      return out;
    }

    // --- audio ---------------------------------------------------------------

    /** Create/resume the AudioContext (call from a user gesture); then plays what is cued. */
    async unlock() {
      if (!this.options.audio) return "disabled";
      const first = !this.audio.ready;
      const state = await this.audio.unlock();
      this._removeUnlock();
      if (first) {
        this.emit("audio", { state, unlocked: true });
        // The cue already playing (seek to where the room is), then one still to come.
        if (this.playing && this.playing !== this.cue) await this.audio.playCue(this.playing);
        if (this.cue) this.audio.playCue(this.cue);
        if (this.options.prefetch === "decode") {
          for (const t of this.tracks.values()) this.audio.decode(t).catch(() => {});
        }
      }
      return state;
    }

    _installUnlock() {
      const handler = () => {
        this.unlock().catch((err) => console.warn("segue: audio unlock failed:", err));
      };
      this._unlockHandler = handler;
      for (const ev of ["pointerdown", "keydown", "touchend"]) {
        root.document.addEventListener(ev, handler, { capture: true, passive: true });
      }
    }

    _removeUnlock() {
      const handler = this._unlockHandler;
      if (!handler || !root.document) return;
      for (const ev of ["pointerdown", "keydown", "touchend"]) {
        root.document.removeEventListener(ev, handler, { capture: true });
      }
      this._unlockHandler = null;
    }

    setVolume(v) {
      this.audio.setVolume(v);
    }

    // --- musical clock -------------------------------------------------------

    serverNow() {
      return this.clock.now();
    }

    /** Where the session's music is now: mood, track, position, beat and bar. */
    position(serverTime) {
      const now = serverTime == null ? this.serverNow() : serverTime;
      const cue = this.cue && this.cue.start_at <= now ? this.cue : this.playing;
      if (!cue) return null;
      const track = cue.track;
      const buffer = this.audio.decoded.get(track.id);
      const pos = wrapPosition(track, buffer ? buffer.duration : track.duration_s, cue.offset_s + (now - cue.start_at));
      const b = beatAt(track, pos);
      return Object.assign(
        {
          mood: cue.mood,
          seq: cue.seq,
          cue,
          track,
          position: pos,
          ended: pos === null,
          next: this.cue && this.cue !== cue && this.cue.start_at > now ? this.cue : null,
        },
        b
      );
    }

    _onTick() {
      const now = this.serverNow();
      if (this.audio.ready && now - (this._lastDriftCheck || 0) > (this.options.driftCheckS || 5)) {
        this._lastDriftCheck = now;
        this.audio.resync(false);
      }
      const cue = this.cue;
      if (cue && cue !== this.playing && cue.start_at <= now) {
        const previous = this.playing;
        this.playing = cue;
        this._lastBeat = null;
        this.emit("play", { cue, previous });
        if (!previous || previous.mood !== cue.mood) this.emit("mood", { mood: cue.mood, previous: previous && previous.mood, cue });
      }
      const p = this.playing ? this.position(now) : null;
      if (p && p.beat !== null && !p.ended) {
        const key = `${p.seq}:${p.beat}`;
        if (key !== this._lastBeat) {
          this._lastBeat = key;
          this.emit("beat", {
            mood: p.mood,
            beat: p.beat,
            bar: p.bar,
            beatInBar: p.beatInBar,
            beatsPerBar: p.beatsPerBar,
            downbeat: p.beatInBar === 0,
            position: p.position,
          });
        }
      }
    }

    /** A snapshot for tests and debugging. */
    debug() {
      const v = this.audio.audible();
      return {
        version: VERSION,
        status: this.status,
        connected: this.status === "open",
        session: this.session,
        contextState: this.audio.ctx ? this.audio.ctx.state : "none",
        sampleRate: this.audio.ctx ? this.audio.ctx.sampleRate : null,
        mood: this.playing ? this.playing.mood : null,
        cuedMood: this.cue ? this.cue.mood : null,
        seq: this.cue ? this.cue.seq : null,
        trackId: this.playing ? this.playing.track.id : null,
        lastStartAt: this.cue ? this.cue.start_at : null,
        lastOffset: this.cue ? this.cue.offset_s : null,
        pending: this.pending ? this.pending.mood : null,
        stinger: this.lastStinger ? this.lastStinger.event : null,
        fetched: Array.from(this.bytes.keys()),
        decoded: Array.from(this.audio.decoded.keys()),
        voices: Array.from(this.audio.voices, (x) => ({
          kind: x.kind,
          mood: x.cue.mood || x.cue.name,
          trackId: x.track.id,
          started: x.startTime !== null && this.audio.ctx && x.startTime <= this.audio.ctx.currentTime,
          leaving: !!x.leaving,
          loop: x.source.loop,
          loopStart: x.source.loopStart,
          loopEnd: x.source.loopEnd,
        })),
        audibleTrackId: v ? v.track.id : null,
        audiblePosition: v ? v.positionAt(this.audio.ctx.currentTime) : null,
        drift: this.audio.drift == null ? null : this.audio.drift,
        resyncs: this.audio.resyncs || 0,
        serverOffset: this.clock.offset,
        clockRtt: this.clock.rtt,
        clockSamples: this.clock.samples.length,
        reconnects: this.reconnects,
        lastError: this.lastError,
      };
    }
  }

  function computePeaks(buffer, buckets) {
    const out = new Float32Array(buckets * 2);
    const chans = [];
    for (let c = 0; c < buffer.numberOfChannels; c++) chans.push(buffer.getChannelData(c));
    const n = buffer.length;
    for (let b = 0; b < buckets; b++) {
      const i0 = Math.floor((b * n) / buckets);
      const i1 = Math.max(i0 + 1, Math.floor(((b + 1) * n) / buckets));
      let lo = 0;
      let hi = 0;
      for (const data of chans) {
        for (let i = i0; i < i1 && i < n; i++) {
          const x = data[i];
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
      }
      out[2 * b] = lo;
      out[2 * b + 1] = hi;
    }
    return out;
  }

  function setPath(obj, dotted, value) {
    const parts = dotted.split(".");
    let o = obj;
    for (const p of parts.slice(0, -1)) {
      if (typeof o[p] !== "object" || o[p] === null || Array.isArray(o[p])) o[p] = {};
      o = o[p];
    }
    o[parts[parts.length - 1]] = value;
  }

  function unsetPath(obj, dotted) {
    const parts = dotted.split(".");
    let o = obj;
    for (const p of parts.slice(0, -1)) {
      if (typeof o[p] !== "object" || o[p] === null) return;
      o = o[p];
    }
    delete o[parts[parts.length - 1]];
  }

  root.Segue = {
    Client,
    ServerClock,
    PROTOCOL,
    VERSION,
    wrapPosition,
    loopRegion,
    beatAt,
    computePeaks,
    rampGain,
    scheduleDuck,
    Voice,
    startOutro,
    isSessionId: (s) => SESSION_RE.test(s),
  };
})(typeof window !== "undefined" ? window : globalThis);
