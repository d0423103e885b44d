## A Godot 4 client for segue's WebSocket protocol 1: the adaptive soundtrack of one session.
##
## Add this node to your scene (or autoload it), set [member server_url] and
## [member session], call [method connect_to_server], then tell it about the game:
## [codeblock]
## $SegueMusic.set_state({"in_combat": true, "player.health": 0.8})
## $SegueMusic.send_event("boss_defeated")
## [/codeblock]
## The server answers with cues; this node downloads the tracks (HTTPRequest, cached by
## id), decodes them ([method AudioStreamOggVorbis.load_from_buffer] with the track's loop
## metadata), and starts each cue at its [code]start_at[/code] on the server's clock,
## crossfading between two AudioStreamPlayers with equal-power curves. A cue with an
## [code]exit[/code] (the transition's [code]exit: outro[/code]) makes the track left jump to
## its outro (the song's ending) at [code]exit.at[/code] and play it out instead of fading;
## the new track then starts as the outro ends. Stingers play on a third player over the
## music, which ducks under them.
##
## Timing: the server's clock is estimated NTP-style from pings (best round trip of the
## recent samples). A cue starts on the first frame at which audio started now would be
## heard at or after [code]start_at[/code] (mix and output latency included), from the
## position the room is at by then — so every client of a session plays the same bar.
## Godot 4.2+ (AudioStreamOggVorbis.load_from_buffer); WAV tracks need 4.4+.
class_name SegueMusic
extends Node

signal connected(session_id: String)
signal disconnected(code: int, reason: String)
signal cue_received(cue: Dictionary)
signal mood_changed(mood: String, previous: String)
signal beat(beat_in_bar: int, bar: int)
signal stinger_started(event_name: String, mood: String)
signal pending(mood: String, reason: String)
signal server_error(code: String, message: String)
signal layers_changed(mood: String, gains: Dictionary)
signal duck_changed(duck: Dictionary)

const PROTOCOL := 1
const FATAL_CLOSE_CODES := [4401, 1008, 1009]  # unauthorized, flood, frame too large

## ws:// or wss:// URL of the server's WebSocket endpoint.
@export var server_url: String = "ws://127.0.0.1:8765/ws"
## Session (room) id: 1-64 characters of A-Z a-z 0-9 _ . -; empty: the server makes one.
@export var session: String = ""
## Access token, when the server has tokens (sent as ?token=).
@export var token: String = ""
## Audio bus of the music and stinger players.
@export var bus: StringName = &"Master"
## Music volume, 0..1 (linear).
@export_range(0.0, 1.0) var volume: float = 1.0
## Music level under a stinger (linear), and how fast it goes down and comes back.
@export_range(0.0, 1.0) var duck_gain: float = 0.45
@export var duck_attack_s: float = 0.06
@export var duck_release_s: float = 0.8
## Connect as soon as the node is ready (else call [method connect_to_server]).
@export var connect_on_ready: bool = false
## Pings per clock sync, and how often the clock is synced again.
@export var ping_samples: int = 5
@export var clock_refresh_s: float = 20.0

var mood: String = ""  ## the mood heard now
var current_cue: Dictionary = {}  ## the cue heard now
var scheduled_cue: Dictionary = {}  ## the cue waiting for its start_at (latest wins)
var clock_offset: float = 0.0  ## server clock minus ours, seconds
var clock_rtt: float = INF  ## round trip of the ping the offset comes from

var _ws := WebSocketPeer.new()
var _was_open := false
var _closing := true  # until connect_to_server()
var _welcomed := false
var _attempt := 0
var _retry_at := -1.0
var _joining := false
var _queue: Array = []
var _known: Array = []  # recent cues as "session#seq@start_at": resends are skipped
var _last_seq := -1

var _t0_unix := 0.0
var _t0_usec := 0
var _samples: Array = []
var _pings_left := 0
var _ping_id := 0
var _next_refresh := INF

var _players: Array[AudioStreamPlayer] = []
var _gain: Array[float] = [0.0, 0.0]
var _tweens: Array = [null, null]
var _current := -1
var _stinger_player: AudioStreamPlayer
var _duck := 1.0
var _duck_tween: Tween
var _stingers: Array = []  # stinger messages waiting for their start_at
var _streams: Dictionary = {}  # track id -> AudioStream
var _loading: Dictionary = {}  # track id -> true while downloading
var _tracks: Dictionary = {}  # track id -> track metadata
var _last_beat := ""
# Layers: mood -> stem -> [from, to, t0, t1] (server seconds), and the server's duck.
var _layer_ramps: Dictionary = {}
var _stem_names: Array = [[], []]  # per music player: its stems, in stream order
var _server_duck: Dictionary = {}
# The outro playing (a cue's exit, with "player": the music player it plays on), else empty.
var _outro: Dictionary = {}


func _ready() -> void:
	_t0_unix = Time.get_unix_time_from_system()
	_t0_usec = Time.get_ticks_usec()
	# The prefetch message lists every track with its metadata: more than the 64 KiB default.
	_ws.inbound_buffer_size = 1 << 20
	for i in 2:
		var p := AudioStreamPlayer.new()
		p.bus = bus
		p.volume_db = -80.0
		add_child(p)
		_players.append(p)
	_stinger_player = AudioStreamPlayer.new()
	_stinger_player.bus = bus
	add_child(_stinger_player)
	if connect_on_ready:
		connect_to_server()


# --- connection ------------------------------------------------------------------------


## Open the connection (and keep it open: drops are retried with backoff).
func connect_to_server() -> void:
	_closing = false
	_open()


## Close for good; the music fades out.
func close() -> void:
	_closing = true
	_ws.close(1000, "bye")
	if _current >= 0:
		_fade(_current, 0.0, 0.5)


## Move to another session (room): the music follows that session's cues.
func join(session_id: String) -> void:
	session = session_id
	_last_seq = -1
	_known.clear()
	scheduled_cue = {}
	_ws.close(1000, "changing session")
	_closing = false
	_attempt = 0
	_retry_at = _local_now() + 0.05


func _open() -> void:
	var url := server_url
	var query := PackedStringArray()
	if session != "":
		query.append("session=" + session.uri_encode())
	if token != "":
		query.append("token=" + token.uri_encode())
	if not query.is_empty():
		url += ("&" if "?" in url else "?") + "&".join(query)
	_ws = WebSocketPeer.new()
	_ws.inbound_buffer_size = 1 << 20
	var err := _ws.connect_to_url(url)
	_retry_at = -1.0
	if err != OK:
		_schedule_retry()


func _schedule_retry() -> void:
	_attempt += 1
	var cap := minf(8.0, 0.25 * pow(2.0, _attempt - 1))
	_retry_at = _local_now() + randf_range(cap / 2.0, cap)  # full jitter


func _poll_socket() -> void:
	_ws.poll()
	var state := _ws.get_ready_state()
	if state == WebSocketPeer.STATE_OPEN:
		_was_open = true
		while _ws.get_available_packet_count() > 0:
			var text := _ws.get_packet().get_string_from_utf8()
			var msg = JSON.parse_string(text)
			if msg is Dictionary:
				_on_message(msg)
	elif state == WebSocketPeer.STATE_CLOSED and _retry_at < 0.0 and not _closing:
		_welcomed = false
		var code := _ws.get_close_code()
		if _was_open:
			_was_open = false
			disconnected.emit(code, _ws.get_close_reason())
		if code in FATAL_CLOSE_CODES:
			_closing = true
			push_warning(
				"segue: connection closed for good (%d %s)" % [code, _ws.get_close_reason()]
			)
			return
		_schedule_retry()
	if _retry_at >= 0.0 and _local_now() >= _retry_at and not _closing:
		_open()


func _send(msg: Dictionary) -> void:
	if _ws.get_ready_state() == WebSocketPeer.STATE_OPEN and _welcomed:
		_ws.send_text(JSON.stringify(msg))
	elif msg["type"] != "ping":
		_queue.append(msg)  # sent after the next welcome


## Merge [param values] into the session's state (dotted keys reach nested state), and
## drop the keys in [param unset].
func set_state(values: Dictionary, unset: Array = []) -> void:
	var msg := {"type": "state"}
	if not values.is_empty():
		msg["set"] = values
	if not unset.is_empty():
		msg["unset"] = unset
	_send(msg)


## Send a one-shot game event (e.g. "boss_defeated").
## Duck the music (never stingers), e.g. under dialogue; hold_s < 0: until [method end_duck].
func duck(depth_db: float = -12.0, hold_s: float = -1.0, attack_ms: int = 50, release_ms: int = 500) -> void:
	var msg := {"type": "duck", "depth_db": depth_db, "attack_ms": attack_ms, "release_ms": release_ms}
	if hold_s >= 0.0:
		msg["hold_s"] = hold_s
	_send(msg)


## End the duck under way (the music comes back over its release).
func end_duck() -> void:
	_send({"type": "duck", "end": true})


func send_event(event_name: String, data: Dictionary = {}) -> void:
	_send({"type": "event", "name": event_name, "data": data})


# --- messages ----------------------------------------------------------------------------


func _on_message(msg: Dictionary) -> void:
	match msg.get("type", ""):
		"welcome":
			_on_welcome(msg)
		"cue":
			_on_cue(msg)
		"stinger":
			var track: Dictionary = msg["track"]
			_tracks[track["id"]] = track
			_load(track)
			_stingers.append(msg)
		"prefetch":
			_joining = false
			for track in msg.get("tracks", []):
				_tracks[track["id"]] = track
				_load(track)
		"pending":
			pending.emit(str(msg.get("mood", "")), str(msg.get("reason", "")))
		"layers":
			_on_layers(msg)
		"duck":
			_server_duck = msg
			duck_changed.emit(msg)
		"pong":
			_on_pong(msg)
		"error":
			server_error.emit(str(msg.get("code", "")), str(msg.get("message", "")))


func _on_welcome(msg: Dictionary) -> void:
	if int(msg.get("protocol", 0)) != PROTOCOL:
		push_error("segue: the server speaks protocol %s, this client 1" % msg.get("protocol"))
		close()
		return
	session = str(msg["session"])
	_attempt = 0
	_joining = true
	_welcomed = true
	if _samples.is_empty():
		clock_offset = float(msg["server_time"]) - _local_now()  # rough, until pongs come
	connected.emit(session)
	for queued in _queue:
		_ws.send_text(JSON.stringify(queued))
	_queue.clear()
	_sync_clock(ping_samples)
	_next_refresh = _local_now() + clock_refresh_s


func _on_cue(cue: Dictionary) -> void:
	var key := "%s#%d@%.6f" % [cue["session"], int(cue["seq"]), float(cue["start_at"])]
	if key in _known:
		return  # resent after a reconnect: already playing or scheduled
	# Between joins seq only grows; right after a welcome a lower one means a restarted server.
	if int(cue["seq"]) <= _last_seq and not _joining:
		return
	_known.append(key)
	if _known.size() > 16:
		_known.pop_front()
	_last_seq = int(cue["seq"])
	var track: Dictionary = cue["track"]
	_tracks[track["id"]] = track
	_load(track)
	for stem in _stem_tracks(track):
		_load(stem)
	scheduled_cue = cue  # latest wins: replaces a cue that has not started yet
	cue_received.emit(cue)


# --- clock -------------------------------------------------------------------------------


func _local_now() -> float:
	return _t0_unix + float(Time.get_ticks_usec() - _t0_usec) / 1e6


## The server's clock now (unix seconds).
func server_now() -> float:
	return _local_now() + clock_offset


func _sync_clock(n: int) -> void:
	_pings_left = n
	_send_ping()


func _send_ping() -> void:
	_ping_id += 1
	_send({"type": "ping", "t": _local_now(), "id": "clk-%d" % _ping_id})


func _on_pong(msg: Dictionary) -> void:
	if not msg.has("t"):
		return
	var received := _local_now()
	var sent: float = msg["t"]
	var rtt := received - sent
	if rtt < 0.0:
		return
	# NTP: the server stamped its time half-way through the round trip.
	_samples.append({"offset": float(msg["server_time"]) - (sent + received) / 2.0, "rtt": rtt})
	if _samples.size() > 12:
		_samples.pop_front()
	var best: Dictionary = _samples[0]
	for s in _samples:
		if s["rtt"] < best["rtt"]:
			best = s
	clock_offset = best["offset"]
	clock_rtt = best["rtt"]
	_pings_left -= 1
	if _pings_left > 0:
		_send_ping()


# --- tracks ------------------------------------------------------------------------------


func _http_base() -> String:
	var base := server_url.replace("wss://", "https://").replace("ws://", "http://")
	var scheme_end := base.find("://") + 3
	var path_start := base.find("/", scheme_end)
	return base if path_start < 0 else base.substr(0, path_start)


func _load(track: Dictionary) -> void:
	var id: String = track["id"]
	if _streams.has(id) or _loading.has(id):
		return
	_loading[id] = true
	var req := HTTPRequest.new()
	add_child(req)
	req.request_completed.connect(_on_downloaded.bind(track, req))
	var url: String = track.get("url", "/tracks/%s.%s" % [id, track.get("format", "ogg")])
	if req.request(_http_base() + url) != OK:
		_loading.erase(id)
		req.queue_free()


func _on_downloaded(
	result: int,
	code: int,
	_headers: PackedStringArray,
	body: PackedByteArray,
	track: Dictionary,
	req: HTTPRequest
) -> void:
	req.queue_free()
	var id: String = track["id"]
	_loading.erase(id)
	if result != HTTPRequest.RESULT_SUCCESS or code != 200:
		push_warning("segue: could not download %s (result %d, HTTP %d)" % [id, result, code])
		return
	var stream := _make_stream(track, body)
	if stream != null:
		_streams[id] = stream


## An AudioStream for the track's bytes, with its loop and beat metadata.
func _make_stream(track: Dictionary, body: PackedByteArray) -> AudioStream:
	var looping: bool = track.get("loop", true)
	var loop_start: float = track.get("loop_start_s", 0.0)
	var bpm: float = track.get("bpm", 0.0) if track.get("bpm") != null else 0.0
	var per_bar: int = int(track.get("beats_per_bar", 4))
	var loop_end: float = track.get("loop_end_s", track.get("duration_s", 0.0))
	match str(track.get("format", "ogg")):
		"ogg":
			var ogg := AudioStreamOggVorbis.load_from_buffer(body)
			if ogg == null:
				return null
			ogg.loop = looping
			ogg.loop_offset = loop_start  # Ogg loops run to the end of the file
			ogg.bpm = bpm
			ogg.bar_beats = per_bar
			ogg.beat_count = int(round(loop_end * bpm / 60.0)) if bpm > 0.0 else 0
			return ogg
		"mp3":
			var mp3 := AudioStreamMP3.new()
			mp3.data = body
			mp3.loop = looping
			mp3.loop_offset = loop_start
			mp3.bpm = bpm
			mp3.bar_beats = per_bar
			return mp3
		"wav":
			var wav := AudioStreamWAV.load_from_buffer(body)  # Godot 4.4+
			if wav == null:
				return null
			if looping:
				wav.loop_mode = AudioStreamWAV.LOOP_FORWARD
				wav.loop_begin = int(loop_start * wav.mix_rate)
				wav.loop_end = int(loop_end * wav.mix_rate)
			return wav
	push_warning("segue: Godot cannot play %s tracks; use format: ogg" % track.get("format"))
	return null


# --- layers and ducks --------------------------------------------------------------------


## One track dictionary per stem (same loop and beat metadata, the stem's url), in order.
func _stem_tracks(track: Dictionary) -> Array:
	var out: Array = []
	var stems: Dictionary = track.get("stems", {}) if track.get("stems") != null else {}
	var names := stems.keys()
	names.sort()
	for stem_name in names:
		var stem := track.duplicate()
		stem["id"] = "%s.%s" % [track["id"], stem_name]
		stem["url"] = stems[stem_name]["url"]
		stem["stem"] = stem_name
		out.append(stem)
	return out


func _stems_ready(track: Dictionary) -> bool:
	for stem in _stem_tracks(track):
		if not _streams.has(stem["id"]):
			return false
	return true


## The stems of [param track] as one AudioStreamSynchronized (Godot 4.3+): started together,
## sample-aligned, each with its own volume; null when the track has no stems.
func _synchronized(track: Dictionary, i: int) -> AudioStream:
	var stems := _stem_tracks(track)
	_stem_names[i] = []
	if stems.is_empty() or not ClassDB.class_exists("AudioStreamSynchronized"):
		return null
	var sync: AudioStream = ClassDB.instantiate("AudioStreamSynchronized")
	sync.set("stream_count", stems.size())
	for k in stems.size():
		sync.call("set_sync_stream", k, _streams[stems[k]["id"]])
		_stem_names[i].append(stems[k]["stem"])
	return sync


func _on_layers(msg: Dictionary) -> void:
	var m := str(msg.get("mood", ""))
	var ramps: Dictionary = _layer_ramps.get(m, {})
	var t0 := float(msg["start_at"])
	# A jump in gain clicks: every change is a ramp of at least 20 ms (a frame or two).
	var t1 := t0 + maxf(float(msg.get("ramp_ms", 0)) / 1000.0, 0.02)
	var gains: Dictionary = msg.get("gains", {})
	for stem in gains:
		var from := float(gains[stem])
		if ramps.has(stem):
			from = _ramp_at(ramps[stem], t0)
		ramps[stem] = [from, float(gains[stem]), t0, t1]
	_layer_ramps[m] = ramps
	layers_changed.emit(m, gains)


func _ramp_at(r: Array, t: float) -> float:
	if t <= r[2]:
		return r[0]
	if t >= r[3]:
		return r[1]
	return lerpf(r[0], r[1], (t - r[2]) / (r[3] - r[2]))


## The server's duck (linear gain) at server time [param t].
func _duck_at(t: float) -> float:
	var d := _server_duck
	if d.is_empty():
		return 1.0
	var depth := db_to_linear(float(d.get("depth_db", 0.0)))
	var start := float(d["start_at"])
	var attack := maxf(float(d.get("attack_ms", 0)) / 1000.0, 0.005)
	var release := maxf(float(d.get("release_ms", 0)) / 1000.0, 0.005)
	if t <= start:
		return 1.0
	var g := lerpf(1.0, depth, minf((t - start) / attack, 1.0))
	if d.get("end_at") != null and t > float(d["end_at"]):
		var end := float(d["end_at"])
		g = lerpf(_duck_at_before(end), 1.0, minf((t - end) / release, 1.0))
	return g


func _duck_at_before(end: float) -> float:
	var d := _server_duck
	var depth := db_to_linear(float(d.get("depth_db", 0.0)))
	var attack := maxf(float(d.get("attack_ms", 0)) / 1000.0, 0.005)
	return lerpf(1.0, depth, clampf((end - float(d["start_at"])) / attack, 0.0, 1.0))


# --- playing -----------------------------------------------------------------------------


## Server time at which audio started now is heard (mix and output latency included).
func _heard_at() -> float:
	return server_now() + AudioServer.get_time_to_next_mix() + AudioServer.get_output_latency()


## Position in a track after playing [param pos] seconds from its start, wrapped inside the
## loop; -1 when a one-shot has ended.
func _wrap(track: Dictionary, pos: float) -> float:
	var duration: float = track.get("duration_s", 0.0)
	if not track.get("loop", true):
		return pos if pos < duration else -1.0
	var start: float = track.get("loop_start_s", 0.0)
	var end: float = track.get("loop_end_s", duration)
	if pos >= end and end > start:
		pos = start + fmod(pos - start, end - start)
	return maxf(pos, 0.0)


func _process(_delta: float) -> void:
	_poll_socket()
	if _local_now() >= _next_refresh:
		_next_refresh = _local_now() + clock_refresh_s
		_sync_clock(3)
	var heard := _heard_at()
	_follow_outro(heard)
	if not scheduled_cue.is_empty():
		var id: String = scheduled_cue["track"]["id"]
		var ready := _streams.has(id) and _stems_ready(scheduled_cue["track"])
		if ready and heard >= float(scheduled_cue["start_at"]):
			_start(scheduled_cue, heard)
			scheduled_cue = {}
	for i in range(_stingers.size() - 1, -1, -1):
		var s: Dictionary = _stingers[i]
		if _streams.has(s["track"]["id"]) and heard >= float(s["start_at"]):
			_stingers.remove_at(i)
			_play_stinger(s, heard)
	_keep_loop_end()
	_apply_gains()
	_emit_beats()


## The cue ahead's exit (protocol.md, cue.exit): at exit.at the track left jumps to its
## outro and plays it to outro_end_s, then stops; a newer cue without it (latest wins)
## before then cancels it. Godot's player seeks within one stream (frame-accurate, no
## crossfade: the jump lands on a bar line of the song).
func _follow_outro(heard: float) -> void:
	if not _outro.is_empty():
		var end_at := float(_outro["at"]) + float(_outro["outro_end_s"]) - float(_outro["outro_start_s"])
		if heard >= end_at:
			_fade(int(_outro["player"]), 0.0, 0.005)  # the outro's end: silent already
			_outro = {}
		return
	if scheduled_cue.is_empty() or not scheduled_cue.has("exit") or _current < 0:
		return
	var ex: Dictionary = scheduled_cue["exit"]
	if heard < float(ex["at"]) or str(current_cue.get("track", {}).get("id", "")) != str(ex["track"]):
		return
	var pos := float(ex["outro_start_s"]) + heard - float(ex["at"])  # heard late: further in
	if pos < float(ex["outro_end_s"]):
		_players[_current].seek(pos)
	_outro = ex.duplicate()  # (already over when heard that late: stopped next frame)
	_outro["player"] = _current


func _start(cue: Dictionary, heard: float) -> void:
	var track: Dictionary = cue["track"]
	var pos := _wrap(track, float(cue["offset_s"]) + heard - float(cue["start_at"]))
	var tr: Dictionary = cue.get("transition", {})
	var fade_s := float(tr.get("fade_ms", 0)) / 1000.0
	var kind: String = tr.get("fade", "cross")
	var fade_in := fade_s if kind in ["cross", "in"] else 0.0
	var fade_out := fade_s if kind in ["cross", "out"] else 0.0
	var previous := mood
	if pos < 0.0:  # a one-shot that has already ended: only the leaving part applies
		if _current >= 0:
			_fade(_current, 0.0, fade_out)
		return
	var next := 0 if _current < 0 else 1 - _current
	var player := _players[next]
	var sync := _synchronized(track, next)
	player.stream = sync if sync != null else _streams[track["id"]]
	_gain[next] = 0.0
	player.play(pos)
	if _current < 0:
		fade_in = maxf(fade_in, 0.05)  # nothing to leave: come in without a click
	if _outro.is_empty() and cue.has("exit") and _current >= 0:
		# The jump was missed (the track arrived late): the track left fades as usual.
		fade_out = maxf(fade_out, 0.05)
	_fade(next, 1.0, fade_in)
	var outro_plays := not _outro.is_empty() and int(_outro["player"]) == _current
	if _current >= 0 and not outro_plays:  # an outro is never faded: it ends by itself
		_fade(_current, 0.0, maxf(fade_out, 0.005))
	_current = next
	current_cue = cue
	mood = str(cue["mood"])
	if mood != previous:
		mood_changed.emit(mood, previous)


## Equal-power gain ramp of music player [param i] to [param target] over [param seconds].
func _fade(i: int, target: float, seconds: float) -> void:
	if _tweens[i] != null:
		_tweens[i].kill()
	var from := _gain[i]
	if seconds <= 0.005:
		_gain[i] = target
		if target == 0.0:
			_players[i].stop()
		return
	var tween := create_tween()
	tween.tween_method(_set_fade_gain.bind(i, from, target), 0.0, 1.0, seconds)
	if target == 0.0:
		tween.tween_callback(_players[i].stop)
	_tweens[i] = tween


func _set_fade_gain(x: float, i: int, from: float, target: float) -> void:
	var w := sin(x * PI / 2.0) if target > from else 1.0 - cos(x * PI / 2.0)
	_gain[i] = lerpf(from, target, w)


func _apply_gains() -> void:
	var heard := _heard_at()
	var duck := _duck_at(heard)
	for i in 2:
		var g := _gain[i] * _duck * duck * volume
		_players[i].volume_db = linear_to_db(maxf(g, 0.00001))
	# Stem gains follow the layers ramps frame by frame (each step a fraction of a ramp of
	# at least 20 ms: no click; finer than Godot's own stepwise volume changes).
	if _current >= 0 and not _stem_names[_current].is_empty() and not current_cue.is_empty():
		var ramps: Dictionary = _layer_ramps.get(str(current_cue["mood"]), {})
		var sync: AudioStream = _players[_current].stream
		for k in _stem_names[_current].size():
			var stem_name: String = _stem_names[_current][k]
			var sg := _ramp_at(ramps[stem_name], heard) if ramps.has(stem_name) else 1.0
			sync.call("set_sync_stream_volume", k, linear_to_db(maxf(sg, 0.00001)))


## Ogg Vorbis and MP3 streams loop to the end of the file; when a track's loop ends
## earlier (a tail follows), jump back by hand (frame-accurate, not sample-accurate).
func _keep_loop_end() -> void:
	if _current < 0 or current_cue.is_empty():
		return
	if not _outro.is_empty() and int(_outro["player"]) == _current:
		return  # playing its outro, after the loop: no jump back
	var track: Dictionary = current_cue["track"]
	var duration: float = track.get("duration_s", 0.0)
	var end: float = track.get("loop_end_s", duration)
	if not track.get("loop", true) or end >= duration - 0.01:
		return
	var player := _players[_current]
	var pos := player.get_playback_position()
	if player.playing and pos >= end:
		player.seek(float(track.get("loop_start_s", 0.0)) + pos - end)


func _play_stinger(msg: Dictionary, heard: float) -> void:
	var offset := heard - float(msg["start_at"])
	var stream: AudioStream = _streams[msg["track"]["id"]]
	var length := stream.get_length()
	if offset >= length:
		return
	_stinger_player.stream = stream
	_stinger_player.volume_db = linear_to_db(maxf(volume, 0.00001))
	_stinger_player.play(offset)
	stinger_started.emit(str(msg.get("name", "")), str(msg.get("mood", "")))
	# Duck the music under it: down fast, hold, back up before it ends.
	if _duck_tween != null:
		_duck_tween.kill()
	var hold := clampf(length - offset - duck_release_s, 0.1, 4.0)
	_duck_tween = create_tween()
	_duck_tween.tween_property(self, "_duck", duck_gain, duck_attack_s)
	_duck_tween.tween_interval(hold)
	_duck_tween.tween_property(self, "_duck", 1.0, duck_release_s)


## The session's musical clock: emits [signal beat] as the cue that plays crosses beats.
func _emit_beats() -> void:
	if current_cue.is_empty():
		return
	var track: Dictionary = current_cue["track"]
	var bpm = track.get("bpm")
	if bpm == null or float(bpm) <= 0.0:
		return
	var now := server_now()
	var pos := _wrap(track, float(current_cue["offset_s"]) + now - float(current_cue["start_at"]))
	if pos < 0.0:
		return
	var per_bar := int(track.get("beats_per_bar", 4))
	var n := int(floor((pos - float(track.get("first_beat_s", 0.0))) * float(bpm) / 60.0))
	var key := "%d:%d" % [int(current_cue["seq"]), n]
	if key != _last_beat:
		_last_beat = key
		beat.emit(posmod(n, per_bar), floori(float(n) / per_bar))
