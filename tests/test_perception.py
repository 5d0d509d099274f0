"""Perception: registry, pipeline behaviour (concurrency, cache, errors), media handling, labels.

These tests use small fake backends where the behaviour under test is the
pipeline's own; the real models are exercised in test_perception_models.py and
test_perception_tiny_models.py.
"""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _media as M

from mesa import tools
from mesa.cache import PerceptionCache
from mesa.state import MediaRef, PerceptionResult, Turn
from mesa.taxonomy import ESCONV, MESC
from mesa.tools import (
    Audio,
    BackendError,
    BackendNotFoundError,
    EmotionScores,
    FaceBackend,
    FaceEmotions,
    Images,
    Limits,
    MediaError,
    MediaPolicy,
    MissingExtraError,
    Perception,
    ProsodyFeatures,
    SpeechBackend,
    TextEmotionBackend,
    Transcript,
    VoiceBackend,
    get_backend,
    map_to_taxonomy,
    register_backend,
    resolve_perception,
)
from mesa.tools import registry as registry_module
from mesa.tools.conformance import assert_conforms, check_backend
from mesa.tools.media import fetch, load_audio, load_images, probe

# --------------------------------------------------------------------------- fakes


class SlowSpeech(SpeechBackend):
    """Sleeps, then 'transcribes' by reporting the audio length; counts calls."""

    name = "slow-speech"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.version = "1.0"
        self.calls = 0

    def transcribe(self, audio: Audio) -> Transcript:
        audio = Audio.coerce(audio)
        audio.check()
        self.calls += 1
        time.sleep(self.settings["delay"])
        return self._stamp(Transcript(text=f"{audio.duration:.1f} seconds of speech", language="en"))  # type: ignore[return-value]


class SlowVoice(VoiceBackend):
    name = "slow-voice"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.version = "1.0"
        self.calls = 0

    def analyze(self, audio: Audio) -> ProsodyFeatures:
        audio = Audio.coerce(audio)
        audio.check()
        self.calls += 1
        time.sleep(self.settings["delay"])
        return self._stamp(  # type: ignore[return-value]
            ProsodyFeatures(
                duration=audio.duration,
                energy_mean_dbfs=-20.0,
                energy_std_db=3.0,
                voiced_fraction=0.9,
                speaking_rate=4.0,
                pause_count=0,
                pause_total_s=0.0,
                pause_longest_s=0.0,
                pause_ratio=0.0,
                description="steady voice",
            )
        )


class GreyFace(FaceBackend):
    """'Sees' a sad face in any frame whose mean brightness is below 200, no face otherwise."""

    name = "grey-face"

    def __init__(self) -> None:
        super().__init__()
        self.version = "0.1"

    def recognize(self, images: Images) -> FaceEmotions:
        images = Images.coerce(images)
        seen = [f for f in images.frames if float(np.mean(f)) < 200]
        if not seen:
            raise MediaError(f"no face found in {len(images)} frame(s)")
        scores = {"sad": 0.62, "neutral": 0.3, "surprise": 0.08}
        return self._stamp(FaceEmotions(scores=scores, frames=len(images), frames_with_face=len(seen)))  # type: ignore[return-value]


class Keywords(TextEmotionBackend):
    name = "keywords"

    def __init__(self) -> None:
        super().__init__()
        self.version = "0"

    def classify(self, text: str) -> EmotionScores:
        if not text.strip():
            raise MediaError("empty text")
        sad = 0.8 if "worthless" in text or "sad" in text else 0.2
        return self._stamp(EmotionScores(scores={"sadness": sad, "joy": round(1 - sad, 2)}))  # type: ignore[return-value]


class Crashing(SpeechBackend):
    name = "crashing"

    def transcribe(self, audio: Audio) -> Transcript:
        raise RuntimeError("model exploded")


class NotABackend:
    name = "nope"
    version = None


# --------------------------------------------------------------------------- media fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    speech = M.speech_wav(d, "I failed my exam and I feel worthless.")
    face = M.face_png(d)
    out = {
        "speech": speech,
        "silence": M.silence_wav(d),
        "face": face,
        "noface": M.no_face_png(d),
        "blank": M.blank_png(d),
        "video": M.video(d, face, speech),
        "silent_video": M.video(d, face, None, name="mute", seconds=2),
        "long": M.tone_wav(d, 5.0, name="long"),
        "empty": d / "empty.wav",
        "text": d / "notes.mp4",
        "corrupt_wav": M.corrupt_copy(speech, d, "corrupt.wav"),
    }
    out["empty"].write_bytes(b"")
    out["text"].write_text("this is not a video at all\n" * 20)
    return out


def _cacheless(**backends) -> Perception:
    return Perception(cache=False, **backends)


# --------------------------------------------------------------------------- import and registry


def test_import_is_light():
    code = (
        "import sys, mesa.tools; "
        "heavy = [m for m in ('torch','whisper','faster_whisper','cv2','librosa','transformers','deepface',"
        "'ai_edge_litert','av','numpy','tensorflow') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_public_api_is_explicit():
    assert len(tools.__all__) == len(set(tools.__all__))
    for name in tools.__all__:
        assert hasattr(tools, name), name
    for name in (
        "Perception",
        "resolve_perception",
        "register_backend",
        "get_backend",
        "available_backends",
        "MissingExtraError",
    ):
        assert name in tools.__all__


def test_builtin_backends_are_listed():
    known = tools.available_backends()
    assert set(known) == {"speech", "face", "voice", "text_emotion", "audio_emotion"}
    assert {"faster-whisper", "openai-whisper"} <= set(known["speech"])
    assert {"fer", "deepface"} <= set(known["face"])
    assert "prosody" in known["voice"]
    assert "transformers" in known["text_emotion"] and "transformers" in known["audio_emotion"]


def test_unknown_backend_fails_fast_with_the_list():
    with pytest.raises(BackendNotFoundError) as err:
        get_backend("speech", "no-such-stt")
    assert "no-such-stt" in str(err.value) and "faster-whisper" in str(err.value)
    with pytest.raises(BackendNotFoundError):
        Perception(face="no-such-face", cache=False)
    with pytest.raises(BackendNotFoundError):
        get_backend("smell", "nose")


def test_missing_extra_fails_fast_with_pip_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # find_spec -> None: "not installed"
    with pytest.raises(MissingExtraError) as err:
        Perception(speech="faster-whisper", cache=False)
    assert isinstance(err.value, ImportError)
    assert 'pip install "mesa-esc[audio]"' in str(err.value)
    assert "faster_whisper" in str(err.value)
    monkeypatch.setitem(sys.modules, "deepface", None)
    with pytest.raises(MissingExtraError, match=r"mesa-esc\[deepface\]"):
        get_backend("face", "deepface")
    for runtime in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        monkeypatch.setitem(sys.modules, runtime, None)
    with pytest.raises(MissingExtraError, match=r"TFLite runtime.*mesa-esc\[vision\]"):
        Perception(face="fer", cache=False)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"mesa-esc\[transformers\]"):
        get_backend("text_emotion", "transformers", model="some/model")
    monkeypatch.setitem(sys.modules, "whisper", None)
    with pytest.raises(MissingExtraError, match=r"mesa-esc\[whisper\]"):
        get_backend("speech", "openai-whisper")


def test_register_backend_and_name_with_model():
    register_backend("speech", "slow-speech", SlowSpeech)
    backend = get_backend("speech", "slow-speech", delay=0.01)
    assert isinstance(backend, SlowSpeech) and backend.settings["delay"] == 0.01
    register_backend("text_emotion", "kw", lambda model=None: Keywords())
    assert isinstance(get_backend("text", "kw:whatever"), Keywords)  # alias kind, name:model shorthand
    assert "slow-speech" in tools.available_backends()["speech"]


def test_third_party_backend_from_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "mesa_plugin_demo"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from mesa.tools import VoiceBackend, ProsodyFeatures, Audio

            class DemoVoice(VoiceBackend):
                name = "demo-voice"

                def __init__(self, loudness=-20.0):
                    super().__init__(loudness=loudness)
                    self.version = "9.9"

                def analyze(self, audio):
                    audio = Audio.coerce(audio)
                    audio.check()
                    return self._stamp(ProsodyFeatures(
                        duration=audio.duration, energy_mean_dbfs=self.settings["loudness"], energy_std_db=0.0,
                        voiced_fraction=1.0, speaking_rate=4.0, pause_count=0, pause_total_s=0.0,
                        pause_longest_s=0.0, pause_ratio=0.0, description="demo"))
            """
        )
    )
    dist = tmp_path / "mesa_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mesa-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mesa.tools]\nvoice.demo-voice = mesa_plugin_demo:DemoVoice\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry_module._reload_entry_points()
    try:
        assert "demo-voice" in tools.available_backends()["voice"]
        backend = get_backend("voice", "demo-voice", loudness=-12.0)
        assert backend.version == "9.9"
        perception = Perception(voice="demo-voice", settings={"voice": {"loudness": -7.0}}, cache=False)
        assert_conforms(backend)
        assert perception.backends["voice"].settings["loudness"] == -7.0
    finally:
        monkeypatch.undo()
        registry_module._reload_entry_points()
    assert "demo-voice" not in tools.available_backends()["voice"]


def test_object_that_is_not_a_backend_is_rejected():
    with pytest.raises(BackendError, match="not a speech backend"):
        Perception(speech=NotABackend(), cache=False)


# --------------------------------------------------------------------------- resolve_perception


def test_resolve_perception_variants():
    assert resolve_perception(None) is None
    assert resolve_perception(False) is None
    fake = _cacheless(speech=SlowSpeech())
    assert resolve_perception(fake) is fake
    default = resolve_perception("default")
    assert isinstance(default, Perception)
    assert set(default.kinds) == {"speech", "face", "voice"}  # every extra is installed in the test environment
    from_dict = resolve_perception({"voice": SlowVoice(), "cache": False})
    assert from_dict.kinds == ["voice"]
    register_backend("voice", "slow-voice", SlowVoice)
    from_list = resolve_perception(["slow-voice", "text_emotion=kw"])
    assert set(from_list.kinds) == {"voice", "text_emotion"}
    from_string = resolve_perception("slow-voice")
    assert from_string.kinds == ["voice"]
    with pytest.raises(BackendError):
        resolve_perception(["no-such-backend"])
    with pytest.raises(TypeError):
        resolve_perception(42)


def test_default_leaves_out_kinds_whose_extra_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    perception = Perception.default(cache=False)
    assert perception.kinds == ["speech"]


# --------------------------------------------------------------------------- the pipeline


def test_modalities_run_concurrently_and_audio_is_decoded_once(media, monkeypatch):
    decoded = []
    real = load_audio

    def counting(*args, **kwargs):
        decoded.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr("mesa.tools.pipeline.load_audio", counting)
    # Each backend waits at a barrier for the other two: they can only all pass if they run at the same time
    # (run one after another, the first would wait in vain and fail with BrokenBarrierError).
    barrier = threading.Barrier(3, timeout=60)

    class MeetingSpeech(SlowSpeech):
        def transcribe(self, audio):
            barrier.wait()
            return super().transcribe(audio)

    class MeetingVoice(SlowVoice):
        def analyze(self, audio):
            barrier.wait()
            return super().analyze(audio)

    class MeetingFace(GreyFace):
        def recognize(self, images):
            barrier.wait()
            return super().recognize(images)

    perception = _cacheless(speech=MeetingSpeech(), voice=MeetingVoice(), face=MeetingFace())
    results = perception.perceive(Turn.from_inputs(video=media["video"]))
    assert set(results) == {"transcript", "voice", "face"}
    assert all(r.ok for r in results.values()), {k: r.error for k, r in results.items()}
    assert len(decoded) == 1  # speech and voice share the extracted audio track
    assert results["transcript"].modality == "video" and results["face"].modality == "video"


async def test_aperceive_from_async_code(media):
    perception = _cacheless(speech=SlowSpeech(), voice=SlowVoice())
    results = await perception.aperceive(Turn.from_inputs(audio=media["speech"]))
    assert set(results) == {"transcript", "voice"}
    assert results["transcript"].data["text"].endswith("seconds of speech")
    # the sync twin also works when an event loop is already running
    assert set(perception.perceive(Turn.from_inputs(audio=media["speech"]))) == {"transcript", "voice"}


def test_audio_only_turn_gives_transcript_and_voice(media):
    perception = _cacheless(speech=SlowSpeech(), voice=SlowVoice(), face=GreyFace(), text_emotion=Keywords())
    results = perception.perceive(Turn.from_inputs(audio=media["speech"]))
    assert set(results) == {"transcript", "voice", "text_emotion"}
    assert results["text_emotion"].modality == "audio"  # classified from the transcript
    results = perception.perceive(Turn.from_inputs(text="I feel worthless", audio=media["speech"]))
    assert results["text_emotion"].modality == "text" and results["text_emotion"].data["scores"]["sadness"] == 0.8


def test_explicit_audio_wins_over_the_video_sound_track(media):
    perception = _cacheless(speech=SlowSpeech(), voice=SlowVoice(), face=GreyFace())
    results = perception.perceive(Turn.from_inputs(audio=media["speech"], video=media["silent_video"]))
    assert results["transcript"].ok and results["transcript"].modality == "audio"
    assert results["voice"].ok and results["face"].ok and results["face"].modality == "video"
    # an image with a video: the face is read from the video
    results = perception.perceive(Turn.from_inputs(image=media["blank"], video=media["silent_video"]))
    assert results["face"].ok and results["face"].modality == "video"


def test_text_only_turn_and_taxonomy_mapping():
    perception = _cacheless(text_emotion=Keywords(), speech=SlowSpeech())
    results = perception.perceive(Turn.from_inputs(text="I feel worthless"), MESC)
    assert set(results) == {"text_emotion"}
    r = results["text_emotion"]
    assert r.clue == "mostly sadness (0.80), then joy (0.20)"
    assert r.data["taxonomy_scores"]["labels"] == {"joy": 0.2, "sadness": 0.8}
    assert r.data["top"] == {"label": "sadness", "score": 0.8}


def test_results_are_cached_by_content_backend_and_settings(media, tmp_path):
    cache = PerceptionCache(tmp_path / "cache")
    speech = SlowSpeech()
    perception = Perception(speech=speech, cache=cache)
    turn = Turn.from_inputs(audio=media["speech"])
    first = perception.perceive(turn)["transcript"]
    second = perception.perceive(turn)["transcript"]
    assert speech.calls == 1
    assert not first.cached and second.cached
    assert second.data == first.data and second.clue == first.clue
    # same content under another name: still a hit (content hash)
    copy = tmp_path / "copy.wav"
    copy.write_bytes(media["speech"].read_bytes())
    assert perception.perceive(Turn.from_inputs(audio=copy))["transcript"].cached
    # other settings: a miss
    other = Perception(speech=SlowSpeech(delay=0.001), cache=cache)
    assert not other.perceive(turn)["transcript"].cached
    # errors are not cached
    bad = Turn.from_inputs(audio=media["silence"])
    assert perception.perceive(bad)["transcript"].error
    assert not perception.perceive(bad)["transcript"].cached
    # repeated turns never reach the backend again
    for _ in range(5):
        perception.perceive(turn)
    assert speech.calls == 1
    cache.close()


def test_backend_exception_and_timeout_become_errors(media):
    release = threading.Event()

    class Stuck(SlowSpeech):
        name = "stuck"

        def transcribe(self, audio):
            release.wait(60)
            return super().transcribe(audio)

    perception = Perception(speech=Crashing(), voice=SlowVoice(), cache=False)
    results = perception.perceive(Turn.from_inputs(audio=media["speech"]))
    assert results["transcript"].error == "RuntimeError: model exploded"
    assert results["voice"].ok
    stuck = Perception(speech=Stuck(), voice=SlowVoice(), cache=False, limits=Limits(timeout=0.5))
    try:
        results = stuck.perceive(Turn.from_inputs(audio=media["speech"]))
        # perceive returned while the backend is still stuck: the turn did not wait for it
        assert not release.is_set()
        assert results["transcript"].error == "timed out" and results["voice"].ok
    finally:
        release.set()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "missing or not allowed file"),
        ("empty", "empty file"),
        ("corrupt_wav", "corrupt"),
        ("text", "corrupt or unsupported"),
        ("silence", "silence"),
        ("silent_video", "no audio track"),
    ],
)
def test_bad_audio_input_is_recorded_not_raised(media, case, expected):
    path = media.get(case, media["speech"].parent / "does-not-exist.wav")
    perception = _cacheless(speech=SlowSpeech(), voice=SlowVoice())
    results = perception.perceive(Turn(audio=MediaRef.from_source(path)))
    assert set(results) == {"transcript", "voice"}
    for result in results.values():
        assert isinstance(result, PerceptionResult)
        assert result.error and expected in result.error, result.error
        assert result.clue == "" and not result.ok


def test_bad_face_input_is_recorded_not_raised(media, tmp_path):
    perception = _cacheless(face=GreyFace(), speech=SlowSpeech())
    assert "no face found" in perception.perceive(Turn.from_inputs(image=media["blank"]))["face"].error
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 100)
    assert "corrupt or unsupported image" in perception.perceive(Turn.from_inputs(image=corrupt))["face"].error
    # a video with a face but no sound: the face is perceived, speech records the missing track
    results = perception.perceive(Turn.from_inputs(video=media["silent_video"]))
    assert results["face"].ok and "no audio track" in results["transcript"].error


def test_limits_are_enforced(media):
    perception = Perception(speech=SlowSpeech(), face=GreyFace(), cache=False, limits={"max_seconds": 2.0})
    result = perception.perceive(Turn.from_inputs(audio=media["long"]))["transcript"]
    assert "too long" in result.error
    small = Perception(speech=SlowSpeech(), cache=False, limits=Limits(max_bytes=1000))
    assert "too large" in small.perceive(Turn.from_inputs(audio=media["speech"]))["transcript"].error
    pixels = Perception(face=GreyFace(), cache=False, limits=Limits(max_image_pixels=100 * 100))
    assert "image too large" in pixels.perceive(Turn.from_inputs(image=media["face"]))["face"].error


def test_video_frames_are_sampled_at_the_configured_rate(media):
    info = probe(media["video"])
    assert info.has_audio and info.has_video and info.duration and info.duration > 2
    frames = load_images(media["video"], frame_rate=2.0, max_frames=100)
    expected = int(info.duration * 2)
    assert abs(len(frames) - expected) <= 2
    assert all(b - a >= 0.45 for a, b in zip(frames.times, frames.times[1:], strict=False))
    assert frames.frames[0].shape == (320, 320, 3)
    capped = load_images(media["video"], frame_rate=10.0, max_frames=3)
    assert len(capped) == 3 and capped.times[-1] > 1.0  # spread over the video, not the first 0.3 s


def test_audio_track_is_extracted_from_video(media):
    from_video = load_audio(media["video"])
    from_wav = load_audio(media["speech"])
    assert from_video.sample_rate == 16000
    assert abs(from_video.duration - from_wav.duration) < 0.3
    with pytest.raises(MediaError, match="silence"):
        load_audio(media["silence"]).check()


# --------------------------------------------------------------------------- URLs


@pytest.fixture(scope="module")
def server(media):
    root = media["speech"].parent

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


LOCAL_SERVER = MediaPolicy(allow_private_networks=True)  # the test server listens on 127.0.0.1


def test_urls_are_downloaded_within_limits(server, media, tmp_path):
    perception = Perception(speech=SlowSpeech(), face=GreyFace(), cache=False, policy=LOCAL_SERVER)
    results = perception.perceive(Turn.from_inputs(audio=f"{server}/speech.wav", image=f"{server}/face.png"))
    assert results["transcript"].ok and results["face"].ok
    assert (
        results["transcript"].data["text"]
        == perception.perceive(Turn.from_inputs(audio=media["speech"]))["transcript"].data["text"]
    )
    # two downloads with the same suffix in one turn do not overwrite each other
    both = perception.perceive(Turn.from_inputs(audio=f"{server}/turn.mp4", video=f"{server}/mute.mp4"))
    assert both["transcript"].ok and both["face"].ok, {k: r.error for k, r in both.items()}
    assert "download failed" in perception.perceive(Turn.from_inputs(audio=f"{server}/nothing.wav"))["transcript"].error
    tiny = Perception(speech=SlowSpeech(), cache=False, limits=Limits(max_bytes=2000), policy=LOCAL_SERVER)
    assert "too large" in tiny.perceive(Turn.from_inputs(audio=f"{server}/speech.wav"))["transcript"].error
    assert (
        "unsupported URL scheme"
        in perception.perceive(Turn.from_inputs(audio="ftp://example.org/a.wav"))["transcript"].error
    )
    with pytest.raises(MediaError, match="download failed"):
        fetch("http://127.0.0.1:9/unreachable.wav", tmp_path, Limits(download_timeout=2), LOCAL_SERVER)


def test_url_results_are_cached_by_downloaded_content(server, tmp_path):
    speech = SlowSpeech()
    perception = Perception(speech=speech, cache=PerceptionCache(tmp_path / "c"), policy={"allow_private_networks": True})
    turn = Turn.from_inputs(audio=f"{server}/speech.wav")
    assert turn.audio.sha256 is None
    assert not perception.perceive(turn)["transcript"].cached
    assert perception.perceive(turn)["transcript"].cached
    assert speech.calls == 1


# --------------------------------------------------------------------------- labels, clues, inputs


def test_fer_labels_map_onto_mesc_and_esconv():
    scores = {"angry": 0.1, "disgust": 0.0, "fear": 0.05, "happy": 0.6, "sad": 0.15, "surprise": 0.05, "neutral": 0.05}
    mesc = map_to_taxonomy(scores, MESC)
    assert mesc["labels"] == {"neutral": 0.05, "anger": 0.1, "disgust": 0.0, "joy": 0.6, "sadness": 0.15, "fear": 0.05}
    assert mesc["unmapped"] == 0.05 and "surprise" not in mesc["mapping"]
    esconv = map_to_taxonomy(scores, ESCONV)
    assert esconv["labels"] == {"sadness": 0.15, "anger": 0.1, "fear": 0.05, "disgust": 0.0}
    assert esconv["unmapped"] == pytest.approx(0.7)
    assert map_to_taxonomy({"hap": 0.7, "ang": 0.3}, MESC)["labels"] == {"anger": 0.3, "joy": 0.7}


def test_clues():
    face = FaceEmotions(scores={"sad": 0.62, "neutral": 0.3, "happy": 0.08}, frames=8, frames_with_face=6)
    assert tools.render_clue("face", face) == "mostly sad (0.62), then neutral (0.30) over 6/8 frames"
    assert tools.render_clue("transcript", Transcript(text="hello", language="en")) == '"hello" (en)'
    assert tools.render_clue("text_emotion", EmotionScores(scores={"fear": 0.4, "joy": 0.35, "anger": 0.25})) == (
        "fear (0.40), then joy (0.35), anger (0.25)"
    )


def test_audio_input_checks_and_resampling():
    tone = Audio(samples=np.sin(np.linspace(0, 2000, 8000)).astype(np.float32) * 0.5, sample_rate=8000)
    tone.check()
    up = tone.resampled(16000)
    assert up.sample_rate == 16000 and abs(up.duration - tone.duration) < 1e-3
    with pytest.raises(MediaError, match="empty"):
        Audio(samples=np.zeros(0, dtype=np.float32)).check()
    with pytest.raises(MediaError, match="silence"):
        Audio(samples=np.zeros(16000, dtype=np.float32)).check()
    with pytest.raises(MediaError, match="non-finite"):
        Audio(samples=np.full(16000, np.nan, dtype=np.float32)).check()
    with pytest.raises(MediaError):
        Audio.coerce(np.zeros((2, 2)))


# --------------------------------------------------------------------------- conformance kit


def test_conformance_kit_passes_a_good_backend_and_catches_bad_ones(media):
    assert_conforms(SlowVoice())
    assert_conforms(Keywords())
    assert_conforms(SlowSpeech(), good_input=media["speech"])

    class Sloppy(TextEmotionBackend):
        name = "sloppy"

        def classify(self, text):
            return EmotionScores(scores={"joy": 0.9, "sadness": 0.9})  # not a distribution, accepts empty text

    report = check_backend(Sloppy())
    assert not report.passed
    failed = {c.name for c in report.failures}
    assert "classify returns a well-formed EmotionScores" in failed
    assert "classify rejects empty text" in failed

    class NoTwin:
        kind = "voice"
        name = "no-twin"
        version = None

        def analyze(self, audio):
            raise MediaError("x")

    report = check_backend(NoTwin())
    assert not report.passed and "aanalyze is a coroutine function" in {c.name for c in report.failures}
    with pytest.raises(AssertionError, match="does NOT conform"):
        assert_conforms(NoTwin())


def test_async_twin_runs_in_a_worker_thread():
    seen = []

    class Probe(TextEmotionBackend):
        name = "probe"

        def classify(self, text):
            seen.append(threading.current_thread() is threading.main_thread())
            return EmotionScores(scores={"joy": 1.0})

    asyncio.run(Probe().aclassify("hi"))
    assert seen == [False]
