"""The evaluation runner: any predictor over examples, concurrent, resumable, with progress.

A *predictor* turns an :class:`~mesa.eval.datasets.Example` into predicted
labels and a reply. Adapters are provided for a ``SupportAgent`` (or anything
with ``async arespond(text, history=..., thread_id=...)``), a compiled LangGraph
graph with its runtime context, and any ``LabelClassifier`` (the majority
baseline, the supervised model). Results are appended to a JSONL file per run
configuration, keyed by example id, so an interrupted run resumes where it
stopped and a finished example is never recomputed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mesa.eval.datasets import Example
from mesa.eval.protocol import by_dialogue as group_by_dialogue
from mesa.eval.protocol import check_protocol, with_predicted_history

__all__ = [
    "AgentPredictor",
    "ClassifierPredictor",
    "GraphPredictor",
    "Predictor",
    "RunResult",
    "arun_predictor",
    "run_predictor",
    "select_examples",
]

TASKS = ("user_emotion", "strategy", "system_emotion")


@runtime_checkable
class Predictor(Protocol):
    """What the runner evaluates. ``config`` identifies a run for the result cache."""

    name: str

    def config(self) -> dict[str, Any]: ...

    async def apredict(self, example: Example) -> dict[str, Any]: ...


def _label(prediction: Any) -> str | None:
    if prediction is None:
        return None
    if isinstance(prediction, str):
        return prediction
    if isinstance(prediction, dict):
        return prediction.get("label")
    return getattr(prediction, "label", None)


def _reply_record(reply: Any) -> dict[str, Any]:
    get = reply.get if isinstance(reply, dict) else lambda k, d=None: getattr(reply, k, d)
    safety = get("safety")
    return {
        "user_emotion": _label(get("user_emotion")),
        "strategy": _label(get("strategy")),
        "system_emotion": _label(get("system_emotion")),
        "reply": get("text") if get("text") is not None else get("response"),
        "crisis": bool(getattr(safety, "crisis", False)) if safety is not None else False,
    }


class AgentPredictor:
    """Evaluates a ``SupportAgent`` (or any object with an ``arespond`` of the same shape).

    Each example is a fresh thread seeded with the example's history (with its
    gold labels, the same information every row gets). A fresh thread makes
    the safety policy open the reply with its AI disclosure; with
    ``strip_disclosure`` (default) that fixed sentence is removed before the
    reply is scored, so BLEU/ROUGE/Distinct measure the model's own words.

    ``reads_history_labels=False`` says the agent never looks at the labels the
    history carries (mesa's prompts show only the words; a classifier or a custom
    hook might read them): its inputs are then the same under both history
    protocols, and the runner computes each example once for both.
    """

    def __init__(
        self,
        agent: Any,
        *,
        name: str = "agent",
        config: dict[str, Any] | None = None,
        strip_disclosure: bool = True,
        reads_history_labels: bool = True,
    ) -> None:
        if not hasattr(agent, "arespond"):
            raise TypeError("AgentPredictor needs an object with an async arespond(text, history=..., thread_id=...)")
        self.agent = agent
        self.name = name
        self.reads_history_labels = reads_history_labels
        self._config = config or {}
        self._prefixes: list[str] = []
        safety = getattr(agent, "safety", None)
        if strip_disclosure and safety is not None and hasattr(safety, "disclosure"):
            try:
                text = safety.disclosure(0, None)
            except Exception:  # noqa: BLE001 - an older or custom policy
                text = None
            if text:
                self._prefixes.append(text.strip())

    def config(self) -> dict[str, Any]:
        agent = self.agent
        described = {
            "model": str(
                getattr(getattr(agent, "llm", None), "model", None)
                or getattr(agent, "model", None)
                or type(agent).__name__
            ),
            "mode": getattr(agent, "mode", None),
            "taxonomy": getattr(getattr(agent, "taxonomy", None), "name", None),
            "history_window": getattr(agent, "history_window", None),
            "demonstrations": type(getattr(agent, "demonstrations", None)).__name__,
            "n_demonstrations": getattr(agent, "n_demonstrations", None),
            "classifier": type(getattr(agent, "classifier", None)).__name__,
            "classifier_use": getattr(agent, "classifier_use", None),
        }
        return {**described, **self._config}

    async def apredict(self, example: Example) -> dict[str, Any]:
        reply = await self.agent.arespond(
            example.text, history=list(example.history), thread_id=f"eval-{uuid.uuid4().hex}"
        )
        record = _reply_record(reply)
        text = record.get("reply") or ""
        for prefix in self._prefixes:
            if text.startswith(prefix):
                record["reply"] = text[len(prefix) :].strip()
                record["disclosure_stripped"] = True
        return record


class GraphPredictor:
    """Evaluates a compiled SMES graph with its runtime context (``mesa.graphs.context.SupportContext``)."""

    def __init__(self, graph: Any, context: Any, *, name: str = "graph", config: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.context = context
        self.name = name
        self._config = config or {}

    def config(self) -> dict[str, Any]:
        llm = getattr(self.context, "llm", None)
        return {"model": str(getattr(llm, "model", llm)), "graph": type(self.graph).__name__, **self._config}

    async def apredict(self, example: Example) -> dict[str, Any]:
        from mesa.state import Turn

        state = {"turn": Turn(text=example.text), "history": list(example.history)}
        config = {"configurable": {"thread_id": f"eval-{uuid.uuid4().hex}"}}
        values = await self.graph.ainvoke(state, config, context=self.context)
        return _reply_record(values)


class ClassifierPredictor:
    """Evaluates a ``LabelClassifier`` as the steps themselves (no reply).

    A classifier with ``predict_all`` (the supervised model) is run in batches
    in :meth:`prepare`, which embeds every text once; others are asked per example.
    """

    def __init__(self, classifier: Any, *, name: str = "classifier", config: dict[str, Any] | None = None) -> None:
        self.classifier = classifier
        self.name = name
        self._config = config or {}
        self._ready: dict[str, dict[str, Any]] = {}

    def config(self) -> dict[str, Any]:
        return {"classifier": type(self.classifier).__name__, **self._config}

    def prepare(self, examples: Sequence[Example]) -> None:
        if not hasattr(self.classifier, "predict_all") or not examples:
            return
        results = self.classifier.predict_all([(e.text, e.history) for e in examples])
        for i, example in enumerate(examples):
            record: dict[str, Any] = {w: None for w in TASKS}
            for which, rows in results.items():
                record[which] = max(rows[i], key=rows[i].__getitem__)
            record["reply"] = None
            self._ready[example.id] = record

    async def apredict(self, example: Example) -> dict[str, Any]:
        if example.id in self._ready:
            return dict(self._ready.pop(example.id))
        record: dict[str, Any] = {"reply": None}
        for which in TASKS:
            if self.classifier.supports(which):
                dist = self.classifier.predict_distribution(which, example.text, list(example.history))
                record[which] = max(dist, key=dist.__getitem__)
            else:
                record[which] = None
        return record


@dataclass
class RunResult:
    """Predictions of one predictor over some examples, with timing."""

    name: str
    config: dict[str, Any]
    records: dict[str, dict[str, Any]]
    wall_seconds: float = 0.0
    computed: int = 0
    reused: int = 0
    errors: int = 0
    cache_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float | None:
        return self.computed / self.wall_seconds if self.computed and self.wall_seconds > 0 else None

    def prediction(self, example_id: str) -> dict[str, Any] | None:
        return self.records.get(example_id)


def config_key(name: str, config: dict[str, Any]) -> str:
    """A short stable hash of a run configuration (the cache file name)."""
    blob = json.dumps({"name": name, **config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interruption
                continue
            if row.get("error") is None:
                done[row["id"]] = row
    return done


def select_examples(
    examples: Sequence[Example], limit: int | None = None, seed: int = 0, *, by_dialogue: bool = False
) -> list[Example]:
    """``limit`` examples drawn at random with ``seed`` (in corpus order), or all of them.

    With ``by_dialogue``, whole dialogues are drawn instead (the last one cut to
    its first turns), so every example's earlier turns are in the subset too:
    what the live protocol needs to give them the predictor's own labels.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    import random

    if not by_dialogue:
        chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
        return [examples[i] for i in chosen]
    groups = group_by_dialogue(examples)
    random.Random(seed).shuffle(groups)
    picked: set[str] = set()
    for group in groups:
        for example in group[: limit - len(picked)]:
            picked.add(example.id)
        if len(picked) >= limit:
            break
    return [e for e in examples if e.id in picked]


async def arun_predictor(
    predictor: Any,
    examples: Sequence[Example],
    *,
    cache_dir: str | Path | None = None,
    concurrency: int = 4,
    progress: bool = True,
    resume: bool = True,
    timeout: float | None = None,
    history: str = "predicted",
) -> RunResult:
    """Run ``predictor`` over ``examples``; results go to ``cache_dir/<name>-<config>.jsonl``.

    ``history`` is the protocol (:mod:`mesa.eval.protocol`): ``"predicted"``
    (default, live: earlier user turns carry the predictor's own labels, so each
    dialogue runs in order) or ``"gold"``. The protocol is part of the cache key.
    With ``resume`` (default) examples already in that file are not recomputed.
    At most ``concurrency`` examples run at once. A failing example is recorded
    with its error (and retried by the next run); it never stops the run.
    """
    protocol = check_protocol(history)
    if not isinstance(predictor, Predictor) and hasattr(predictor, "arespond"):
        predictor = AgentPredictor(predictor)
    config = {**predictor.config(), "history": protocol}
    cache_config = _cache_config(predictor, config)
    if cache_config is not config:  # said in the report, so a reader knows the two rows are one run
        config["history_labels"] = "not read: one run serves both protocols"
    key = config_key(predictor.name, cache_config)
    path: Path | None = None
    done: dict[str, dict[str, Any]] = {}
    if cache_dir is not None:
        path = Path(cache_dir) / f"{_safe(predictor.name)}-{key}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            done = _read_cache(path)
        elif path.exists():
            path.unlink()
    wanted = {e.id for e in examples}
    records = {i: r for i, r in done.items() if i in wanted}
    todo = [e for e in examples if e.id not in records]
    result = RunResult(predictor.name, config, records, reused=len(records), cache_file=str(path) if path else None)

    started = time.perf_counter()
    if todo and hasattr(predictor, "prepare") and protocol == "gold":
        await asyncio.to_thread(predictor.prepare, todo)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=predictor.name, unit="ex")
    semaphore = asyncio.Semaphore(max(1, concurrency))
    handle = path.open("a", encoding="utf-8") if path is not None else None

    async def one(example: Example) -> None:
        async with semaphore:
            t0 = time.perf_counter()
            try:
                coro = predictor.apredict(example)
                record = await (asyncio.wait_for(coro, timeout) if timeout else coro)
                error = None
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                record = {w: None for w in TASKS} | {"reply": None}
                error = f"{type(exc).__name__}: {exc}"
                if result.errors < 3:
                    result.extra.setdefault("first_errors", []).append(traceback.format_exc(limit=3))
                result.errors += 1
            row = {"id": example.id, **record, "seconds": round(time.perf_counter() - t0, 4), "error": error}
            records[example.id] = row
            if handle is not None:
                handle.write(json.dumps(row, default=str) + "\n")
                handle.flush()
            if bar is not None:
                bar.update(1)

    try:
        if protocol == "gold":
            await asyncio.gather(*(one(e) for e in todo))
        else:
            await _run_predicted(predictor, examples, records, one)
    finally:
        if bar is not None:
            bar.close()
        if handle is not None:
            handle.close()
    result.wall_seconds = time.perf_counter() - started
    result.computed = len(todo)
    if path is not None:  # running totals over resumed runs, for the report
        meta_path = path.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() and resume else {}
        meta = {
            "wall_seconds": meta.get("wall_seconds", 0.0) + result.wall_seconds * bool(todo),
            "computed": meta.get("computed", 0) + result.computed,
            "config": cache_config,
        }
        meta_path.write_text(json.dumps(meta, default=str, indent=1))
        result.extra["total_wall_seconds"] = meta["wall_seconds"]
        result.extra["total_computed"] = meta["computed"]
    return result


def _cache_config(predictor: Any, config: dict[str, Any]) -> dict[str, Any]:
    """What the result cache is keyed on: the run's config, with one protocol for label-blind predictors.

    A predictor that never reads the history's labels (``reads_history_labels = False``) sees the same
    inputs under both protocols, so its gold run reuses the live run's results instead of recomputing
    them: with the embedded model, ``--history both`` would otherwise take twice as long for nothing.
    Predictors that do not say are assumed to read them.
    """
    if getattr(predictor, "reads_history_labels", True):
        return config
    return {**config, "history": "predicted"}


def _user_labels(group: Sequence[Example], records: dict[str, dict[str, Any]]) -> dict[int, str | None]:
    """Dialogue index of each predicted user utterance -> the user emotion the predictor gave it."""
    return {
        e.user_index: records[e.id].get("user_emotion") for e in group if e.user_index is not None and e.id in records
    }


async def _run_predicted(
    predictor: Any, examples: Sequence[Example], records: dict[str, dict[str, Any]], one: Any
) -> None:
    """The live protocol: each dialogue in order, its history rewritten with the labels predicted so far.

    Predictors that batch (``prepare``) run in waves: the k-th example of every
    dialogue at once, so a batch still spans many dialogues.
    """
    groups = group_by_dialogue(examples)

    def live(group: list[Example], example: Example) -> Example:
        return with_predicted_history(example, _user_labels(group, records))

    if hasattr(predictor, "prepare"):
        for k in range(max((len(g) for g in groups), default=0)):
            wave = [live(g, g[k]) for g in groups if len(g) > k and g[k].id not in records]
            if wave:
                await asyncio.to_thread(predictor.prepare, wave)
                await asyncio.gather(*(one(e) for e in wave))
        return

    async def dialogue(group: list[Example]) -> None:
        for example in group:
            if example.id not in records:
                await one(live(group, example))

    await asyncio.gather(*(dialogue(g) for g in groups))


def run_predictor(predictor: Any, examples: Sequence[Example], **kwargs: Any) -> RunResult:
    """Sync wrapper of :func:`arun_predictor`."""
    return asyncio.run(arun_predictor(predictor, examples, **kwargs))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
