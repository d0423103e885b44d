"""Chromium decodes every lossy format segue writes (libvorbis, libopus, LAME), at full length."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from web_support import browser  # noqa: F401  (the fixture)

from segue.core import audio

SR = 44100

DECODE = """async ([data, rate]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const ctx = new OfflineAudioContext(2, 1, rate);
  const buf = await ctx.decodeAudioData(bytes.buffer);
  const x = buf.getChannelData(0);
  let energy = 0;
  for (let i = 0; i < x.length; i++) energy += x[i] * x[i];
  return {frames: buf.length, rms: Math.sqrt(energy / x.length)};
}"""


@pytest.fixture(scope="module")
def page(browser):  # noqa: F811
    page = browser.new_page()
    page.set_content("<!doctype html><title>codecs</title>")
    yield page
    page.close()


def chords(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    return np.stack([x, 0.8 * x], 1).astype(np.float32)


@pytest.mark.parametrize("fmt", ["ogg", "opus", "mp3"])
def test_chromium_decodes_the_encoders_output_sample_exactly(page, fmt):
    x = chords(2.5)
    data = audio.encode(x, SR, fmt, loop=True)
    rate = 48000 if fmt == "opus" else SR
    got = page.evaluate(DECODE, [base64.b64encode(data).decode(), rate])
    # Opus at 48 kHz: the 44.1 kHz input is resampled; its length in 48 kHz frames.
    expected = round(x.shape[0] * rate / SR)
    assert got["frames"] == expected, f"{fmt}: {got['frames']} frames, not {expected}"
    # The music is there, at its level (the codecs keep loudness within a fraction of a dB).
    level = float(np.sqrt(np.mean(x[:, 0].astype(np.float64) ** 2)))
    assert got["rms"] == pytest.approx(level, rel=0.1)
