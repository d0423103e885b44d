"""Audio for the pipeline and its plugins: decoded tracks, codecs, loudness and true peak.

:class:`TrackAudio` is what ``segue_process_track`` plugins receive and return: a track's
decoded samples with its metadata. :func:`read`/:func:`decode` decode, :func:`encode`/
:func:`write` encode deterministically, and the measures below work on the samples.

Formats (``fmt``): Vorbis, FLAC and WAV through soundfile/libsndfile; Opus through libopus
(PyAV's FFmpeg build) and MP3 through LAME (lameenc), whose builds run 3 and 2.4 times
faster than the ones inside the soundfile wheel (docs/audio.md, "Speed"):

=======  ==================  ============================================================
fmt      codec               settings and why
=======  ==================  ============================================================
ogg      Ogg Vorbis          quality 0.5 (``oggenc -q5``; soundfile ``compression_level``
                             0.5 is Vorbis quality 1 - 0.5): about 145 kbit/s, a 60 s
                             stereo track is about 1.1 MB. Decodes to exactly the
                             frames written, so loops are gapless.
opus     Ogg Opus            libopus, 128 kbit/s variable, complexity 10 (its default).
                             Opus runs at 48 kHz only (8/12/16/24 kHz too): other
                             rates are resampled to 48 kHz (FFmpeg's resampler, within
                             -60 dB of an ideal one below 18 kHz; circular for loops so
                             the seam stays seamless). Decoded length is exact (pre-skip
                             and end trimming); FFmpeg decodes it for the checks.
mp3      MPEG-1 Layer III    LAME, 160 kbit/s constant bit rate (CBR keeps seeking exact
                             in every player), algorithm quality 3 (LAME's default).
                             segue writes the LAME/Info header that records the encoder
                             delay and padding, and decoders that honour it (libmpg123,
                             FFmpeg, Chromium) return the exact frame count, but many
                             players do not: **mp3 loops are not sample-exact**
                             (encoder padding, see docs/audio.md); prefer ogg for
                             looping music. LAME scales the input by 0.95; encode()
                             undoes it.
flac     FLAC, 16 bit        lossless; 16 bit because every player takes it and the
                             tracks are normalised well above 16-bit noise.
wav      WAV PCM_16          16-bit PCM for the same reason (small, universal).
=======  ==================  ============================================================

Every encode is deterministic: the same samples give byte-identical files. libsndfile
picks a random Ogg stream serial number; :func:`write` rewrites every Ogg page's serial
with one derived from the content and recomputes each page's CRC (FFmpeg writes Opus with
its ``bitexact`` flag: no version string). FLAC (an MD5 of the audio, no timestamp), MP3
(LAME) and PCM WAV are deterministic as written. More than two channels (which the
faster encoders are not set up for here) go through libsndfile's Opus and LAME.

Samples are ``float32`` arrays shaped ``(frames, channels)``. PCM formats are clipped to
[-1, 1]; normalisation (``segue.plugins.loudness``) keeps true peaks at -1 dBTP or below.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from segue.core.errors import AudioError
from segue.core.track import CONTENT_TYPES, Track

__all__ = [
    "ENCODINGS",
    "AudioError",
    "Encoding",
    "TrackAudio",
    "TruePeaks",
    "content_type",
    "decode",
    "decoded_length",
    "encode",
    "fix_ogg_serial",
    "frame_peaks",
    "k_weighted",
    "k_weighted_power",
    "loudness",
    "ogg_crc",
    "oversampled_peaks",
    "read",
    "resample",
    "true_peak_db",
    "write",
    "write_float_wav",
]


# eq=False: comparing two TrackAudio field by field would compare arrays, which has no
# single truth value; two of them are the same when they are the same object.
@dataclass(frozen=True, eq=False)
class TrackAudio:
    """A freshly generated track, decoded: what ``segue_process_track`` plugins receive.

    ``samples`` are float32, shaped ``(frames, channels)``, at ``rate`` Hz; ``track`` is the
    track's metadata so far. The samples are read-only (a plugin may share them with the
    previous one's result): to change them, return ``audio.replace(samples=new_array)``.
    """

    samples: np.ndarray
    rate: int
    track: Track
    # The track's stems (name -> samples shaped like ``samples``; their sum is the mix).
    # A plugin that only changes levels may leave them: they follow the mix's per-frame
    # gain. One that cuts, moves or filters the audio applies the same change to every
    # stem (``apply``), else they are dropped (docs/plugins.md).
    stems: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        x = np.asarray(self.samples)
        if x.ndim != 2 or x.shape[1] < 1 or x.shape[0] < 1:
            raise ValueError(f"TrackAudio samples must be shaped (frames, channels), not {x.shape}")
        if x.dtype != np.float32:
            # float64 arithmetic on the samples is the usual cause: accept it, as float32.
            if not np.issubdtype(x.dtype, np.floating):
                raise ValueError(f"TrackAudio samples must be float32, not {x.dtype}")
            x = x.astype(np.float32)
        if x.flags.writeable:
            # A read-only view (the caller's array keeps its own flag): a plugin writing into
            # the samples it was given fails loudly instead of changing another's result.
            x = x.view()
            x.flags.writeable = False
        object.__setattr__(self, "samples", x)
        if not isinstance(self.rate, int | np.integer) or self.rate <= 0:
            raise ValueError(f"TrackAudio rate must be a positive int (Hz), not {self.rate!r}")
        object.__setattr__(self, "rate", int(self.rate))
        if not isinstance(self.track, Track):
            raise ValueError(f"TrackAudio track must be a Track, not {type(self.track).__name__}")
        stems = {}
        for name, stem in self.stems.items():
            s = np.asarray(stem, dtype=np.float32)
            if s.shape != x.shape:
                raise ValueError(f"TrackAudio stem {name!r} is shaped {s.shape}, the mix {x.shape}")
            if s.flags.writeable:  # the same array when already read-only (replace() keeps it)
                s = s.view()
                s.flags.writeable = False
            stems[name] = s
        object.__setattr__(self, "stems", stems)

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.rate

    def replace(self, **changes: Any) -> TrackAudio:
        """A copy with ``changes`` (``samples=``, ``rate=``, ``track=``, ``stems=``)."""
        return dataclasses.replace(self, **changes)

    def apply(self, fn: Callable[[np.ndarray], np.ndarray], **changes: Any) -> TrackAudio:
        """``fn`` applied to the samples and to every stem alike (cuts, fades, gains)."""
        stems = {name: fn(x) for name, x in self.stems.items()}
        return dataclasses.replace(self, samples=fn(self.samples), stems=stems, **changes)


def follow_gain(
    before: np.ndarray, after: np.ndarray, stems: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """``stems`` with the per-frame gain that turned ``before`` into ``after``.

    None when ``after`` is not ``before`` times a per-frame gain (a cut, a filter: the
    residual is not at least 60 dB under it). Frames where ``before`` is silent take the
    gain of the frame before them.
    """
    if before.shape != after.shape:
        return None
    x = before.astype(np.float64)
    y = after.astype(np.float64)
    den = np.einsum("ij,ij->i", x, x)
    num = np.einsum("ij,ij->i", x, y)
    ok = den > 1e-20
    if not ok.any():
        return None
    gain = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
    # Carry the last known gain over silent frames (and the first one back to the start).
    idx = np.where(ok, np.arange(gain.size), 0)
    np.maximum.accumulate(idx, out=idx)
    gain = gain[idx]
    gain[: int(np.argmax(ok))] = gain[int(np.argmax(ok))]
    residual = float(np.sum(np.square(y - x * gain[:, None])))
    if residual > 1e-6 * max(float(np.sum(np.square(y))), 1e-30):
        return None
    g = gain.astype(np.float32)[:, None]
    return {name: (np.asarray(s, dtype=np.float32) * g) for name, s in stems.items()}


@dataclass(frozen=True)
class Encoding:
    """How one output format is written: by libsndfile, or by libopus/LAME for speed."""

    container: str
    subtype: str
    compression_level: float | None = None
    bitrate_mode: str | None = None
    # Sample rates the codec takes; others are resampled to ``fallback_rate``.
    rates: tuple[int, ...] | None = None
    fallback_rate: int = 48000
    ogg: bool = False
    # Applied before encoding to undo a codec's own scaling, so decoded level = input level.
    gain: float = 1.0
    # "libsndfile" (through soundfile), "libopus" (through PyAV's FFmpeg) or "lame"
    # (lameenc). The soundfile wheel's own libopus and LAME run 3 to 4 times slower than
    # these builds (docs/audio.md, "Speed"); libsndfile remains the fallback for more
    # than two channels, which neither of the others is set up for here.
    encoder: str = "libsndfile"
    # Bit rate in bit/s (libopus: variable, LAME: constant) and at ``best`` quality.
    bitrate: int = 0
    best_bitrate: int = 0
    # libopus complexity (0-10, 10 slowest) or LAME's algorithm quality (0 best-9 fastest).
    effort: int = 0
    # MP3 below 32 kHz (MPEG-2 and 2.5) carries half and a fifth of ``bitrate``, as
    # libsndfile chose; a bit rate the caller asks for is used as it is.
    scale_bitrate: bool = True


ENCODINGS: dict[str, Encoding] = {
    # libsndfile sets Vorbis quality = 1 - compression_level: 0.5 is oggenc's -q5.
    "ogg": Encoding("OGG", "VORBIS", compression_level=0.5, ogg=True),
    # About 128 kbit/s stereo (variable); complexity 10 is libopus's default and best.
    "opus": Encoding(
        "OGG",
        "OPUS",
        compression_level=0.77,  # the libsndfile fallback: ~128 kbit/s stereo
        rates=(8000, 12000, 16000, 24000, 48000),
        ogg=True,
        encoder="libopus",
        bitrate=128000,
        best_bitrate=510000,
        effort=10,
    ),
    # Constant 160 kbit/s at LAME's default algorithm quality (3, what libsndfile used).
    "mp3": Encoding(
        "MP3",
        "MPEG_LAYER_III",
        compression_level=0.5,
        bitrate_mode="CONSTANT",
        rates=(8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
        fallback_rate=44100,
        # LAME's bit-rate presets scale the input by 0.95 (-0.45 dB) at 160 kbit/s.
        gain=1 / 0.95,
        encoder="lame",
        bitrate=160000,
        best_bitrate=320000,
        effort=3,
    ),
    "flac": Encoding("FLAC", "PCM_16"),
    "wav": Encoding("WAV", "PCM_16"),
}

# libvorbis allocates its analysis buffer on the stack: one large write overflows it
# (python-soundfile #233/#396, libsndfile #1095). Writing in blocks avoids the crash.
_WRITE_BLOCK = 1 << 14


def content_type(fmt: str) -> str:
    """The HTTP content type of an output format."""
    return CONTENT_TYPES[fmt]


# --- reading ---------------------------------------------------------------------------------

# Each thread remembers its last encode and its last decode of bytes. Finishing a lossy
# track encodes the same samples twice and decodes the same bytes twice: `loudness`
# encodes and decodes its result to check what the file will measure, then the pipeline
# encodes those samples and decodes the bytes to verify them. With this memo that is one
# encode and one decode (the most expensive steps of finishing). A decode is keyed by the
# SHA-256 of the bytes and keeps what the verification reads (``decoded_length``: the
# frames and the rate; not the samples, 0.2 GB for a 10-minute track); an encode is keyed
# by the SHA-256 of the samples it encoded (no copy of them; hashing costs about 0.1 s of
# CPU per 10 minutes). So a hit returns exactly what the work would (encodes are
# deterministic); a pipeline thread finishes one track at a time, so one entry each is
# enough, and the pipeline forgets them once a track is finished (``forget``).
_memo = threading.local()


def _digest(x: np.ndarray) -> bytes:
    """The SHA-256 of an array's bytes (without a copy when it is contiguous)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(x)).cast("B")).digest()


def forget() -> None:
    """Drop this thread's memo of the last encode and decode (what a finished track left)."""
    _memo.__dict__.clear()


def read(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode any file libsndfile reads to ``(float32 samples (frames, channels), rate)``.

    Raises :class:`AudioError` (one line naming the file) for a missing, unreadable,
    corrupt or empty file, or one holding non-finite samples.
    """
    name = Path(path).name
    if not Path(path).is_file():
        raise AudioError(f"{name}: cannot decode audio: no such file")
    return _decode(os.fspath(path), name, path)


def decode(data: bytes, name: str = "audio") -> tuple[np.ndarray, int]:
    """:func:`read` for encoded bytes in memory (``name`` says what they are in errors).

    The bytes' length in frames and rate are remembered (see ``_memo``): verifying them
    next (``decoded_length``) decodes nothing.
    """
    # Ogg Opus from 48 kHz by FFmpeg (which always decodes at 48 kHz; libsndfile decodes
    # at the rate in the header, as for files read()).
    if data[:4] == b"OggS" and data[28:36] == b"OpusHead" and data[40:44] == _OPUS_48K:
        samples, sr = _decode_opus(data, name)
    else:
        samples, sr = _decode(io.BytesIO(data), name, name)
    _memo.decoded = (hashlib.sha256(data).digest(), samples.shape[0], sr)
    return samples, sr


def decoded_length(data: bytes, name: str = "audio") -> tuple[int, int]:
    """``(frames, rate)`` of :func:`decode` of ``data`` (raising as it does): a check that
    bytes about to be stored play. The bytes this thread decoded last are not decoded again."""
    hit = getattr(_memo, "decoded", None)
    if hit is not None and hit[0] == hashlib.sha256(data).digest():
        return hit[1], hit[2]
    samples, sr = decode(data, name)
    return samples.shape[0], sr


def _decode(
    source: str | io.BytesIO, name: str, path: str | os.PathLike[str]
) -> tuple[np.ndarray, int]:
    try:
        samples, sr = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{name}: cannot decode audio: {_reason(exc, path)}") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: cannot decode audio: no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: cannot decode audio: non-finite samples")
    return np.ascontiguousarray(samples), int(sr)


_OPUS_48K = struct.pack("<I", 48000)


def _decode_opus(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """Ogg Opus bytes by FFmpeg's decoder: the frames libsndfile returns, in 60 % of the time."""
    import av

    try:
        with av.open(io.BytesIO(data), "r", format="ogg") as f:
            chunks = [frame.to_ndarray() for frame in f.decode(audio=0)]
    except (av.FFmpegError, IndexError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise AudioError(f"{name}: cannot decode audio: {' '.join(reason.split())}") from None
    if not chunks:
        raise AudioError(f"{name}: cannot decode audio: no samples")
    planar = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
    samples = np.ascontiguousarray(planar.T, dtype=np.float32)
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: cannot decode audio: no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: cannot decode audio: non-finite samples")
    return samples, 48000


def _reason(exc: BaseException, path: str | os.PathLike[str]) -> str:
    """libsndfile's message on one line, without the path it repeats."""
    text = " ".join(str(exc).split())
    for prefix in (f"Error opening {os.fspath(path)!r}: ", "Error opening "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text.rstrip(".") or type(exc).__name__


# --- writing ---------------------------------------------------------------------------------


def _as_frames(samples: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise AudioError(f"{what}: samples must be shaped (frames, channels), not {x.shape}")
    if x.shape[0] == 0:
        raise AudioError(f"{what}: cannot encode an empty signal")
    if not np.isfinite(x).all():
        raise AudioError(f"{what}: cannot encode non-finite samples")
    return x


def write(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sr: int,
    fmt: str,
    *,
    loop: bool = False,
) -> None:
    """Encode ``samples`` at rate ``sr`` to ``path`` as ``fmt`` (see the module docstring).

    ``loop`` says the signal is a seamless loop: if the codec needs another sample rate,
    the resampler treats the signal as periodic so the loop point stays seamless.
    The same arguments always give byte-identical files.
    """
    data = encode(samples, sr, fmt, loop=loop, name=Path(path).name)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise AudioError(f"{Path(path).name}: cannot write {fmt}: {exc.strerror or exc}") from None


def encode(
    samples: np.ndarray,
    sr: int,
    fmt: str,
    *,
    loop: bool = False,
    name: str = "audio",
    best: bool = False,
    bitrate: int | None = None,
) -> bytes:
    """:func:`write`, to bytes in memory: the pipeline hashes and verifies them before storing.

    ``name`` says what is encoded in errors. ``best``: a lossy codec at its top quality
    (a track with stems: their decoded sum must match the decoded mix, docs/audio.md).
    ``bitrate`` (bit/s): another bit rate than the format's, for ``opus`` and ``mp3``
    (the fal emulator serves fal's ``mp3_44100_192``, ``opus_48000_64``...).
    """
    try:
        enc = ENCODINGS[fmt]
    except KeyError:
        raise AudioError(
            f"{name}: unknown audio format {fmt!r} (one of {', '.join(ENCODINGS)})"
        ) from None
    if best and fmt in ("ogg", "opus", "mp3"):
        enc = dataclasses.replace(enc, compression_level=0.0, bitrate=enc.best_bitrate)
    if bitrate is not None:
        if enc.encoder == "libsndfile":
            raise AudioError(f"{name}: {fmt} takes no bit rate")
        enc = dataclasses.replace(enc, bitrate=int(bitrate), scale_bitrate=False)
    x = _as_frames(samples, name)
    sr = int(sr)
    key = (x.shape, sr, fmt, loop, best, bitrate, _digest(x))
    hit = getattr(_memo, "encoded", None)
    if hit is not None and hit[0] == key:
        return hit[1]
    data = _encode(x, sr, fmt, enc, loop, name)
    _memo.encoded = (key, data)
    return data


def _encode(x: np.ndarray, sr: int, fmt: str, enc: Encoding, loop: bool, name: str) -> bytes:
    if enc.encoder != "libsndfile" and x.shape[1] > 2:
        enc = dataclasses.replace(enc, encoder="libsndfile")
    if enc.rates is not None and sr not in enc.rates:
        if enc.encoder == "libsndfile":
            x = resample(x, sr, enc.fallback_rate, circular=loop)
        else:
            x = _swr_resample(x, sr, enc.fallback_rate, circular=loop)
        sr = enc.fallback_rate
    if enc.gain != 1.0:
        x = x * np.float32(enc.gain)
    if enc.subtype.startswith("PCM"):
        # libsndfile wraps, rather than clips, out-of-range floats converted to integers.
        x = np.clip(x, -1.0, 1.0)
    try:
        if enc.encoder == "libopus":
            data = _encode_opus(x, sr, enc.bitrate, enc.effort)
        elif enc.encoder == "lame":
            kbps = _mp3_kbps(sr, enc.bitrate) if enc.scale_bitrate else enc.bitrate // 1000
            data = _encode_mp3(x, sr, kbps, enc.effort)
        else:
            data = _encode_sndfile(x, sr, enc)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{name}: cannot encode {fmt}: {_reason(exc, name)}") from None
    return fix_ogg_serial(data) if enc.ogg else data


def _encode_sndfile(x: np.ndarray, sr: int, enc: Encoding) -> bytes:
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer,
        "w",
        samplerate=sr,
        channels=x.shape[1],
        format=enc.container,
        subtype=enc.subtype,
        compression_level=enc.compression_level,
        bitrate_mode=enc.bitrate_mode,
    ) as f:
        for start in range(0, x.shape[0], _WRITE_BLOCK):
            f.write(x[start : start + _WRITE_BLOCK])
    return buffer.getvalue()


# --- libopus through PyAV, LAME through lameenc --------------------------------------------

_LAYOUTS = {1: "mono", 2: "stereo"}
# Frames handed to FFmpeg at once: few Python calls, little memory.
_AV_BLOCK = 1 << 16


def _encode_opus(x: np.ndarray, sr: int, bitrate: int, complexity: int) -> bytes:
    """Ogg Opus by libopus (variable bit rate), with pre-skip and end trimming: exact length.

    FFmpeg's ``bitexact`` flag leaves its version out of the file, so the same samples
    give the same bytes (the stream serial is fixed afterwards, as for every Ogg file).
    """
    import av  # only when opus is written: PyAV takes a fifth of a second to import

    layout = _LAYOUTS[x.shape[1]]
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format="ogg", options={"fflags": "+bitexact"}) as out:
            options = {"b": str(bitrate), "compression_level": str(complexity)}
            stream = out.add_stream("libopus", rate=sr, options=options)
            stream.codec_context.layout = layout
            for start in range(0, x.shape[0], _AV_BLOCK):
                block = np.ascontiguousarray(x[start : start + _AV_BLOCK]).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
                frame.sample_rate = sr
                frame.pts = start
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except av.FFmpegError as exc:
        raise ValueError(str(exc)) from None
    return buffer.getvalue()


def _swr_resample(x: np.ndarray, sr_in: int, sr_out: int, *, circular: bool) -> np.ndarray:
    """:func:`resample` by FFmpeg's resampler (a windowed sinc): a tenth of the FFT's cost.

    Within -100 dB of :func:`resample` on music. ``circular``: the signal is one period of
    a loop; it is resampled with some of its own end before it and its start after it,
    at exactly ``n_out / n_in`` (its length rounded to whole frames, as :func:`resample`
    does), so the resampled loop is seamless.
    """
    n_in = x.shape[0]
    n_out = max(1, round(n_in * sr_out / sr_in))
    if not circular:
        return _fit(_swr(x, sr_in, sr_out), n_out)
    # Context of whole periods for short loops (no fractional offset), else 1024 frames.
    reps = math.ceil(1024 / n_in)
    if reps > 1:
        context, ext = reps * n_in, np.concatenate([x] * (2 * reps + 1))
    else:
        context, ext = 1024, np.concatenate([x[-1024:], x, x[:1024]])
    g = math.gcd(n_in, n_out)
    # Output frame m lands on input time m * n_in / n_out: the first at or after the
    # context. (At most one input frame later than the loop's start: a constant offset
    # under 23 microseconds, nothing at the seam.)
    first = -(-context * n_out // n_in)
    return _fit(_swr(ext, n_in // g, n_out // g)[first:], n_out)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return np.ascontiguousarray(y[:n])
    return np.concatenate([y, np.zeros((n - y.shape[0], y.shape[1]), np.float32)])


def _swr(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import av

    layout = _LAYOUTS[x.shape[1]]
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate_out)
    out = []
    for start in range(0, x.shape[0], _AV_BLOCK):
        block = np.ascontiguousarray(x[start : start + _AV_BLOCK].T)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        frame.sample_rate = rate_in
        out += [f.to_ndarray() for f in resampler.resample(frame)]
    out += [f.to_ndarray() for f in resampler.resample(None)]
    return np.ascontiguousarray(np.concatenate(out, axis=1).T, dtype=np.float32)


# MPEG audio: bit rates by version and layer III, sample rates by version.
_MPEG_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 2.5: (11025, 12000, 8000)}
# LAME's encoder delay (samples it puts before the signal) and every mp3 decoder's own.
_LAME_DELAY = 576
_DECODER_DELAY = 529


def _mp3_kbps(sr: int, bitrate: int) -> int:
    """``bitrate`` in kbit/s for the MPEG version of ``sr`` (as libsndfile chose it).

    MPEG-2 (16-24 kHz) carries half, MPEG-2.5 (8-12 kHz) a fifth: 160 kbit/s becomes 80
    and 32, 320 becomes 160 and 64 (each version's highest).
    """
    kbps = bitrate // 1000
    if sr >= 32000:
        return kbps
    return kbps // 2 if sr >= 16000 else kbps // 5


def _encode_mp3(x: np.ndarray, sr: int, kbps: int, quality: int) -> bytes:
    """Constant-bit-rate MP3 by LAME, with the LAME/Info header libsndfile wrote.

    lameenc writes the frames only; the header frame put before them records the
    encoder delay and padding, so decoders that honour it (libmpg123, FFmpeg, hence
    browsers built on it) return exactly the frames encoded.
    """
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(sr)
    encoder.set_out_sample_rate(sr)  # LAME would resample for low bit rates
    encoder.set_channels(x.shape[1])
    encoder.set_quality(quality)
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    frames = bytes(encoder.encode(pcm.tobytes())) + bytes(encoder.flush())
    return _lame_header(frames, x.shape[0]) + frames


def _crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected 0x8005, initial 0): the LAME tag's own checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _lame_header(frames: bytes, samples: int) -> bytes:
    """The Info frame (Xing header with LAME's extension) for these CBR ``frames``."""
    h = frames[:4]
    if len(frames) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        raise ValueError("LAME wrote no MPEG frame")
    version = {3: 1, 2: 2, 0: 2.5}[(h[1] >> 3) & 3]
    table = _MPEG_KBPS[1 if version == 1 else 2]
    index = h[2] >> 4
    kbps = table[index]
    sr = _MPEG_RATES[version][(h[2] >> 2) & 3]
    mono = (h[3] >> 6) == 3
    per_frame = 1152 if version == 1 else 576
    side = (17 if mono else 32) if version == 1 else (9 if mono else 17)
    unit = (144 if version == 1 else 72) * 1000
    size = unit * kbps // sr
    count = -(-(samples + _LAME_DELAY) // per_frame)
    # The frames' own count (each is `size` bytes, or one more with its padding bit).
    count = max(count, _count_frames(frames, size))
    padding = count * per_frame - _LAME_DELAY - samples
    # The header frame is the stream's, unpadded; at a low bit rate too small for the tag,
    # a higher one (as LAME does: decoders read each frame's own bit rate).
    while unit * table[index] // sr < 4 + side + 156 and index < 14:
        index += 1
    tag = bytearray(unit * table[index] // sr)
    tag[:4] = bytes([h[0], h[1], (index << 4) | (h[2] & 0x0D), h[3]])
    at = 4 + side
    toc = bytes(i * 256 // 100 for i in range(100))
    struct.pack_into(">4sII", tag, at, b"Info", 0x0F, count)
    total = len(tag) + len(frames)
    struct.pack_into(">I", tag, at + 12, total)
    tag[at + 16 : at + 116] = toc
    struct.pack_into(">I", tag, at + 116, 57)  # LAME's quality indicator for -q 3
    lame = at + 120
    tag[lame : lame + 9] = b"LAME3.100"
    tag[lame + 9] = 0x01  # tag revision 0, constant bit rate
    tag[lame + 20] = min(kbps, 255)
    delay_padding = (_LAME_DELAY << 12) | max(0, padding)
    tag[lame + 21 : lame + 24] = delay_padding.to_bytes(3, "big")
    struct.pack_into(">I", tag, lame + 28, total)
    struct.pack_into(">H", tag, lame + 34, _crc16(bytes(tag[: lame + 34])))
    return bytes(tag)


def _count_frames(frames: bytes, size: int) -> int:
    """How many MPEG frames ``frames`` holds (walking their headers' padding bits)."""
    count = pos = 0
    while pos + 4 <= len(frames) and frames[pos] == 0xFF:
        pos += size + ((frames[pos + 2] >> 1) & 1)
        count += 1
    return count


def write_float_wav(path: str | os.PathLike[str], samples: np.ndarray, sr: int) -> None:
    """A 32-bit float WAV: lossless, for test inputs and tools (not an output format)."""
    x = _as_frames(samples, Path(path).name)
    sf.write(os.fspath(path), x, int(sr), format="WAV", subtype="FLOAT")


# --- Ogg: deterministic stream serial numbers --------------------------------------------------

_BITREV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _bitrev32(v: int) -> int:
    return int(f"{v:032b}"[::-1], 2)


def ogg_crc(data: bytes) -> int:
    """Ogg's page CRC-32: polynomial 0x04C11DB7, initial value 0, not reflected, no final xor.

    zlib computes the reflected form of the same polynomial in C. A non-reflected CRC of
    ``data`` equals the bit-reversed reflected CRC of ``data`` with each byte's bits
    reversed, so one ``bytes.translate`` (a 256-byte table) and zlib do the work;
    ``_ogg_crc_table`` is the textbook table version the tests compare against.
    """
    # zlib.crc32(d, v) starts from ~v and ends with ~: v = 0xFFFFFFFF starts at 0, and
    # xoring the result with 0xFFFFFFFF undoes the final inversion.
    reflected = zlib.crc32(data.translate(_BITREV8), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return _bitrev32(reflected)


def _ogg_crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table[i] = r & 0xFFFFFFFF
    return table


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every page; raises AudioError if the bytes are not clean Ogg."""
    pages = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            raise AudioError(f"not an Ogg page at byte {pos}")
        nseg = data[pos + 26]
        header = 27 + nseg
        if pos + header > len(data):
            raise AudioError(f"truncated Ogg page at byte {pos}")
        body = sum(data[pos + 27 : pos + header])
        if pos + header + body > len(data):
            raise AudioError(f"truncated Ogg page at byte {pos}")
        pages.append((pos, header + body))
        pos += header + body
    return pages


def fix_ogg_serial(data: bytes) -> bytes:
    """Give every logical stream a serial number derived from the content; fix the CRCs.

    The serial is the first 32 bits of a SHA-256 of the file with every serial and CRC
    field zeroed (plus the stream's index, for chained files), so the same audio always
    gives the same bytes. Every page's CRC is recomputed.
    """
    pages = _ogg_pages(data)
    buf = bytearray(data)
    order: dict[int, int] = {}
    for pos, _ in pages:
        serial = struct.unpack_from("<I", buf, pos + 14)[0]
        order.setdefault(serial, len(order))
        buf[pos + 14 : pos + 18] = b"\0\0\0\0"
        buf[pos + 22 : pos + 26] = b"\0\0\0\0"
    digest = hashlib.sha256(bytes(buf)).digest()
    base = int.from_bytes(digest[:4], "little")
    serials = [struct.unpack_from("<I", data, pos + 14)[0] for pos, _ in pages]
    for (pos, length), old in zip(pages, serials, strict=True):
        struct.pack_into("<I", buf, pos + 14, (base + order[old]) & 0xFFFFFFFF)
        struct.pack_into("<I", buf, pos + 22, ogg_crc(bytes(buf[pos : pos + length])))
    return bytes(buf)


# --- resampling ------------------------------------------------------------------------------


def _fft_resample(x: np.ndarray, n_out: int) -> np.ndarray:
    """Band-limited (periodic sinc) resampling of every column of ``x`` to ``n_out`` frames."""
    n_in = x.shape[0]
    spectrum = np.fft.rfft(x.astype(np.float64), axis=0)
    out = np.zeros((n_out // 2 + 1, x.shape[1]), dtype=np.complex128)
    n = min(n_in, n_out)
    out[: n // 2 + 1] = spectrum[: n // 2 + 1]
    if n % 2 == 0:
        # The shared Nyquist bin: split it when upsampling, fold both halves when downsampling.
        if n_out > n_in:
            out[n // 2] *= 0.5
        elif n_out < n_in:
            out[n // 2] = 2.0 * out[n // 2].real
    return np.fft.irfft(out, n_out, axis=0) * (n_out / n_in)


def resample(samples: np.ndarray, sr_in: int, sr_out: int, *, circular: bool = False) -> np.ndarray:
    """Resample ``(frames, channels)`` audio from ``sr_in`` to ``sr_out`` (FFT, band-limited).

    ``circular=True`` treats the signal as one period of a loop (the resampled loop stays
    seamless; its length is rounded to whole frames). Otherwise the signal is padded
    with silence, so nothing wraps from its end to its start.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if sr_in == sr_out:
        return x.copy()
    n_in = x.shape[0]
    if circular:
        n_out = max(1, round(n_in * sr_out / sr_in))
        return _fft_resample(x, n_out).astype(np.float32)
    g = math.gcd(int(sr_in), int(sr_out))
    up, down = sr_out // g, sr_in // g
    # Pad by whole resampling periods so every output frame lands on the input's grid.
    left = down * math.ceil(4096 / down)
    total = down * math.ceil((n_in + left + 4096) / down)
    padded = np.zeros((total, x.shape[1]), dtype=np.float32)
    padded[left : left + n_in] = x
    y = _fft_resample(padded, total * up // down)
    start = left * up // down
    n_out = round(n_in * up / down)
    return y[start : start + n_out].astype(np.float32)


# --- measurement -----------------------------------------------------------------------------


def loudness(samples: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, gated); -inf for silence.

    pyloudnorm's meter (its filters, blocks and gates), in numpy alone: pyloudnorm needs
    scipy.signal, which takes longer to import than a track takes to measure. Signals
    shorter than one 400 ms gating block are measured as a single block; channels beyond
    the fifth are not counted (BS.1770 weighs five).
    """
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] == 0 or not np.any(x):
        return float("-inf")
    n = x.shape[0]
    block = min(0.4, n / sr)
    # pyloudnorm's block bounds, computed as it computes them (75 % overlap).
    count = int(np.round((n / sr - block) / (block * 0.25))) + 1
    j = np.arange(count)
    lo = (block * (j * 0.25) * sr).astype(np.int64)
    # The last block may reach past the end (its count is rounded): it ends at the end.
    hi = np.minimum((block * (j * 0.25 + 1) * sr).astype(np.int64), n)
    # The running sum of the power at the blocks' bounds, summed chunk by chunk from the
    # one before (the same additions in the same order as one running sum of the whole
    # track: no float64 per frame is kept, 0.4 GB per 10 minutes).
    bounds = np.unique(np.concatenate([lo, hi]))
    at = np.empty(bounds.size)
    running = np.empty(_KW_CHUNK * _KW_BLOCK + 1)
    running[0] = 0.0
    for first, power in _k_power_chunks(x, sr):
        m = power.size
        running[1 : m + 1] = power
        np.cumsum(running[: m + 1], out=running[: m + 1])
        a, b = np.searchsorted(bounds, [first, first + m + 1])
        at[a:b] = running[bounds[a:b] - first]
        running[0] = running[m]
    # Weighted mean square per block (the channels summed before the blocks: the same sum).
    blocks = (at[np.searchsorted(bounds, hi)] - at[np.searchsorted(bounds, lo)]) / (block * sr)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = -0.691 + 10.0 * np.log10(blocks)
        gated = blocks[levels >= _ABSOLUTE_GATE_LUFS]
        if gated.size == 0:
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
        gated = blocks[(levels > relative) & (levels > _ABSOLUTE_GATE_LUFS)]
        value = -0.691 + 10.0 * np.log10(gated.mean()) if gated.size else -math.inf
    return float(value) if math.isfinite(value) else float("-inf")


_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770: L, R, C, Ls, Rs
_ABSOLUTE_GATE_LUFS = -70.0

# K-weighting runs blockwise: within a block of _KW_BLOCK frames, the response from
# silence is a product with the filter's (exact, truncated) impulse response; the state
# each block leaves is carried into the next by a prefix scan. Exact to ~1e-12 of the
# signal, faster than scipy's lfilter, and numpy alone. The signal goes through in
# chunks of _KW_CHUNK blocks, every channel at once, so that each chunk's arrays stay in
# the CPU's cache (whole-signal passes ran three times slower); each product is a stack
# of _KW_BLOCK-row ones, small enough that OpenBLAS never threads them (see _TP_BLOCK).
_KW_BLOCK = 64
_KW_CHUNK = 256


def _biquad(kind: str, gain_db: float, q: float, fc: float, sr: int) -> tuple[list, list]:
    """``(b, a)`` normalised by ``a[0]``: RBJ's cookbook, as pyloudnorm designs BS.1770's stages."""
    big_a = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * (fc / sr)
    alpha = np.sin(w0) / (2.0 * q)
    cos = np.cos(w0)
    if kind == "high_shelf":
        root = 2 * np.sqrt(big_a) * alpha
        b = [
            big_a * ((big_a + 1) + (big_a - 1) * cos + root),
            -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
            big_a * ((big_a + 1) + (big_a - 1) * cos - root),
        ]
        a = [
            (big_a + 1) - (big_a - 1) * cos + root,
            2 * ((big_a - 1) - (big_a + 1) * cos),
            (big_a + 1) - (big_a - 1) * cos - root,
        ]
    else:  # high_pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return [float(v / a[0]) for v in b], [float(v / a[0]) for v in a]


@functools.lru_cache(maxsize=8)
def _k_filter(sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BS.1770's two stages (a 1500 Hz +4 dB shelf, a 38 Hz high-pass) as one 4-state
    system, for blocks of ``L`` frames: ``(T, G, O, A^L)``. A block's response from
    silence is ``x @ T``, the state it leaves ``x @ G``; a state ``s`` at a block's start
    adds ``s @ O`` to it."""
    size = _KW_BLOCK
    a_mat = np.zeros((4, 4))
    b_vec = np.zeros(4)
    c_vec = np.zeros(4)
    d = 1.0
    # Cascade the stages, each in transposed direct form II (lfilter's).
    for i, (b, a) in enumerate(
        (
            _biquad("high_shelf", 4.0, 1 / np.sqrt(2), 1500.0, sr),
            _biquad("high_pass", 0.0, 0.5, 38.0, sr),
        )
    ):
        own = np.array([[-a[1], 1.0], [-a[2], 0.0]])
        own_b = np.array([b[1] - a[1] * b[0], b[2] - a[2] * b[0]])
        s = slice(2 * i, 2 * i + 2)
        # The stage's input is the previous stages' output: c_vec . state + d * x.
        a_mat[s] += np.outer(own_b, c_vec)
        a_mat[s, s] = own
        b_vec[s] = own_b * d
        c_vec = b[0] * c_vec
        c_vec[2 * i] = 1.0
        d *= b[0]
    h = np.empty(size)
    h[0] = d
    state = b_vec.copy()
    for t in range(1, size):
        h[t] = c_vec @ state
        state = a_mat @ state
    lag = np.arange(size)[None, :] - np.arange(size)[:, None]
    toeplitz = np.where(lag >= 0, h[np.clip(lag, 0, size - 1)], 0.0)
    to_state = np.empty((size, 4))
    vec = b_vec.copy()
    for t in range(size - 1, -1, -1):
        to_state[t] = vec
        vec = a_mat @ vec
    from_state = np.empty((4, size))
    row = c_vec.copy()
    for t in range(size):
        from_state[:, t] = row
        row = row @ a_mat
    out = (toeplitz, to_state, from_state, np.linalg.matrix_power(a_mat, size))
    for arr in out:
        arr.setflags(write=False)
    return out


@functools.lru_cache(maxsize=8)
def _k_carry(sr: int) -> np.ndarray:
    """``(4, 4 * _KW_CHUNK)``: a state ``s`` before a chunk adds ``s @ carry[:, 4j : 4j + 4]``
    (``s`` through ``j + 1`` blocks) to the state after the chunk's block ``j``."""
    step = _k_filter(sr)[3].T
    out = np.empty((_KW_CHUNK, 4, 4))
    power = step.copy()
    for j in range(_KW_CHUNK):
        out[j] = power
        power = power @ step
    carry = np.ascontiguousarray(out.transpose(1, 0, 2).reshape(4, 4 * _KW_CHUNK))
    carry.setflags(write=False)
    return carry


def _k_chunks(x: np.ndarray, sr: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first frame, filtered chunk (channels, frames))`` through the K-weighting filter
    from silence, in order, float64."""
    n, channels = x.shape
    toeplitz, to_state, from_state, step = _k_filter(sr)
    carry = _k_carry(sr)
    span = _KW_CHUNK * _KW_BLOCK
    state = np.zeros((channels, 4))  # after the previous chunk's last block
    for lo in range(0, n, span):
        hi = min(n, lo + span)
        blocks = np.zeros((channels, span))
        blocks[:, : hi - lo] = x[lo:hi].T
        stacked = blocks.reshape(-1, _KW_BLOCK, _KW_BLOCK)  # 64-row products
        y = (stacked @ toeplitz).reshape(channels, _KW_CHUNK, _KW_BLOCK)
        blocks = blocks.reshape(channels, _KW_CHUNK, _KW_BLOCK)
        # The state after block i: its own plus step @ the state after block i - 1;
        # summed over the chunk's earlier blocks by doubling (each pass covers twice as
        # many), then the state carried in from the previous chunk.
        states = blocks @ to_state
        power, width = step.T, 1
        while width < _KW_CHUNK:
            states[:, width:] += states[:, :-width] @ power
            power = power @ power
            width *= 2
        states += (state @ carry).reshape(channels, _KW_CHUNK, 4)
        before = np.empty_like(states)
        before[:, 0] = state
        before[:, 1:] = states[:, :-1]
        y += before @ from_state
        state = states[:, -1].copy()
        yield lo, y.reshape(channels, span)[:, : hi - lo]


def k_weighted(samples: np.ndarray, sr: int) -> np.ndarray:
    """The samples through BS.1770's K-weighting filter, from silence: float64 ``(frames,
    channels)``, what ``scipy.signal.lfilter`` gives with pyloudnorm's two stages."""
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    out = np.empty(x.shape)
    for lo, y in _k_chunks(x, int(sr)):
        out[lo : lo + y.shape[1]] = y.T
    return out


def k_weighted_power(samples: np.ndarray, sr: int) -> np.ndarray:
    """Per frame, the K-weighted samples squared, summed over the channels with BS.1770's
    weights (1, 1, 1, 1.41, 1.41; channels beyond the fifth not counted): float64 ``(frames,)``.

    What the meter sums over its blocks, without keeping the filtered channels.
    """
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    power = np.empty(x.shape[0])
    for lo, chunk in _k_power_chunks(x, sr):
        power[lo : lo + chunk.size] = chunk
    return power


def _k_power_chunks(x: np.ndarray, sr: int) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`k_weighted_power` of ``x`` (frames, channels) a chunk at a time, in order:
    ``(first frame, power)``; each chunk's array is reused for the next."""
    counted = min(5, x.shape[1])
    weights = np.array(_CHANNEL_WEIGHTS[:counted])
    power = np.empty(_KW_CHUNK * _KW_BLOCK)
    for lo, y in _k_chunks(x[:, :counted], int(sr)):
        np.multiply(y, y, out=y)
        np.matmul(weights, y, out=power[: y.shape[1]])
        yield lo, power[: y.shape[1]]


# True peak: 4x oversampling, as ITU-R BS.1770-4 Annex 2 prescribes. The Annex's example
# interpolator (12 taps per phase) reads up to 0.25 dB low on bright, limited material;
# this one, a Kaiser-windowed sinc with 24 taps per phase (beta 7), is flat within 0.01 dB
# to 0.4 fs and agrees with a long polyphase resampler to 0.01 dB.
_TP_HALF = 12
_TP_BETA = 7.0


def _tp_kernel() -> np.ndarray:
    """(24, 3): for phases 1/4, 2/4, 3/4, the taps applied to x[m-11 .. m+12]."""
    j = np.arange(-_TP_HALF + 1, _TP_HALF + 1)
    columns = []
    for phase in (1, 2, 3):
        t = j - phase / 4
        window = np.i0(_TP_BETA * np.sqrt(np.clip(1 - (t / _TP_HALF) ** 2, 0, None)))
        taps = np.sinc(t) * window / np.i0(_TP_BETA)
        columns.append(taps / taps.sum())  # unity gain at DC
    return np.ascontiguousarray(np.array(columns).T, dtype=np.float32)


_TP_KERNEL = _tp_kernel()
_TP_BEFORE, _TP_AFTER = _TP_HALF - 1, _TP_HALF
# Blocks small enough that OpenBLAS never threads the product (m*n*k < 4 * 65536): on a
# busy machine its threads spin against other processes and run several times slower.
_TP_BLOCK = 2048


def frame_peaks(samples: np.ndarray) -> np.ndarray:
    """Per frame, the largest magnitude of any channel (``(frames,)`` or ``(frames, channels)``)."""
    x = np.asarray(samples)
    if x.ndim == 1:
        return np.abs(x)
    # Column by column: numpy reduces a 2-wide axis (max(axis=1)) many times slower.
    peaks = np.abs(x[:, 0])
    for ch in range(1, x.shape[1]):
        np.maximum(peaks, np.abs(x[:, ch]), out=peaks)
    return peaks


def oversampled_peaks(samples: np.ndarray, *, circular: bool = False) -> np.ndarray:
    """Per frame, the largest magnitude of the 4x oversampled signal in [n, n+1), all channels.

    The sample itself and the points a quarter, a half and three quarters after it. ``circular``
    treats the signal as a loop (the points between the last and first frames are
    interpolated across the seam); otherwise it is padded with silence.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    peaks = frame_peaks(x)
    if n == 0:
        return peaks
    if circular:
        idx = np.arange(-_TP_BEFORE, n + _TP_AFTER) % n
        padded = x[idx]
    else:
        padded = np.zeros((n + _TP_BEFORE + _TP_AFTER, x.shape[1]), dtype=np.float32)
        padded[_TP_BEFORE : _TP_BEFORE + n] = x
    width = _TP_BEFORE + _TP_AFTER + 1
    for ch in range(x.shape[1]):
        col = np.ascontiguousarray(padded[:, ch])
        windows = np.lib.stride_tricks.sliding_window_view(col, width)
        for start in range(0, n, _TP_BLOCK):
            stop = min(n, start + _TP_BLOCK)
            y = windows[start:stop] @ _TP_KERNEL
            # Column-wise maxima: numpy reduces a 3-wide axis far slower than this.
            hi = np.maximum(np.maximum(y[:, 0], y[:, 1]), y[:, 2])
            lo = np.minimum(np.minimum(y[:, 0], y[:, 1]), y[:, 2])
            np.maximum(peaks[start:stop], np.maximum(hi, -lo), out=peaks[start:stop])
    return peaks


# No point interpolated between samples exceeds the largest sample of the window it reads
# times the sum of its taps' magnitudes (the kernel's L1 norm, about 2.25: 7 dB).
_TP_L1 = float(np.abs(_TP_KERNEL).sum(axis=0).max())


# Frames whose bounds are computed at once: their arrays stay in the CPU's cache (passes
# over the whole track ran three times slower).
_TP_CHUNK = 16384


def _window_max(a: np.ndarray, width: int, out: np.ndarray) -> None:
    """out[i] = max(a[i : i + width]) for each i < out.size, by doubling windows."""
    m, span = a, 1
    while span * 2 <= width:
        m = np.maximum(m[:-span], m[span:])
        span *= 2
    # m[i] = max over span values from i; two overlapping spans cover the window.
    np.maximum(m[: out.size], m[width - span : width - span + out.size], out=out)


class TruePeaks:
    """Per-frame 4x-oversampled peaks (as :func:`oversampled_peaks`), computed where needed.

    ``values`` starts as an upper bound of each frame's true peak (the largest sample
    magnitude within the interpolator's reach, times ``_TP_L1``); :meth:`refine` makes it
    exact for every frame whose bound reaches a level. Music rarely has more than a few
    percent of its frames within 7 dB of its peak, so the exact maximum (:meth:`max`),
    or the frames a limiter may have to pull down, cost a small part of the full
    interpolation.
    """

    def __init__(self, samples: np.ndarray, *, circular: bool = False) -> None:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        self.frames = n = x.shape[0]
        # The samples themselves (no copy: a 10-minute track's is 0.2 GB), read with the
        # interpolator's reach on either side: silence there, or for a loop its own end
        # before it and its start after it (``_reach``).
        self._x, self._circular = x, circular
        # One array per frame (a frame's bound is its value until it is made exact; its
        # samples' own peak is read again when it is).
        self.values = np.empty(n, dtype=np.float32)
        self._sample_max = 0.0  # the largest sample magnitude
        for lo in range(0, n, _TP_CHUNK):
            hi = min(n, lo + _TP_CHUNK)
            own = self._bounds(lo, hi, self.values[lo:hi])
            self._sample_max = max(self._sample_max, own)
        self.exact = np.zeros(n, dtype=bool)

    def _bounds(self, lo: int, hi: int, out: np.ndarray) -> float:
        """Frames ``lo:hi``'s bounds into ``out`` (float32); their largest sample magnitude."""
        width = _TP_BEFORE + _TP_AFTER + 1
        rows = self._reach(np.arange(lo - _TP_BEFORE, hi + _TP_AFTER))
        reach = np.abs(rows[..., 0])
        for ch in range(1, rows.shape[-1]):
            np.maximum(reach, np.abs(rows[..., ch]), out=reach)
        own = float(reach[_TP_BEFORE : _TP_BEFORE + hi - lo].max())
        _window_max(reach, width, out)
        out *= np.float32(_TP_L1)
        return own

    def _reach(self, positions: np.ndarray) -> np.ndarray:
        """The frames at ``positions`` (any shape; before 0 and from ``frames`` on, silence
        or the loop's other end): ``positions.shape + (channels,)``."""
        n = self.frames
        if positions.size and positions.min() >= 0 and positions.max() < n:
            if positions.ndim == 1:  # a run of frames: a view
                return self._x[int(positions[0]) : int(positions[-1]) + 1]
            return self._x[positions]
        if self._circular:
            return self._x[positions % n]
        inside = (positions >= 0) & (positions < n)
        rows = self._x[np.clip(positions, 0, n - 1)]
        rows[~inside] = 0.0
        return rows

    def refine(self, level: float) -> np.ndarray:
        """Make ``values`` exact wherever the bound reaches ``level``; the frames it changed."""
        todo = np.flatnonzero((self.values >= level) & ~self.exact)
        if todo.size == 0:
            return todo
        for start in range(0, todo.size, _TP_BLOCK):
            idx = todo[start : start + _TP_BLOCK]
            self.values[idx] = self._exact(idx)
        self.exact[todo] = True
        return todo

    def _exact(self, idx: np.ndarray) -> np.ndarray:
        """The true peaks (float32) of the frames ``idx`` (at most ``_TP_BLOCK``)."""
        offsets = np.arange(-_TP_BEFORE, _TP_AFTER + 1)
        own = self._x[idx]  # the samples' own peaks
        peaks = np.abs(own[:, 0])
        for ch in range(1, own.shape[1]):
            np.maximum(peaks, np.abs(own[:, ch]), out=peaks)
        windows = self._reach(idx[:, None] + offsets)  # (frames, taps, channels)
        for ch in range(windows.shape[2]):
            y = np.ascontiguousarray(windows[:, :, ch]) @ _TP_KERNEL
            hi = np.maximum(np.maximum(y[:, 0], y[:, 1]), y[:, 2])
            lo = np.minimum(np.minimum(y[:, 0], y[:, 1]), y[:, 2])
            np.maximum(peaks, np.maximum(hi, -lo), out=peaks)
        return peaks

    @classmethod
    def peak(cls, samples: np.ndarray, *, circular: bool = False) -> float:
        """``TruePeaks(samples).max()`` without an array as long as the signal: the bounds
        a chunk at a time, the frames that could hold the peak made exact."""
        tp = cls.__new__(cls)
        x = np.asarray(samples, dtype=np.float32)
        tp._x, tp._circular = (x[:, None] if x.ndim == 1 else x), circular
        tp.frames = n = tp._x.shape[0]
        if n == 0:
            return 0.0
        level = 0.0
        for lo in range(0, n, _TP_CHUNK):
            level = max(level, float(np.abs(tp._x[lo : lo + _TP_CHUNK]).max()))
        bounds = np.empty(_TP_CHUNK, dtype=np.float32)
        todo = []
        for lo in range(0, n, _TP_CHUNK):
            hi = min(n, lo + _TP_CHUNK)
            tp._bounds(lo, hi, bounds[: hi - lo])
            todo.append(lo + np.flatnonzero(bounds[: hi - lo] >= level))
        frames = np.concatenate(todo)
        peak = 0.0
        for start in range(0, frames.size, _TP_BLOCK):
            peak = max(peak, float(tp._exact(frames[start : start + _TP_BLOCK]).max()))
        return peak

    def max(self) -> float:
        """The true peak (linear): every frame that could hold it made exact."""
        if self.frames == 0:
            return 0.0
        self.refine(self._sample_max)
        return float(self.values[self.exact].max(initial=0.0))


def true_peak_db(samples: np.ndarray, sr: int, *, circular: bool = False) -> float:
    """True peak in dBTP (ITU-R BS.1770-4 Annex 2: 4x oversampled); -inf for silence.

    ``sr`` is accepted for symmetry with :func:`loudness`: 4x is used at every rate (the
    Annex asks for at least 4x below 96 kHz). ``circular``: the signal is a loop.
    """
    del sr
    peak = TruePeaks.peak(samples, circular=circular)
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")
