"""The sans-I/O protocol core (parsing, validation, building) and the server's wire encoders
and framing, without sockets."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from segue.core import protocol as p
from segue.core.cue import Cue, Pending, Stinger
from segue.core.score import Transition
from segue.core.server import wire
from segue.core.track import Track

TRACK = Track(
    id="ab" * 32,
    mood="combat",
    variant=1,
    format="ogg",
    duration_s=12.5,
    bpm=140.0,
    loop_end_s=12.0,
    sha256="cd" * 32,
    bytes=1234,
    prompt='Driving "battle" music — ünïcode',
    extra={"note": [1, 2]},
)


def error_of(raw: str | bytes) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_message(raw)
    return info.value


# ---------------------------------------------------------------- valid messages


def test_state_message_parses_set_unset_replace_and_id():
    msg = p.parse_client_message(
        '{"type":"state","set":{"in_combat":true,"player.health":0.2},"unset":["boss"],"id":7}'
    )
    assert msg == p.StateMessage(
        set={"in_combat": True, "player.health": 0.2}, unset=("boss",), replace=None, id=7
    )
    msg = p.parse_client_message(b'{"type":"state","replace":{"zone":"crypt"},"id":"a"}')
    assert msg == p.StateMessage(replace={"zone": "crypt"}, id="a")


def test_event_and_ping_parse():
    assert p.parse_client_message('{"type":"event","name":"boss_defeated"}') == p.EventMessage(
        name="boss_defeated", data={}
    )
    assert p.parse_client_message(
        '{"type":"event","name":"x","data":{"a":1},"id":"e1"}'
    ) == p.EventMessage(name="x", data={"a": 1}, id="e1")
    assert p.parse_client_message('{"type":"ping","t":123.5}') == p.PingMessage(t=123.5)
    assert p.parse_client_message('{"type":"ping"}') == p.PingMessage(t=None)


# ---------------------------------------------------------------- errors, each naming the field


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe{", "not UTF-8 text"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"type":"state"} trailing', "Extra data"),
        # Not JSON, though Python's json reads them: a state holding one could not be sent
        # on as JSON (the room's watchers, shared rooms' snapshots).
        ('{"type":"state","set":{"x":NaN}}', "NaN is not a JSON number"),
        ('{"type":"state","set":{"a":{"b":[Infinity]}}}', "Infinity is not a JSON number"),
        ('{"type":"state","set":{"x":-Infinity}}', "-Infinity is not a JSON number"),
        ('{"type":"state","set":{"x":1e400}}', "number 1e400 is out of range"),
        (b'{"type":"ping","t":-1.5e999}', "number -1.5e999 is out of range"),
    ],
)
def test_bad_json(raw, fragment):
    err = error_of(raw)
    assert err.code == "bad_json"
    assert fragment in err.message
    assert "\n" not in err.message


@pytest.mark.parametrize(
    "raw, field",
    [
        ("[1,2]", "message: must be a JSON object, not a list"),
        ('"state"', "message: must be a JSON object, not a string"),
        ("{}", "type: missing"),
        ('{"type":5}', "type: must be a string, not a number"),
        ('{"type":"state","set":[1]}', "state.set: must be an object, not a list"),
        ('{"type":"state","set":{"":1}}', "state.set: keys must be non-empty"),
        ('{"type":"state","unset":"boss"}', "state.unset: must be a list of keys"),
        ('{"type":"state","unset":["a",3]}', "state.unset[1]: must be a non-empty string"),
        ('{"type":"state","replace":3}', "state.replace: must be an object, not a number"),
        ('{"type":"state","sett":{}}', "state.sett: unknown field"),
        ('{"type":"event"}', "event.name: missing"),
        ('{"type":"event","name":""}', "event.name: must be a non-empty string"),
        ('{"type":"event","name":"x","data":[]}', "event.data: must be an object, not a list"),
        ('{"type":"ping","t":"now"}', "ping.t: must be a number, not a string"),
        ('{"type":"ping","t":true}', "ping.t: must be a number, not a boolean"),
        ('{"type":"ping","id":[1]}', "id: must be a string or a number"),
        ('{"type":"ping","id":"' + "x" * 200 + '"}', "id: must be at most 128 characters"),
    ],
)
def test_bad_message_names_the_field(raw, field):
    err = error_of(raw)
    assert err.code == "bad_message"
    assert err.message.startswith(field), err.message


def test_unknown_field_suggests_the_right_one():
    err = error_of('{"type":"state","sett":{"a":1},"id":3}')
    assert "did you mean 'set'?" in err.message
    assert err.id == 3


def test_errors_echo_the_client_id():
    err = error_of('{"type":"state","set":5,"id":"abc"}')
    assert err.id == "abc"
    assert err.to_message() == {
        "type": "error",
        "code": "bad_message",
        "message": err.message,
        "id": "abc",
    }
    err = error_of('{"type":"dance","id":9}')
    assert (err.code, err.id) == ("unknown_type", 9)
    assert "unknown message type 'dance'" in err.message


def test_unknown_type_suggests():
    err = error_of('{"type":"stat"}')
    assert err.code == "unknown_type"
    assert "did you mean 'state'?" in err.message


def test_http_bodies():
    assert p.parse_state_body({"set": {"a": 1}}) == p.StateMessage(set={"a": 1})
    with pytest.raises(p.ProtocolError, match=r"body.type: unknown field"):
        p.parse_state_body({"type": "state", "set": {}})
    with pytest.raises(p.ProtocolError, match=r"body: must be a JSON object"):
        p.parse_state_body([1])
    assert p.parse_event_body({"name": "boss_defeated"}).name == "boss_defeated"
    with pytest.raises(p.ProtocolError, match=r"body.name: missing"):
        p.parse_event_body({"data": {}})
    with pytest.raises(p.ProtocolError) as info:
        p.parse_json_body(b"{oops")
    assert info.value.code == "bad_json" and info.value.message.startswith("body: not valid JSON")
    with pytest.raises(p.ProtocolError, match="body: empty"):
        p.parse_json_body(b"  ")
    # A UTF-8 byte order mark before the body (some clients write one) is ignored.
    assert p.parse_json_body(b'\xef\xbb\xbf{"set": {}}') == {"set": {}}


@pytest.mark.parametrize("good", ["a", "A-b_c.9", "x" * 64])
def test_session_ids_accepted(good):
    assert p.session_id_problem(good) is None


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "..%2f", "é", "a\n"])
def test_session_ids_refused(bad):
    assert p.session_id_problem(bad).startswith("session: must be 1-64 characters")


@pytest.mark.parametrize(
    ("bad", "got"),
    [
        ("room 1", "(got ' ' at position 5)"),
        ("é", "(got 'é' at position 1)"),
        ("x" * 65, "(got 65 characters)"),
    ],
)
def test_a_refused_session_id_says_what_is_wrong_with_it(bad, got):
    assert p.session_id_problem(bad).endswith(got)


# ---------------------------------------------------------------- building and framing


def make_cue(seq: int = 3, start_at: float = 1_700_000_000.125, previous: str | None = "explore"):
    return Cue(
        seq=seq,
        session="room-1",
        mood="combat",
        previous=previous,
        track=TRACK,
        transition=Transition(at="next_beat", fade_ms=300),
        start_at=start_at,
        offset_s=0.0,
    )


def test_encode_cue_equals_the_generic_message():
    cue = make_cue()
    assert json.loads(wire.Encoder().encode_cue(cue, 1_700_000_000.5)) == cue.to_message(
        1_700_000_000.5
    )
    # The track's JSON is computed once and reused, by the encoder that remembers it.
    encoder = wire.Encoder()
    assert encoder.track_json(TRACK) is encoder.track_json(TRACK)
    assert wire.Encoder().track_json(TRACK) is not encoder.track_json(TRACK)


@settings(max_examples=100, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**40),
    start_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    offset=st.floats(min_value=0, max_value=3600, allow_nan=False),
    session=st.from_regex(p.SESSION_ID_RE, fullmatch=True),
    mood=st.text(min_size=1, max_size=20),
    previous=st.one_of(st.none(), st.text(max_size=20)),
)
def test_encode_cue_roundtrips_for_any_values(seq, start_at, offset, session, mood, previous):
    cue = Cue(seq, session, mood, previous, TRACK, Transition(), start_at, offset)
    assert json.loads(wire.Encoder().encode_cue(cue, start_at)) == cue.to_message(start_at)


def test_encode_stinger_equals_the_generic_message():
    stinger = Stinger(
        session="s",
        name="boss_defeated",
        mood="victory",
        track=TRACK,
        at="next_beat",
        start_at=12.25,
    )
    assert json.loads(wire.Encoder().encode_stinger(stinger, 11.0)) == stinger.to_message(11.0)


def test_builders():
    assert p.welcome_message("s1", 10.0, ["explore", "combat"]) == {
        "type": "welcome",
        "protocol": 1,
        "session": "s1",
        "server_time": 10.0,
        "moods": ["explore", "combat"],
    }
    assert p.pong_message(5.5, 6.0, id="q") == {
        "type": "pong",
        "t": 5.5,
        "server_time": 6.0,
        "id": "q",
    }
    assert p.pong_message(None, 6.0) == {"type": "pong", "t": None, "server_time": 6.0}
    assert p.prefetch_message([TRACK])["tracks"][0]["url"] == f"/tracks/{'ab' * 32}.ogg"
    assert p.dumps({"a": [1, 2]}) == '{"a":[1,2]}'
    with pytest.raises(ValueError):
        p.dumps({"a": float("nan")})
    assert Pending("combat").to_message() == p.pending_message("combat")


def parse_frame(data: bytes) -> Frame:
    """Parse with python-websockets' own frame parser (as a client would)."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frames_parse_with_websockets(size):
    payload = ("x" * size).encode()
    frame = parse_frame(wire.text_frame(payload))
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data == payload


# ---------------------------------------------------------------- the SDK's side


def test_server_messages_parse_into_dataclasses():
    cue = p.parse_server_message(wire.Encoder().encode_cue(make_cue(), 5.0))
    assert isinstance(cue, p.CueMessage)
    assert (cue.seq, cue.mood, cue.previous, cue.track.id) == (3, "combat", "explore", TRACK.id)
    assert cue.track == TRACK
    assert cue.transition["fade_ms"] == 300
    welcome = p.parse_server_message(p.dumps(p.welcome_message("s", 1.0, ["a"])))
    assert welcome == p.Welcome(1, "s", 1.0, ("a",))
    assert p.parse_server_message(p.pending_message("m")) == p.PendingMessage("m", "generating")
    assert p.parse_server_message(p.error_message("bad_json", "x", 4)) == p.ErrorMessage(
        "bad_json", "x", 4
    )
    prefetch = p.parse_server_message(p.prefetch_message([TRACK]))
    assert prefetch == p.PrefetchMessage((TRACK,))
    assert isinstance(p.parse_server_message('{"type":"future"}'), p.UnknownMessage)
    with pytest.raises(p.ServerMessageError, match=r"cue\.seq: missing"):
        p.parse_server_message('{"type":"cue"}')


def test_client_builders_are_accepted_by_the_parser():
    for msg in (
        p.state_message({"a": 1}, ["b"], id=1),
        p.state_message(replace={}),
        p.event_message("boss_defeated", {"x": 1}, id="e"),
        p.ping_message(1.5, id=2),
    ):
        parsed = p.parse_client_message(p.dumps(msg))
        assert parsed.type == msg["type"]


# JSON's values: no NaN or Infinity (json.dumps would write them; a frame holding them is
# bad_json, not the value).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except p.ProtocolError as exc:
        return ("error", exc.code, exc.message, exc.id)


@settings(max_examples=100, deadline=None)
@given(
    obj=st.one_of(
        st.fixed_dictionaries({"type": st.just("state"), "set": json_values}),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["state", "event", "ping", "x"])},
            optional={
                "set": json_values,
                "unset": json_values,
                "id": json_values,
                "name": json_values,
                "t": json_values,
            },
        ),
        json_values,
    )
)
def test_fast_path_agrees_with_the_full_validation(obj):
    text = json.dumps(obj)
    assert outcome(p.parse_client_message, text) == outcome(p.parse_client_object, obj)
    padded = f" \n{text}\t "
    assert outcome(p.parse_client_message, padded) == outcome(p.parse_client_object, obj)


# ---------------------------------------------------------------- fast paths = reference paths


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=2**40),
    times=st.lists(
        st.floats(allow_nan=False, allow_infinity=False)
        | st.floats(min_value=1.5e9, max_value=2.5e9)
        | st.sampled_from([0.0, -0.0, 1e-4, 9.999e-5, 1e16, 9999999999999998.0, -1e-4, 5e-324]),
        min_size=3,
        max_size=3,
    ),
    session=st.from_regex(p.SESSION_ID_RE, fullmatch=True),
    mood=st.text(min_size=1, max_size=8),
    previous=st.one_of(st.none(), st.text(max_size=8)),
)
def test_cue_bytes_are_the_generic_encoders(seq, times, session, mood, previous):
    start_at, offset, now = times
    cue = Cue(seq, session, mood, previous, TRACK, Transition(fade_ms=250), start_at, offset)
    expected = p.dumps(cue.to_message(now))
    encoder = wire.Encoder()
    assert encoder.cue_frame(cue, now) == wire.frame_message(expected)  # parts unknown yet
    assert encoder.encode_cue(cue, now) == expected
    assert encoder.cue_frame(cue, now) == wire.frame_message(expected)  # parts remembered


def test_cue_refuses_non_finite_numbers():
    for bad in (math.nan, math.inf, -math.inf):
        cue = Cue(1, "s", "m", None, TRACK, Transition(), bad, 0.0)
        with pytest.raises(ValueError):
            wire.Encoder().encode_cue(cue, 1.0)


json_texts = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**70).flatmap(lambda n: st.sampled_from([n, -n]))
    | st.floats()
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
).map(lambda v: json.dumps(v, separators=(",", ":")))
odd_frames = st.sampled_from(
    [
        b"NaN",
        b'{"t":Infinity}',
        b'"\\ud800"',
        b"1e400",
        b"-1e400",
        b"123456789012345678901234567890",
        b"-9223372036854775809",
        b"18446744073709551616",
        b"[1,]",
        b"\xef\xbb\xbf{}",
        b'{"a":1,"a":2}',
        b" {} ",
        b"{}x",
        b'"\xff"',
        b"[" * 70 + b"]" * 70,
        b"[" * 5000 + b"]" * 5000,
        b'{"type":"state","set":{"x":1e19}}',
        b'{"type":"state","set":{"x":[1e19]}}',
        b'{"type":"state","set":{"x":99999999999999999999}}',
    ]
)


def reference_decode(raw: bytes) -> tuple[str, object]:
    try:
        return "ok", p._decode_std(raw)
    except p.ProtocolError as exc:
        return "error", exc.message


def fast_decode(raw: bytes) -> tuple[str, object]:
    try:
        return "ok", p.decode_client_frame(raw)
    except p.ProtocolError as exc:
        return "error", exc.message


@settings(max_examples=300, deadline=None)
@given(raw=json_texts.map(str.encode) | odd_frames | st.binary(max_size=12))
def test_fast_decode_is_the_standard_librarys(raw):
    # Same value, same types (repr tells 1 from 1.0 and -0.0 from 0.0), same error.
    fast, ref = fast_decode(raw), reference_decode(raw)
    assert fast[0] == ref[0]
    assert repr(fast[1]) == repr(ref[1])
