"""Small corpora the evaluation tests write themselves (no dependency on ../shared)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

MESC_HEADER = [
    "Utterance",
    "Speaker",
    "Emotion",
    "Strategy",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
    "split",
]

# (dialogue, speaker, emotion, strategy, text, split)
MESC_ROWS = [
    (0, "Therapist", "neutral", "Open question", "How are you today?", "train"),
    (0, "Client", "sadness", "undefined", "I told you I feel low.", "train"),
    (0, "Therapist", "neutral", "Restatement", "You feel low.", "train"),
    (0, "Client", "depression", "undefined", "Nothing matters anymore.", "train"),
    (0, "Client", "depression", "undefined", "I can't get up in the morning.", "train"),
    (0, "Therapist", "neutral", "open question", "What happens in the morning?", "train"),
    (0, "Therapist", "sadness", "Interpretation", "Maybe the mornings remind you of him.", "train"),
    (1, "Client", "anger", "undefined", "He never listens to me!", "val"),
    (1, "Therapist", "neutral", "Open question", "What do you want him to hear?", "val"),
    (1, "Client", "joy", "undefined", "That I got the job, finally.", "val"),
    (1, "Therapist", "joy", "Approval", "That is wonderful news.", "val"),
]


def write_mesc_csv(path: Path) -> Path:
    per_dialogue: dict[int, int] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MESC_HEADER)
        for dialogue, speaker, emotion, strategy, text, split in MESC_ROWS:
            index = per_dialogue.get(dialogue, 0)
            per_dialogue[dialogue] = index + 1
            writer.writerow(
                [text, speaker, emotion, strategy, dialogue, index, 1, 1, "00:00:01,000", "00:00:02,000", split]
            )
    return path


MESC_JSON = [
    {
        "problem_type": "Work",
        "situation": "Lost a job.",
        "dialog": [
            {
                "text": "I lost my job. The speaker seems to be in a state of sadness, looking down.",
                "speaker": "user",
                "emotion": "sadness",
            },
            {
                "text": "Tell me more. The speaker appears calm.",
                "speaker": "sys",
                "emotion": "neutral",
                "strategy": "Open question",
            },
        ],
    }
]

ESCONV_DIALOGUES = [
    {
        "experience_type": "Previous Experience",
        "emotion_type": "anxiety",
        "problem_type": "job crisis",
        "situation": "I may lose my job.",
        "survey_score": {},
        "dialog": [
            {"text": "Hi, how can I help?", "speaker": "sys", "strategy": "Question"},
            {"text": "Hi", "speaker": "usr"},
            {"text": "I am worried about my job", "speaker": "usr"},
            {"text": "That sounds stressful.", "speaker": "sys", "strategy": "Reflection of feelings"},
            {"text": "It is. I can't sleep.", "speaker": "usr"},
            {"text": "Have you tried a routine before bed?", "speaker": "sys", "strategy": "Providing Suggestions"},
        ],
    },
    {
        "experience_type": "Current Experience",
        "emotion_type": "sadness",
        "problem_type": "breakup",
        "situation": "My partner left.",
        "survey_score": {},
        "dialog": [
            {"text": "My partner left me.", "speaker": "usr"},
            {"text": "I am sorry to hear that.", "speaker": "sys", "strategy": "Affirmation and Reassurance"},
        ],
    },
]


def write_esconv_jsonl(path: Path, dialogues: list[dict] | None = None) -> Path:
    path.write_text("\n".join(json.dumps(d) for d in (dialogues or ESCONV_DIALOGUES)) + "\n", encoding="utf-8")
    return path


def esconv_original(dialogues: list[dict] | None = None) -> list[dict]:
    """The same conversations in the original ESConv.json layout (seeker/supporter, content, annotation)."""
    out = []
    for d in dialogues or ESCONV_DIALOGUES:
        turns = []
        for t in d["dialog"]:
            if t["speaker"] == "usr":
                turns.append({"speaker": "seeker", "annotation": {}, "content": t["text"] + "\n"})
            else:
                turns.append({"speaker": "supporter", "annotation": {"strategy": t["strategy"]}, "content": t["text"]})
        out.append({k: v for k, v in d.items() if k != "dialog"} | {"dialog": turns})
    return out


class HashEmbedder:
    """A deterministic bag-of-words embedder: fast stand-in for MiniLM in unit tests."""

    model_id = "hash-bow-64"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0
        self.texts = 0

    def encode(self, texts, progress: bool = False):
        import hashlib
        import re

        import numpy as np

        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out


def synthetic_examples(n_dialogues: int = 12, split: str = "train"):
    """Dialogues where the words give the labels away: a learnable toy corpus in MESC labels."""
    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    patterns = [
        ("I am so angry at him", "anger", "Why do you think he did that?", "Open question"),
        ("I feel hopeless and empty", "depression", "You feel hopeless.", "Restatement"),
        ("I got the job, I am happy", "joy", "That is great, well done!", "Approval"),
    ]
    dialogues = []
    for d in range(n_dialogues):
        utterances = []
        for t in range(4):
            text, emotion, reply, strategy = patterns[(d + t) % 3]
            utterances.append(Utterance(speaker="user", text=f"{text} {t}", emotion=emotion))
            utterances.append(Utterance(speaker="system", text=reply, emotion="neutral", strategy=strategy))
        dialogues.append(Dialogue(id=f"{split}{d}", utterances=utterances, split=split))
    return dialogues_to_examples(dialogues, corpus="toy")


def capture_train(monkeypatch, pick):
    """Make ``mesa train`` stop before fitting: the corpus loader gives three synthetic dialogues and
    ``SupervisedClassifier.train`` records ``pick(its keyword arguments)`` per taxonomy in the returned dict."""
    from mesa.eval import cli
    from mesa.eval.classifier import SupervisedClassifier

    asked = {}

    def fake_train(examples, taxonomy, **kwargs):
        asked[taxonomy.name] = pick(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(cli, "_load", lambda corpus, data, split: synthetic_examples(3))
    monkeypatch.setattr(SupervisedClassifier, "train", staticmethod(fake_train))
    return asked


def strategy_accuracy(classifier, examples) -> float:
    """The share of examples whose gold strategy the classifier predicts from the example's text and history."""
    predicted = [classifier.predict("strategy", e.text, e.history) for e in examples]
    return sum(p == e.strategy for p, e in zip(predicted, examples, strict=True)) / len(examples)


def run_eval_cli(tmp_path: Path, monkeypatch, rows: str, *extra: str):
    """``mesa eval`` through the real CLI on a small MESC CSV under both history protocols, with a hashing embedder and
    a scripted LLM (anger, Approval, neutral). Returns the script, the CLI result and the report folder."""
    from typer.testing import CliRunner

    from mesa.cli import app
    from mesa.eval import embeddings
    from mesa.testing import ScriptedModel

    fake = HashEmbedder()
    monkeypatch.setattr(embeddings, "default_embedder", lambda model=None, cache_dir=None: fake)
    script = ScriptedModel(user_emotion="anger", strategy="Approval", system_emotion="neutral", reply="Hard.")
    data = write_mesc_csv(tmp_path / "mesc.csv")
    out = tmp_path / "report"
    args = ["eval", "--data", str(data), "--split", "train", "--rows", rows, "--history", "both", *extra]
    args += ["--model", script.model, "--out", str(out), "--no-progress", "--no-plots"]
    return script, CliRunner().invoke(app, args), out
