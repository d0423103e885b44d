"""The synth as a generator plugin: registration, contract, limits, words."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segue.core.errors import ConfigError, PermanentError
from segue.core.generator import Generator
from segue.core.plugins import Plugins
from segue.core.request import GenerationRequest
from segue.plugins import synth
from segue.plugins.synth import SynthGenerator, code_digest
from segue.plugins.synth.composer import compose
from segue.plugins.synth.words import key_in_prompt, parse_key, read_words, traits_of


def req(**fields) -> GenerationRequest:
    fields.setdefault("mood", "m")
    fields.setdefault("variant", 0)
    fields.setdefault("prompt", "")
    return GenerationRequest(**fields)


def test_registered_as_synth_and_follows_the_generator_protocol(tmp_path):
    plugins = Plugins(load_entry_points=False)
    gen = plugins.generators.get("synth").factory({}, tmp_path)
    assert isinstance(gen, Generator)
    assert gen.name == "synth" and gen.model == "segue-synth-2"
    assert gen.concurrency >= 1
    params = gen.audio_params()
    assert params == {
        "model": "segue-synth-2",
        "code": code_digest(),
        "sample_rate": 44100,
        "soundfont": params["soundfont"],
    }
    assert params["soundfont"] != "none"  # a SoundFont is always found (pretty_midi ships one)
    assert gen.estimate_cost(req(prompt="x")) == 0.0
    assert SynthGenerator({"seed": 7}, tmp_path).audio_params()["seed"] == 7


def test_another_synth_is_another_cache_key(tmp_path):
    """A project upgraded in place regenerates what the synth plays otherwise now: a digest
    of its code is in every key (an upgrade's tracks had changed under the same keys)."""
    package = Path(synth.__file__).parent
    same, edited = tmp_path / "same", tmp_path / "edited"
    for copy in (same, edited):
        copy.mkdir()
        for path in package.glob("*.py"):
            (copy / path.name).write_bytes(path.read_bytes())
    (edited / "drums.py").write_bytes((edited / "drums.py").read_bytes() + b"\n# louder\n")
    assert code_digest(same) == code_digest() and len(code_digest()) == 12
    assert code_digest(edited) != code_digest()
    keys = {
        req(prompt="x", params=params).cache_key
        for params in ({"code": code_digest()}, {"code": code_digest(edited)})
    }
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sample_rate": 22050}, "sample_rate"),
        ({"voices": 3}, "unknown option 'voices'"),
        ({"seed": "x"}, "seed"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message):
        SynthGenerator(config, tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "H major"}, "cannot read key 'H major'"),
        ({"duration_s": 0.1}, "0.1 s"),
        ({"duration_s": 3600.0}, "3600 s"),
        ({"bpm": 400.0}, "bpm"),
    ],
)
def test_impossible_requests_are_permanent_errors(tmp_path, fields, message):
    gen = SynthGenerator({}, tmp_path)
    with pytest.raises(PermanentError, match=message):
        gen.check(req(prompt="calm", **fields))


PLAN = {
    "positive_global_styles": ["key of H"],
    "negative_global_styles": [],
    "sections": [],
}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt": "calm harp at 400 BPM"}, "the prompt asks for 400 BPM; the synth plays 20 to"),
        ({"prompt": "calm harp, 5 bpm"}, "the prompt asks for 5 BPM"),
        ({"prompt": "calm harp in H minor"}, "the prompt asks for the key 'H minor', which names"),
        ({"prompt": "calm, key of X"}, "the key 'X'"),
        ({"prompt": "calm", "composition_plan": PLAN}, "the plan's styles ask for the key 'H'"),
    ],
)
def test_a_tempo_or_key_the_prompt_asks_for_and_the_synth_cannot_play_is_refused(
    tmp_path, fields, message
):
    # Before, each was silently replaced by a tempo or key of the synth's choosing.
    gen = SynthGenerator({}, tmp_path)
    with pytest.raises(PermanentError, match=message):
        gen.check(req(**fields))
    # The mood's own bpm and key win over the prompt's: then nothing is refused.
    gen.check(req(bpm=90.0, key="B minor", **fields))


async def test_generate_writes_a_float_wav_with_the_musical_facts(tmp_path):
    gen = SynthGenerator({}, tmp_path)
    out = await gen.generate(
        req(prompt="calm harp, 90 BPM, in G minor", duration_s=8.0), tmp_path / "work"
    )
    info = sf.info(out.path)
    assert out.path.parent == tmp_path / "work"
    assert info.subtype == "FLOAT" and info.channels == 2 and info.samplerate == 44100
    assert out.bpm == 90.0 and out.beats_per_bar == 4 and out.first_beat_s == 0.0
    assert out.loop is True and out.loop_start_s == 0.0
    assert info.frames == round(out.loop_end_s * 44100)
    assert out.extra["key"] == "G minor" and out.cost_usd == 0.0


async def test_generate_does_not_block_the_event_loop(tmp_path):
    gen = SynthGenerator({}, tmp_path)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await gen.generate(req(prompt="battle", duration_s=20.0), tmp_path)
    task.cancel()
    assert ticks > 3


def test_a_48k_generator_renders_at_48k(tmp_path):
    gen = SynthGenerator({"sample_rate": 48000}, tmp_path)
    out = asyncio.run(gen.generate(req(prompt="calm", duration_s=2.0, stinger=True), tmp_path))
    assert sf.info(out.path).samplerate == 48000


@pytest.mark.parametrize(
    ("text", "tonic", "mode"),
    [
        ("D major", 2, "major"),
        ("F# minor", 6, "minor"),
        ("Bb dorian", 10, "dorian"),
        ("C#m", 1, "minor"),
        ("Eb", 3, "major"),
        ("G harmonic minor", 7, "harmonic minor"),
    ],
)
def test_key_fields(text, tonic, mode):
    key = parse_key(text)
    assert key is not None and (key.tonic, key.mode) == (tonic, mode)


def test_keys_in_prompts_need_a_real_key_not_an_article():
    assert key_in_prompt("music in A minor, slow") == parse_key("A minor")
    assert key_in_prompt("A minor skirmish") is None
    assert key_in_prompt("Gentle harp, 84 BPM, D major") == parse_key("D major")
    # "key of G" (docs/generators.md): a note alone after "key of" or "key:", major.
    assert key_in_prompt("calm harp in the key of G") == parse_key("G major")
    assert key_in_prompt("calm, key: Bb, slow") == parse_key("Bb major")
    assert key_in_prompt("key of F# dorian") == parse_key("F# dorian")
    assert key_in_prompt("the key of Gold") is None


def test_words_steer_tempo_mode_and_voices():
    assert compose(req(prompt="slow and calm")).bpm < compose(req(prompt="fast frantic")).bpm
    assert compose(req(prompt="120 BPM battle")).bpm == 120.0
    assert compose(req(prompt="dark, sad")).key.minor
    assert not compose(req(prompt="happy, triumphant")).key.minor
    harp = compose(req(prompt="harp and flute"))
    voices = {p.voice for p in harp.parts}
    assert {"harp", "flute"} <= voices
    no_drums = compose(req(prompt="epic battle, no drums. Avoid: taiko."))
    assert not any(p.voice.startswith("drum:") for p in no_drums.parts)
    traits = traits_of(read_words("calm peaceful ambient"))
    assert traits.energy < 0.3 and "ambient" in traits.genres


@pytest.mark.parametrize(
    "genre", ["synthwave", "chiptune", "lo-fi", "orchestral", "celtic", "ambient", "jazz", "waltz"]
)
def test_genres_choose_their_voices(genre):
    arr = compose(req(prompt=f"{genre} music", duration_s=20.0))
    assert arr.parts and all(p.notes for p in arr.parts)
    if genre == "waltz":
        assert arr.beats_per_bar == 3


def test_variants_keep_tempo_and_key():
    a = compose(req(prompt="mysterious cave", variant=0))
    b = compose(req(prompt="mysterious cave", variant=1))
    assert (a.bpm, a.key, a.bars) == (b.bpm, b.key, b.bars)


def damaged(path, chunk, record, field, value):
    """pretty_midi's TimGM6mb.sf2 with the ``field`` (byte offset, "<H" or "<I") of every
    ``record``-byte record of the preset-data ``chunk`` set by ``value(old)``."""
    import struct

    from segue.plugins.synth.soundfont import _chunks, bundled_soundfont

    data = bytearray(bundled_soundfont().read_bytes())
    top = _chunks(data, 12, len(data))
    p_off, p_size = top["LIST:pdta"]
    off, size = _chunks(data, p_off + 4, p_off + p_size)[chunk]
    offset, fmt = field
    for rec in range(off, off + size - record + 1, record):
        (old,) = struct.unpack_from(fmt, data, rec + offset)
        struct.pack_into(fmt, data, rec + offset, value(old))
    path.write_bytes(bytes(data))
    return path


def damaged_sf3(path):
    """Every sample marked Ogg Vorbis (SF3): what a SoundFont with damaged compressed
    samples gives its reader (headers fine, no sample decodes)."""
    return damaged(path, "shdr", 46, (44, "<H"), lambda kind: kind | 0x10)


async def test_a_soundfont_whose_samples_do_not_decode_is_one_line_naming_file_and_sample(
    tmp_path,
):
    # Before: "generator synth raised LibsndfileError: Error opening <_io.BytesIO object
    # at 0x…>: Format not recognised." (no file, no sample).
    sf3 = damaged_sf3(tmp_path / "damaged.sf3")
    gen = SynthGenerator({"soundfont": str(sf3)}, tmp_path / ".segue")
    with pytest.raises(PermanentError) as info:
        await gen.generate(req(prompt="calm harp", duration_s=4.0), tmp_path / "work")
    message = str(info.value)
    assert message.startswith(f"mood m: soundfont {sf3}: sample ")
    assert "cannot be decoded: " in message and "\n" not in message


def test_soundfont_option_words_and_a_folder(tmp_path):
    auto = SynthGenerator({}, tmp_path).audio_params()["soundfont"]
    # "auto" in any case, as "none" is (before, "AUTO" was looked for as a file).
    assert SynthGenerator({"soundfont": "AUTO"}, tmp_path).audio_params()["soundfont"] == auto
    assert SynthGenerator({"soundfont": "None"}, tmp_path).audio_params()["soundfont"] == "none"
    (tmp_path / "sounds.sf2").mkdir()
    with pytest.raises(ConfigError, match=r"'sounds.sf2': a folder, not a file \("):
        SynthGenerator({"soundfont": "sounds.sf2"}, tmp_path / ".segue")


@pytest.mark.parametrize(
    ("chunk", "record", "field", "value"),
    [
        # Instruments whose zones reach past the zone list (was an IndexError).
        ("inst", 22, (20, "<H"), lambda bag: bag + 1500),
        # Samples with no frames, their end at their start (was a numpy broadcast error).
        ("shdr", 46, (24, "<I"), lambda end: 0),
    ],
)
async def test_damaged_soundfont_headers_fall_back_to_the_numpy_voices(
    tmp_path, chunk, record, field, value
):
    sf2 = damaged(tmp_path / "damaged.sf2", chunk, record, field, value)
    gen = SynthGenerator({"soundfont": str(sf2)}, tmp_path / ".segue")
    out = await gen.generate(req(prompt="harp, strings and drums", duration_s=3.0), tmp_path)
    audio, _rate = sf.read(out.path)
    assert np.isfinite(audio).all() and float(np.sqrt(np.mean(audio**2))) > 0.01
