## A tiny "game" for trying segue from Godot: keys change the game state, the label shows
## what the server decided, and the music follows.
##
##   C  combat on/off        H  take a hit (health -0.2)     P  potion (health 1.0)
##   E  enemies near on/off  V  walk into / out of the village
##   B  the boss appears     K  the boss is defeated (victory stinger)
extends Node

var in_combat := false
var enemies := 0
var in_village := false
var health := 1.0
var boss := false
var _beat_text := ""
var _log: Array[String] = []

@onready var music: SegueMusic = $SegueMusic
@onready var label: Label = $Label


func _ready() -> void:
	music.connected.connect(func(sid: String) -> void: _say("connected to session %s" % sid))
	music.disconnected.connect(
		func(code: int, reason: String) -> void: _say("disconnected (%d %s)" % [code, reason])
	)
	music.cue_received.connect(_on_cue)
	music.mood_changed.connect(
		func(mood: String, previous: String) -> void:
			_say("now playing %s (was %s)" % [mood, previous])
	)
	music.stinger_started.connect(
		func(event_name: String, mood: String) -> void:
			_say("stinger %s for %s" % [mood, event_name])
	)
	music.pending.connect(
		func(mood: String, reason: String) -> void: _say("%s: %s" % [mood, reason])
	)
	music.server_error.connect(
		func(code: String, message: String) -> void: _say("error %s: %s" % [code, message])
	)
	music.beat.connect(_on_beat)
	music.connect_to_server()
	music.set_state({"player.health": health, "zone": "hills"})
	_refresh()


func _on_cue(cue: Dictionary) -> void:
	var tr: Dictionary = cue["transition"]
	var wait := float(cue["start_at"]) - music.server_now()
	_say(
		(
			"cue #%d %s -> %s in %.2f s (%s, %s %d ms)"
			% [
				int(cue["seq"]),
				cue["previous"],
				cue["mood"],
				wait,
				tr["at"],
				tr["fade"],
				int(tr["fade_ms"])
			]
		)
	)


func _on_beat(beat_in_bar: int, bar: int) -> void:
	var dots := ""
	for i in 4:
		dots += "#" if i == beat_in_bar else "."
	_beat_text = "bar %d  %s" % [bar + 1, dots]
	_refresh()


func _unhandled_input(event: InputEvent) -> void:
	var key := event as InputEventKey
	if key == null or not key.pressed or key.echo:
		return
	match key.keycode:
		KEY_C:
			in_combat = not in_combat
			music.set_state({"in_combat": in_combat})
		KEY_E:
			enemies = 0 if enemies > 0 else 3
			music.set_state({"enemies_near": enemies})
		KEY_V:
			in_village = not in_village
			music.set_state({"zone": "village" if in_village else "hills"})
		KEY_H:
			health = maxf(0.05, health - 0.2)
			music.set_state({"player.health": health})
		KEY_P:
			health = 1.0
			music.set_state({"player.health": health})
		KEY_B:
			boss = true
			in_combat = true
			music.set_state({"boss": "ember_wyrm", "in_combat": true})
		KEY_K:
			boss = false
			in_combat = false
			music.set_state({"in_combat": false}, ["boss"])
			music.send_event("boss_defeated")
	_refresh()


func _say(text: String) -> void:
	print("segue: ", text)
	_log.append(text)
	if _log.size() > 12:
		_log.pop_front()
	_refresh()


func _refresh() -> void:
	label.text = (
		(
			"mood: %s   %s\nin_combat=%s enemies_near=%d zone=%s health=%.2f boss=%s\n"
			+ "keys: C combat, E enemies, V village, H hit, P potion, B boss, K boss defeated\n\n%s"
		)
		% [
			music.mood if music.mood != "" else "-",
			_beat_text,
			in_combat,
			enemies,
			"village" if in_village else "hills",
			health,
			boss,
			"\n".join(_log)
		]
	)
