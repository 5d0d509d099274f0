"""The openai-whisper, deepface and transformers backends, run for real on weights the tests build.

Model hubs are unreachable on CI, so each test builds a tiny, randomly
initialised model of the real architecture, saves it the way the real weights
are saved, and drives the backend's real loading and inference path through
it. The outputs are noise; what is checked is that the path runs end to end
and returns a well-formed result (and rejects bad input).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _media as M

from mesa.state import Turn
from mesa.taxonomy import MESC
from mesa.tools import BackendError, EmotionScores, MediaError, Perception, Transcript, get_backend
from mesa.tools.conformance import assert_conforms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny-media")
    speech = M.speech_wav(d, M.SENTENCES[0])
    face = M.face_png(d)
    return {"speech": speech, "face": face, "noface": M.no_face_png(d), "video": M.video(d, face, speech)}


# --------------------------------------------------------------------------- openai-whisper


@pytest.fixture(scope="module")
def whisper_checkpoint(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
        n_vocab=51864, n_text_ctx=32, n_text_state=32, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def test_openai_whisper_loads_a_local_checkpoint_and_transcribes(whisper_checkpoint, media):
    backend = get_backend("speech", f"openai-whisper:{whisper_checkpoint}")
    assert backend.settings["model"] == str(whisper_checkpoint)
    result = backend.transcribe(media["speech"])
    assert isinstance(result, Transcript)
    assert result.text.strip() and result.language == "en"  # English-only vocabulary: no detection
    assert result.segments and all(0 <= s.start <= s.end for s in result.segments)
    assert result.backend == "openai-whisper" and result.backend_version
    with pytest.raises(MediaError, match="silence"):
        backend.transcribe(M.silence_wav(media["speech"].parent))
    assert_conforms(backend, good_input=media["speech"])


def test_openai_whisper_in_a_video_turn(whisper_checkpoint, media):
    perception = Perception(speech=get_backend("speech", "openai-whisper", model=str(whisper_checkpoint)), cache=False)
    result = perception.perceive(Turn.from_inputs(video=media["video"]))["transcript"]
    assert result.ok and result.backend == "openai-whisper" and result.data["text"]


def test_openai_whisper_missing_checkpoint_fails_at_construction(tmp_path):
    with pytest.raises(BackendError, match="checkpoint not found"):
        get_backend("speech", "openai-whisper", model=str(tmp_path / "nope.pt"))


# --------------------------------------------------------------------------- deepface


@pytest.fixture(scope="module")
def deepface_home(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("deepface")
    home = tmp_path_factory.mktemp("deepface-home")
    weights = home / ".deepface" / "weights"
    weights.mkdir(parents=True)
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    torch.manual_seed(0)
    torch.save(EmotionModel().state_dict(), weights / "facial_expression_model_weights.pth")
    return home


def test_deepface_runs_its_emotion_model_and_detector(deepface_home, media):
    backend = get_backend("face", "deepface", engine="pytorch", home=deepface_home)
    result = backend.recognize(media["face"])
    assert set(result.scores) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert abs(sum(result.scores.values()) - 1) < 0.01
    assert result.frames_with_face == 1
    x, y, w, h = result.per_frame[0]["box"]
    assert 120 < x + w / 2 < 320 and 40 < y + h / 2 < 200  # deepface's OpenCV detector found the face
    with pytest.raises(MediaError, match="no face found"):
        backend.recognize(media["noface"])
    assert_conforms(backend, good_input=media["face"])


def test_deepface_on_video_frames_in_a_turn(deepface_home, media):
    perception = Perception(face=get_backend("face", "deepface", engine="pytorch", home=deepface_home), cache=False)
    result = perception.perceive(Turn.from_inputs(video=media["video"]), MESC)["face"]
    assert result.ok and result.data["frames_with_face"] >= 3
    assert set(result.data["taxonomy_scores"]["labels"]) == {"neutral", "anger", "disgust", "joy", "sadness", "fear"}


def test_deepface_rejects_an_unknown_engine():
    with pytest.raises(BackendError, match="engine"):
        get_backend("face", "deepface", engine="caffe")


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("hf-text")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *["i", "feel", "sad", "happy", "angry", "today", "the", "exam", "failed", "worthless", "and", "my"],
    ]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    labels = ["joy", "sadness", "anger", "surprise"]
    config = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    out = d / "model"
    BertForSequenceClassification(config).save_pretrained(out)
    BertTokenizer(vocab_file=str(d / "vocab.txt")).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    labels = ["neu", "hap", "sad", "ang"]
    config = Wav2Vec2Config(
        vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=8, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("hf-audio") / "model"
    Wav2Vec2ForSequenceClassification(config).save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True).save_pretrained(
        out
    )
    return out


def test_transformers_text_classification_pipeline(text_model):
    backend = get_backend("text_emotion", f"transformers:{text_model}")
    result = backend.classify("I failed the exam and I feel worthless")
    assert isinstance(result, EmotionScores)
    assert set(result.scores) == {"joy", "sadness", "anger", "surprise"}
    assert abs(sum(result.scores.values()) - 1) < 0.01
    assert str(text_model) in backend.version and "transformers" in backend.version
    assert_conforms(backend)


def test_transformers_text_emotion_in_a_turn_maps_onto_the_taxonomy(text_model, media):
    perception = Perception(text_emotion=f"transformers:{text_model}", cache=False)
    result = perception.perceive(Turn.from_inputs(text="I feel sad today"), MESC)["text_emotion"]
    assert result.ok and result.modality == "text"
    assert result.data["taxonomy_scores"]["mapping"] == {"joy": "joy", "sadness": "sadness", "anger": "anger"}
    assert result.clue


def test_transformers_audio_classification_pipeline(audio_model, media):
    backend = get_backend("audio_emotion", "transformers", model=str(audio_model))
    result = backend.classify_audio(media["speech"])
    assert set(result.scores) == {"neu", "hap", "sad", "ang"}
    assert abs(sum(result.scores.values()) - 1) < 0.01
    assert_conforms(backend, good_input=media["speech"])
    perception = Perception(audio_emotion=backend, cache=False)
    turn_result = perception.perceive(Turn.from_inputs(video=media["video"]), MESC)["audio_emotion"]
    assert turn_result.ok and set(turn_result.data["taxonomy_scores"]["labels"]) == {
        "neutral",
        "joy",
        "sadness",
        "anger",
    }


def test_transformers_needs_a_model():
    with pytest.raises(BackendError, match="model"):
        get_backend("text_emotion", "transformers")
    with pytest.raises(BackendError, match="not found"):
        get_backend("text_emotion", "transformers", model="./no/such/folder")
