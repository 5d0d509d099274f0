"""Quality levers: the supervised classifier, demonstration retrieval, SFT export, and the CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _eval_fixtures import HashEmbedder, synthetic_examples, write_mesc_csv

from mesa.eval import (
    ClassifierPredictor,
    EmbeddingRetriever,
    MajorityClassifier,
    SupervisedClassifier,
    example_to_chat,
    export_chat,
    load_mesc,
    run_predictor,
    score_run,
)
from mesa.graphs.context import DemonstrationSource, LabelClassifier
from mesa.state import Message
from mesa.taxonomy import MESC


@pytest.fixture(scope="module")
def trained():
    embedder = HashEmbedder()
    clf = SupervisedClassifier.train(
        synthetic_examples(12), MESC, embedder=embedder, c_grid=(1.0,), weight_powers=(0.0, 1.0)
    )
    return clf, embedder


def test_classifier_learns_and_implements_the_protocol(trained):
    clf, _ = trained
    assert isinstance(clf, LabelClassifier)
    assert clf.supports("strategy") and clf.supports("user_emotion") and clf.supports("system_emotion")
    dist = clf.predict_distribution("strategy", "I am so angry at him 9", [])
    assert set(dist) == set(MESC.names("strategy"))
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(dist, key=dist.get) == "Open question"
    assert clf.predict("user_emotion", "I feel hopeless and empty 7", []) == "depression"
    # Only neutral system emotions in training: a constant head.
    assert clf.predict_distribution("system_emotion", "anything", [])["neutral"] == pytest.approx(1.0)
    held = synthetic_examples(3, split="val")
    result = run_predictor(ClassifierPredictor(clf), held, progress=False)
    scores = score_run(result, held, MESC)
    assert scores["strategy"]["accuracy"] == 1.0 and scores["user_emotion"]["accuracy"] == 1.0
    assert clf.info["tasks"]["strategy"]["grid"]  # the tuning grid was scored on held-out dialogues


def test_label_history_features_matter():
    """The previous therapist strategy alone predicts the next one: texts carry no signal here."""
    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    follow = {"Open question": "Restatement", "Restatement": "Approval", "Approval": "Open question"}
    dialogues = []
    for d in range(30):
        strategy = list(follow)[d % 3]
        utterances = [Utterance(speaker="user", text="hm", emotion="neutral")]
        for _ in range(6):
            utterances += [
                Utterance(speaker="system", text="okay", strategy=strategy, emotion="neutral"),
                Utterance(speaker="user", text="hm", emotion="neutral"),
            ]
            strategy = follow[strategy]
        utterances.append(Utterance(speaker="system", text="okay", strategy=strategy, emotion="neutral"))
        dialogues.append(Dialogue(id=str(d), utterances=utterances))
    examples = [e for e in dialogues_to_examples(dialogues, corpus="toy") if e.history]
    clf = SupervisedClassifier.train(examples, MESC, embedder=HashEmbedder(), c_grid=(1.0,), weight_powers=(0.0,))
    history = [
        Message(role="user", text="hm", emotion="neutral"),
        Message(role="assistant", text="okay", strategy="Restatement"),
    ]
    assert clf.predict("strategy", "hm", history) == "Approval"


def test_classifier_save_load_roundtrip_without_pickle(tmp_path, trained):
    clf, embedder = trained
    path = clf.save(tmp_path / "clf.npz")
    assert path.stat().st_size < 200_000
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert "header" in data.files
    loaded = SupervisedClassifier.load(path, embedder=embedder)
    assert loaded.embedding_model == "hash-bow-64"
    history = [Message(role="assistant", text="You feel hopeless.", strategy="Restatement")]
    for which in ("user_emotion", "strategy", "system_emotion"):
        a = clf.predict_distribution(which, "I got the job, I am happy 3", history)
        b = loaded.predict_distribution(which, "I got the job, I am happy 3", history)
        assert a == pytest.approx(b, abs=1e-5)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises((ValueError, OSError)):
        SupervisedClassifier.load(tmp_path / "bad.npz")


def test_majority_classifier():
    examples = synthetic_examples(4)
    majority = MajorityClassifier.fit(examples, MESC)
    assert isinstance(majority, LabelClassifier)
    dist = majority.predict_distribution("system_emotion", "x", [])
    assert dist["neutral"] == 1.0 and sum(dist.values()) == 1.0


def test_retriever_finds_similar_labelled_turns(tmp_path):
    examples = synthetic_examples(6)
    retriever = EmbeddingRetriever.from_examples(examples, embedder=HashEmbedder())
    assert isinstance(retriever, DemonstrationSource)
    demos = retriever.retrieve("he makes me so angry", [], k=3)
    assert len(demos) == 3
    assert all(d.strategy == "Open question" and d.user_emotion == "anger" for d in demos)
    assert demos[0].reply == "Why do you think he did that?"
    assert "User: I am so angry at him" in demos[0].context
    assert retriever.retrieve("x", [], k=0) == []
    # The query itself is never returned as its own demonstration.
    target = examples[3]
    got = retriever.retrieve(target.text, target.history, k=len(examples))
    assert all(d.context != retriever.demonstrations[3].context for d in got)
    path = retriever.save(tmp_path / "index.npz")
    loaded = EmbeddingRetriever.load(path, embedder=HashEmbedder())
    assert [d.reply for d in loaded.retrieve("he makes me so angry", [], k=3)] == [d.reply for d in demos]


def test_retriever_from_corpus_file(tmp_path):
    path = write_mesc_csv(tmp_path / "mesc.csv")
    retriever = EmbeddingRetriever.from_corpus(path, "mesc", "train", embedder=HashEmbedder())
    assert len(retriever) == 3
    assert retriever.retrieve("I feel low", [], k=1)[0].strategy in MESC.names("strategy")


def test_export_chat(tmp_path):
    examples = load_mesc(write_mesc_csv(tmp_path / "mesc.csv"), "train")
    chat = example_to_chat(examples[0], MESC)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "assistant", "user", "assistant"]
    assert "Open question" in chat["messages"][0]["content"]  # the label sets are in the instruction
    target = json.loads(chat["messages"][-1]["content"])
    assert target == {
        "user_emotion": "sadness",
        "strategy": "Restatement",
        "system_emotion": "neutral",
        "response": "You feel low.",
    }
    # Consecutive therapist turns: real order, the earlier utterance of the run before the target.
    third = example_to_chat(examples[2], MESC, target="tagged")
    assert [m["role"] for m in third["messages"]][-3:] == ["user", "assistant", "assistant"]
    assert third["messages"][-2]["content"] == "What happens in the morning?"
    assert third["messages"][-1]["content"].splitlines() == [
        "User emotion: depression",
        "Strategy: Interpretation",
        "System emotion: sadness",
        "Response: Maybe the mornings remind you of him.",
    ]
    # Consecutive user messages are merged into one.
    assert "Nothing matters anymore.\nI can't get up in the morning." in third["messages"][-3]["content"]
    out = tmp_path / "sft.jsonl"
    assert export_chat(examples, out, MESC) == 3
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [e.id for e in examples]


def test_cli_commands_end_to_end(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from mesa.eval import cli, embeddings

    fake = HashEmbedder()
    monkeypatch.setattr(embeddings, "default_embedder", lambda model=None, cache_dir=None: fake)
    # A custom corpus folder with train.jsonl / val.jsonl in the dialogue-JSON layout.
    patterns = [
        ("I am so angry at him", "anger", "Why?", "Open question"),
        ("I feel hopeless", "depression", "You feel hopeless.", "Restatement"),
    ]
    for split, n in (("train", 10), ("val", 4)):
        records = []
        for d in range(n):
            dialog = []
            for t in range(3):
                text, emotion, reply, strategy = patterns[(d + t) % 2]
                dialog += [
                    {"text": text, "speaker": "user", "emotion": emotion},
                    {"text": reply, "speaker": "sys", "strategy": strategy, "emotion": "neutral"},
                ]
            records.append({"dialog": dialog})
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in records))

    app = typer.Typer()
    app.command("eval")(cli.eval_command)
    app.command("train")(cli.train_command)
    app.command("export")(cli.export_command)
    runner = CliRunner()
    model = tmp_path / "clf.npz"
    result = runner.invoke(
        app, ["train", "--corpus", "custom", "--data", str(tmp_path), "--out", str(model), "--eval-split", "val"]
    )
    assert result.exit_code == 0, result.output
    assert model.exists() and "| classifier (predicted history) |" in result.output
    out = tmp_path / "report"
    args = [
        "eval",
        "--corpus",
        "custom",
        "--data",
        str(tmp_path),
        "--split",
        "val",
        "--rows",
        "majority,classifier",
        "--classifier",
        str(model),
        "--out",
        str(out),
        "--no-progress",
        "--no-plots",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| majority |" in result.output and "| classifier |" in result.output
    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["majority", "classifier"]
    assert report["rows"][1]["strategy"]["accuracy"] == 1.0
    assert report["rows"][1]["n"] == 12
    # Resumed: the cached predictions are reused, nothing is recomputed.
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert json.loads((out / "report.json").read_text())["rows"][1]["computed"] == 12
    result = runner.invoke(
        app,
        [
            "export",
            "--corpus",
            "custom",
            "--data",
            str(tmp_path),
            "--split",
            "train",
            "--out",
            str(tmp_path / "sft.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["examples"] == 30


@pytest.mark.integration
def test_real_minilm_classifier_smoke(tmp_path):
    """The packaged MiniLM embedder end to end on a tiny corpus."""
    from mesa.eval import Embedder

    embedder = Embedder(cache_dir=tmp_path / "emb")
    clf = SupervisedClassifier.train(
        synthetic_examples(6), MESC, embedder=embedder, c_grid=(1.0,), weight_powers=(0.0,)
    )
    assert clf.predict("user_emotion", "I am furious with him", []) == "anger"
    vectors = embedder.encode(["hello", "hello"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cached = Embedder(cache_dir=tmp_path / "emb")
    assert np.allclose(cached.encode(["hello"]), vectors[:1])  # from disk, no model load
    assert cached._model is None
