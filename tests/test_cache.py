"""Caches without pickle: values round-trip as JSON, planted entries never run code, files are private."""

from __future__ import annotations

import base64
import json
import os
import pickle
import sqlite3
import stat
import sys
import wave
from pathlib import Path

import diskcache
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _media as M

from mesa.cache import DiskCache, PerceptionCache
from mesa.graphs.context import Demonstration
from mesa.state import Prediction, Turn
from mesa.testing import ScriptedModel
from mesa.tools import Perception


class Planted:
    """Unpickling this creates the marker file: proof that a cache entry ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _msgpack_that_runs_code(marker: Path) -> bytes:
    """A LangGraph msgpack payload whose default reader would call ``os.mkdir(marker)``."""
    import ormsgpack
    from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_SINGLE_ARG

    return ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, ormsgpack.packb(("os", "mkdir", str(marker)))))


def _rows(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / "cache.db") as db:
        return db.execute("SELECT rowid, key FROM Cache").fetchall()


def _plant_everywhere(folder: Path, payload: bytes | str, mode: int) -> int:
    """Overwrite every stored value in a diskcache folder with ``payload`` stored in ``mode``."""
    with sqlite3.connect(folder / "cache.db") as db:
        count = db.execute("UPDATE Cache SET mode = ?, value = ?, filename = NULL", (mode, payload)).rowcount
    return count


# --------------------------------------------------------------------------- round trips


def test_perception_values_round_trip_as_json(tmp_path):
    cache = PerceptionCache(tmp_path / "p")
    value = {"cue": "transcript", "data": {"text": "hello", "segments": [1.5, None, True]}, "big": "x" * 70_000}
    cache.set("k", value)
    assert cache.get("k") == value
    assert cache.get("missing") is None
    assert len(cache) == 1
    cache.close()


def test_graph_values_round_trip_and_come_back_as_models(tmp_path):
    cache = DiskCache(tmp_path / "g")
    prediction = Prediction(label="sadness", confidence=0.8)
    cache.set({(("step",), "a"): ({"user_emotion": prediction, "n": [1, 2]}, None)})
    got = cache.get([(("step",), "a"), (("step",), "b")])
    assert got == {(("step",), "a"): {"user_emotion": prediction, "n": [1, 2]}}
    assert isinstance(got[(("step",), "a")]["user_emotion"], Prediction)
    cache.clear([("step",)])
    assert cache.get([(("step",), "a")]) == {}
    cache.close()


# --------------------------------------------------------------------------- planted entries


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x10\x00\xf0\xff" * 8000)
    return path


def test_a_planted_pickle_in_the_perception_cache_does_not_run(tmp_path):
    folder = tmp_path / "perception"
    marker = tmp_path / "pwned"
    audio = _wav(tmp_path / "a.wav")
    speech = M.counting_speech("fresh")
    perception = Perception(speech=speech, cache=PerceptionCache(folder))
    turn = Turn.from_inputs(audio=audio)
    key = perception._cache_key("speech", speech, turn.audio.sha256, None)
    # an attacker who can write the folder stores a pickle under the very key the next turn looks up
    with diskcache.Cache(str(folder)) as planted:  # diskcache's default Disk pickles
        planted.set(key, Planted(marker))
        planted.set("big-" + key, [Planted(marker)] * 1 + ["x" * 70_000])  # stored in a file, pickle mode
    result = perception.perceive(turn)["transcript"]
    assert not marker.exists()
    assert result.ok and not result.cached and result.data["text"] == "fresh"  # a miss: the backend ran
    assert speech.calls == 1
    assert perception.perceive(turn)["transcript"].cached  # the good value replaced the planted one
    assert not marker.exists()


def test_planted_entries_in_the_graph_cache_do_not_run_on_a_normal_turn(make_agent, tmp_path):
    folder = tmp_path / "graph-cache"
    marker = tmp_path / "pwned"
    script = ScriptedModel(reply="still here")
    first = make_agent(model=script, cache=folder)
    first.respond("same words")
    first.close()
    calls = len(script.calls_for("UserEmotion"))
    assert _rows(folder)
    # 1. raw pickles in diskcache's pickle mode, in place of every cached step
    assert _plant_everywhere(folder, pickle.dumps(Planted(marker)), diskcache.core.MODE_PICKLE)
    reply = make_agent(model=script, cache=folder).respond("same words")
    assert not marker.exists()
    assert reply.text.endswith("still here")
    assert len(script.calls_for("UserEmotion")) == calls + 1  # a miss, answered again
    # 2. mesa's own JSON format, claiming a "pickle" value
    entry = json.dumps({"type": "pickle", "data": base64.b64encode(pickle.dumps(Planted(marker))).decode()})
    _plant_everywhere(folder, entry, diskcache.core.MODE_RAW)
    assert make_agent(model=script, cache=folder).respond("same words").text.endswith("still here")
    assert not marker.exists()


def test_a_planted_msgpack_constructor_does_not_run(tmp_path):
    marker = tmp_path / "pwned-dir"
    cache = DiskCache(tmp_path / "g")
    cache.set({(("step",), "a"): ({"ok": 1}, None)})
    payload = _msgpack_that_runs_code(marker)
    cache.serde.loads_typed(("msgpack", payload))  # the serializer itself refuses to call os.mkdir
    assert not marker.exists()
    _plant_everywhere(tmp_path / "g", json.dumps({"type": "msgpack", "data": base64.b64encode(payload).decode()}), 1)
    cache.get([(("step",), "a")])
    assert not marker.exists()
    cache.close()


# --------------------------------------------------------------------------- file modes


@pytest.fixture
def open_umask():
    previous = os.umask(0o022)  # the usual default, under which files come out 0644
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("make", [PerceptionCache, DiskCache])
def test_cache_files_are_private_whatever_the_umask(tmp_path, open_umask, make):
    folder = tmp_path / "new" / "cache"
    cache = make(folder)
    if isinstance(cache, PerceptionCache):
        cache.set("big", {"text": "x" * 70_000})  # large values go to their own file
    else:
        cache.set({(("step",), "big"): ({"text": "x" * 70_000}, None)})
    assert _mode(tmp_path / "new") == 0o700 and _mode(folder) == 0o700
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert folder / "cache.db" in files and any(p.suffix == ".val" for p in files)
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert {_mode(p) for p in folder.rglob("*") if p.is_dir()} <= {0o700}
    cache.close()


def test_a_planted_json_value_that_is_not_a_result_is_a_miss(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    speech = M.counting_speech("fresh")
    cache = PerceptionCache(tmp_path / "p")
    perception = Perception(speech=speech, cache=cache)
    turn = Turn.from_inputs(audio=audio)
    cache.set(perception._cache_key("speech", speech, turn.audio.sha256, None), {"cue": 42, "junk": True})
    result = perception.perceive(turn)["transcript"]
    assert result.ok and not result.cached and speech.calls == 1


def test_a_hash_carried_by_a_local_reference_cannot_fetch_another_files_result(tmp_path):
    from mesa.state import MediaRef

    theirs = _wav(tmp_path / "theirs.wav")
    mine = tmp_path / "mine.wav"
    with wave.open(str(mine), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x20\x00\xe0\xff" * 8000)
    speech = M.counting_speech("fresh")
    perception = Perception(speech=speech, cache=PerceptionCache(tmp_path / "p"))
    their_turn = Turn.from_inputs(audio=theirs)
    assert not perception.perceive(their_turn)["transcript"].cached
    forged = Turn(audio=MediaRef(uri=str(mine), sha256=their_turn.audio.sha256))
    assert not perception.perceive(forged)["transcript"].cached  # hashed from the file itself: a miss
    assert speech.calls == 2


# -- the label cache's key: everything that can change an answer ----------------------------------


class _WeightedClassifier:
    """A LabelClassifier whose answer depends on its weights (as a trained one's does)."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights

    def supports(self, which: str) -> bool:
        return which == "user_emotion"

    def predict_distribution(self, which: str, text: str, history: list) -> dict[str, float]:
        return {"sadness": self.weights[0], "neutral": self.weights[1]}


class _Demonstrations:
    def __init__(self, context: str) -> None:
        self.examples = [Demonstration(context=context, user_emotion="sadness", strategy="Restatement")]

    def retrieve(self, text: str, history: list, k: int) -> list[Demonstration]:
        return self.examples[:k]


def test_the_label_cache_misses_when_a_setting_that_shapes_answers_changes(make_agent, tmp_path):
    folder = tmp_path / "graph-cache"
    script = ScriptedModel()

    def asked(model=None, weights=(0.7, 0.3), demonstrations="I lost my keys", **settings) -> bool:
        """Run one turn with these settings on the shared cache folder: was the emotion step asked again?"""
        before = len(script.calls_for("UserEmotion"))
        agent = make_agent(
            model=model or script,
            cache=folder,
            classifier=_WeightedClassifier(list(weights)),
            demonstrations=_Demonstrations(demonstrations),
            **settings,
        )
        agent.respond("the same words")
        return len(script.calls_for("UserEmotion")) > before

    assert asked()  # first time: computed and stored
    assert not asked()  # the same settings, in new objects: answered from the cache
    assert asked(weights=(0.2, 0.8))  # another classifier
    assert asked(demonstrations="My dog died")  # another demonstration source
    assert asked(model=script.as_llm(temperature=0.9))  # another sampling setting
    assert asked(model=script.as_llm(seed=7))
    assert not asked(model=script.as_llm(api_key="sk-rotated"))  # a credential is not part of an answer


def test_a_fingerprint_reads_content_not_identity():
    from mesa.fingerprint import fingerprint

    assert fingerprint(_WeightedClassifier([0.5, 0.5])) == fingerprint(_WeightedClassifier([0.5, 0.5]))
    assert fingerprint(_WeightedClassifier([0.5, 0.5])) != fingerprint(_WeightedClassifier([0.5, 0.6]))
    assert fingerprint({"api_key": "a", "max_tokens": 5}) == fingerprint({"api_key": "b", "max_tokens": 5})
    assert fingerprint({"max_tokens": 5}) != fingerprint({"max_tokens": 6})
    np = pytest.importorskip("numpy")
    assert fingerprint(np.zeros(3)) == fingerprint(np.zeros(3)) != fingerprint(np.ones(3))


def test_none_means_no_cache_for_the_agent_and_for_perception(make_agent, tmp_path):
    assert Perception(cache=None).cache is None and Perception(cache=False).cache is None
    assert isinstance(Perception().cache, PerceptionCache)  # the default: the on-disk cache
    folder = tmp_path / "perception"
    assert isinstance(Perception(cache=folder).cache, PerceptionCache) and folder.is_dir()
    assert make_agent(model=ScriptedModel(), cache=None)._cache is None
