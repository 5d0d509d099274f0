"""Command functions for ``mesa eval``, ``mesa train`` and ``mesa export`` (registered by ``mesa.cli``).

Options are declared in the ``Annotated`` style of ``mesa.cli``. None of them is the same option as one there
(``--model`` here has a fixed default and no ``-m``; ``--taxonomy`` defaults to the corpus's own), so the
aliases shared by these three commands live here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["eval_command", "export_command", "train_command"]

ROWS = ("majority", "classifier", "llm", "llm+demos", "llm+prior")
_PROTOCOL_NAMES = {"predicted": "live protocol (predicted history)", "gold": "gold-history protocol"}
LLM_ROWS = ("llm", "llm+demos", "llm+prior")

CorpusOpt = Annotated[str, typer.Option("--corpus", help="mesc | esconv | custom")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="corpus file or folder (default: download)")]
CorpusTaxonomyOpt = Annotated[
    str | None, typer.Option("--taxonomy", help="taxonomy name or JSON file (default: the corpus's own)")
]


def _default_split(corpus: str, split: str | None, train: bool = False) -> str:
    if split:
        return split
    if train:
        return "train"
    return "valid" if corpus.lower() == "esconv" else "val"


def _taxonomy(corpus: str, taxonomy: str | None, examples: list[Any]):
    from mesa.eval.datasets import taxonomy_from_examples
    from mesa.taxonomy import get_taxonomy

    if taxonomy:
        return get_taxonomy(taxonomy)
    if corpus.lower() in ("mesc", "esconv"):
        return get_taxonomy(corpus.lower())
    return taxonomy_from_examples(examples)


def _load(corpus: str, data: Path | None, split: str):
    from mesa.eval.datasets import load_corpus

    return load_corpus(corpus, data, split)


def _classifier(
    corpus: str,
    data: Path | None,
    train_split: str,
    taxonomy: Any,
    path: Path | None,
    out: Path,
    train: list[Any] | None = None,
):
    """Load ``path``, or train on ``train_split`` (kept as ``out/classifier-<corpus>-<split>.npz`` for reruns)."""
    from mesa.eval.classifier import SupervisedClassifier

    if path is not None:
        return SupervisedClassifier.load(path)
    cached = out / f"classifier-{corpus}-{train_split}.npz"
    if cached.exists():
        return SupervisedClassifier.load(cached)
    train = train or _load(corpus, data, train_split)
    typer.echo(f"training the small model on {corpus} {train_split} ({len(train)} examples) ...")
    clf = SupervisedClassifier.train(train, taxonomy)
    clf.save(cached)
    typer.echo(f"saved {cached}")
    return clf


@dataclass
class _EvalSettings:
    """The options of one ``mesa eval`` run, checked, with the split filled in."""

    corpus: str
    data: Path | None
    split: str
    rows: list[str]
    protocols: list[str]
    classifier: Path | None
    model: str
    mode: str
    limit: int | None
    llm_limit: int | None
    seed: int
    concurrency: int
    out: Path
    train_split: str
    demos: int
    taxonomy: str | None
    plots: bool
    resume: bool
    progress: bool
    safety: str
    turn_timeout: float | None = None  # None: SupportAgent's own default


@dataclass
class _EvalData:
    """What the rows run on: the examples, the LLM rows' subset, the train split and the taxonomy."""

    examples: list[Any]
    subset: list[Any]
    train: list[Any]
    taxonomy: Any
    trained: Any = None  # the supervised classifier, loaded or trained when a row first needs it


def _parse_rows(rows: str) -> list[str]:
    wanted = [r.strip() for r in rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        raise typer.BadParameter(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    return wanted


def _parse_history(history: str) -> list[str]:
    """The history protocols to run: ``both`` means the live one first, then gold."""
    from mesa.errors import MesaError
    from mesa.eval.protocol import check_protocol

    try:
        return ["predicted", "gold"] if history == "both" else [check_protocol(history)]
    except MesaError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _needs_train_split(settings: _EvalSettings) -> bool:
    """The majority row and the demonstrations need the train split; so does a classifier trained here."""
    wanted = settings.rows
    return any(r in wanted for r in ("majority", "llm+demos")) or (
        settings.classifier is None and any(r in wanted for r in ("classifier", "llm+prior"))
    )


def _load_eval_data(settings: _EvalSettings) -> _EvalData:
    from mesa.eval.runner import select_examples

    s = settings
    examples = _load(s.corpus, s.data, s.split)
    taxonomy = _taxonomy(s.corpus, s.taxonomy, examples)
    # Whole dialogues (the last one cut short): every example's earlier turns are evaluated too,
    # so the live protocol can give them the predictor's own labels.
    examples = select_examples(examples, s.limit, s.seed, by_dialogue=True)
    subset = select_examples(examples, s.llm_limit, s.seed, by_dialogue=True) if s.llm_limit else examples
    typer.echo(
        f"{s.corpus} {s.split}: {len(examples)} examples"
        + (f"; LLM rows on {len(subset)} (seed {s.seed})" if s.llm_limit else "")
    )
    train = _load(s.corpus, s.data, s.train_split) if _needs_train_split(s) else []
    return _EvalData(examples=examples, subset=subset, train=train, taxonomy=taxonomy)


def _supervised(settings: _EvalSettings, data: _EvalData):
    """The small supervised model, made once per run (the classifier and llm+prior rows share it)."""
    s = settings
    if data.trained is None:
        data.trained = _classifier(s.corpus, s.data, s.train_split, data.taxonomy, s.classifier, s.out, data.train)
    return data.trained


def _scope(settings: _EvalSettings, data: _EvalData) -> dict[str, Any]:
    """What every row's result cache is keyed on, besides the row's own settings."""
    return {"corpus": settings.corpus, "split": settings.split, "taxonomy": data.taxonomy.name}


def _row_predictor(row: str, settings: _EvalSettings, data: _EvalData):
    from mesa.eval.classifier import MajorityClassifier
    from mesa.eval.runner import ClassifierPredictor

    s = settings
    if row == "majority":
        majority = MajorityClassifier.fit(data.train, data.taxonomy)
        return ClassifierPredictor(majority, name="majority", config={**_scope(s, data), "train": s.train_split})
    if row == "classifier":
        config = {**_scope(s, data), "classifier": str(s.classifier or s.train_split)}
        return ClassifierPredictor(_supervised(s, data), name="classifier", config=config)
    return _agent_predictor(row, s, data)


def _agent_predictor(row: str, settings: _EvalSettings, data: _EvalData):
    """An LLM row: a SupportAgent with the row's lever (demonstrations or a classifier prior)."""
    from mesa import SupportAgent
    from mesa.eval.runner import AgentPredictor
    from mesa.safety import SafetyPolicy

    s = settings
    kwargs: dict[str, Any] = {}
    if row == "llm+demos":
        from mesa.eval.retrieval import EmbeddingRetriever

        typer.echo(f"indexing {len(data.train)} {s.train_split} turns for retrieval ...")
        kwargs["demonstrations"] = EmbeddingRetriever.from_examples(data.train)
        kwargs["n_demonstrations"] = s.demos
    if row == "llm+prior":
        kwargs["classifier"] = _supervised(s, data)
        kwargs["classifier_use"] = "prior"
    else:
        kwargs["classifier"] = None  # not the trained model `classifier="auto"` would find
    policy = SafetyPolicy(llm_assessment=False) if s.safety == "rules" else SafetyPolicy.default()
    if s.turn_timeout is not None:
        kwargs["turn_timeout"] = s.turn_timeout
    agent = SupportAgent(model=s.model, taxonomy=data.taxonomy, mode=s.mode, safety=policy, **kwargs)
    config = {
        **_scope(s, data),
        "model": s.model,
        "mode": s.mode,
        "safety": s.safety,
        "demos": s.demos if row == "llm+demos" else 0,
        "classifier": str(s.classifier or s.train_split) if row == "llm+prior" else None,
    }
    # mesa's prompts and the retriever show the history's words, never its labels: without the small model
    # (which may read them) a row sees the same inputs under both protocols and runs once for both.
    return AgentPredictor(agent, name=row, config=config, reads_history_labels=row == "llm+prior")


async def _arun_row(predictor: Any, row: str, protocol: str, settings: _EvalSettings, data: _EvalData):
    """One row under one history protocol; failed examples are reported, not fatal."""
    from mesa.eval.runner import arun_predictor

    s = settings
    result = await arun_predictor(
        predictor,
        data.subset if row in LLM_ROWS else data.examples,
        cache_dir=s.out / "cache",
        concurrency=s.concurrency,
        progress=s.progress,
        resume=s.resume,
        history=protocol,
    )
    if result.errors:
        first = result.extra.get("first_errors", [""])[0]
        typer.echo(f"{row} ({protocol}): {result.errors} examples failed; first error:\n{first}", err=True)
    return result


async def _arun_rows(settings: _EvalSettings, data: _EvalData) -> dict[str, list[Any]]:
    """Every wanted row under every protocol, in order: results by protocol."""
    from mesa.eval.runner import AgentPredictor

    results: dict[str, list[Any]] = {p: [] for p in settings.protocols}
    for row in settings.rows:
        predictor = _row_predictor(row, settings, data)
        try:
            for protocol in settings.protocols:
                results[protocol].append(await _arun_row(predictor, row, protocol, settings, data))
        finally:
            if isinstance(predictor, AgentPredictor) and hasattr(predictor.agent, "close"):
                predictor.agent.close()
    return results


def _score_protocols(settings: _EvalSettings, data: _EvalData, results: dict[str, list[Any]]) -> dict[str, list]:
    """Scored table rows by protocol; an LLM row run on a subset says so in its name."""
    from mesa.eval.report import score_run

    scored_by = {p: [score_run(r, data.examples, data.taxonomy) for r in results[p]] for p in settings.protocols}
    for protocol, rows_of in scored_by.items():
        for row, result in zip(rows_of, results[protocol], strict=True):
            row["key"] = f"{result.name}-{protocol}"
            row["protocol"] = protocol
            if result.name in LLM_ROWS and settings.llm_limit:
                row["name"] = f"{result.name} ({settings.model}, {settings.mode}; n={len(data.subset)})"
    return scored_by


def _report_meta(settings: _EvalSettings, data: _EvalData, started: float) -> dict[str, Any]:
    s = settings
    return {
        "corpus": s.corpus,
        "split": s.split,
        "data": str(s.data) if s.data else "downloaded",
        "examples": len(data.examples),
        "llm_examples": len(data.subset),
        "seed": s.seed,
        "model": s.model if any(r in LLM_ROWS for r in s.rows) else None,
        "mode": s.mode,
        "concurrency": s.concurrency,
        "history": ", ".join(s.protocols),
        "safety (LLM rows)": s.safety,
        "total_wall_seconds": round(time.perf_counter() - started, 1),
    }


def _add_subset_rows(report: dict[str, Any], settings: _EvalSettings, data: _EvalData, results: list[Any]) -> None:
    """With --llm-limit, every row scored again on the LLM rows' subset, so all rows compare on the same turns."""
    from mesa.eval.report import score_run

    if not (settings.llm_limit and any(r.name in LLM_ROWS for r in results)):
        return
    report["subset_rows"] = [score_run(r, data.subset, data.taxonomy) for r in results]
    for row, result in zip(report["subset_rows"], results, strict=True):
        row["name"] = result.name
        row["wall_seconds"] = row["examples_per_second"] = None
    report["subset_title"] = (
        f"all rows on the same {len(data.subset)}-example subset (seed {settings.seed}), "
        f"{_PROTOCOL_NAMES[settings.protocols[0]]}"
    )


def _eval_report(settings: _EvalSettings, data: _EvalData, results: dict[str, list[Any]], started: float) -> dict:
    """The report: the first protocol's table as the headline, the others after it."""
    s = settings
    scored_by = _score_protocols(s, data, results)
    headline = s.protocols[0]
    report: dict[str, Any] = {
        "title": f"mesa evaluation: {s.corpus} {s.split}",
        "meta": _report_meta(s, data, started),
        "table_title": f"{s.corpus} {s.split}, {_PROTOCOL_NAMES[headline]}"
        + (f" (LLM rows on a seeded random subset of {len(data.subset)})" if s.llm_limit else ""),
        "rows": scored_by[headline],
        "tables": [
            {"title": f"{s.corpus} {s.split}, {_PROTOCOL_NAMES[p]}", "rows": scored_by[p]} for p in s.protocols[1:]
        ],
    }
    if len(s.protocols) > 1:
        report["protocol_rows"] = scored_by
        report["protocol_title"] = f"{s.corpus} {s.split}: both history protocols"
    _add_subset_rows(report, s, data, results[headline])
    return report


def _print_report(report: dict[str, Any], taxonomy: Any, written: dict[str, Any]) -> None:
    from mesa.eval.report import distribution_table, markdown_table, protocol_table

    typer.echo("")
    if "protocol_rows" in report:
        typer.echo(protocol_table(report["protocol_rows"], title=report["protocol_title"]))
        typer.echo("")
    typer.echo(markdown_table(report["rows"], title=report["table_title"]))
    for table in report["tables"]:
        typer.echo("")
        typer.echo(markdown_table(table["rows"], title=table["title"]))
    shares = distribution_table(report["rows"], "system_emotion", taxonomy, title="system emotion: label shares (%)")
    if shares:
        typer.echo("")
        typer.echo(shares)
    if report.get("subset_rows"):
        typer.echo("")
        typer.echo(markdown_table(report["subset_rows"], title=report["subset_title"]))
    typer.echo(f"\nreport: {written['markdown']}  (json: {written['json']})")


def eval_command(
    corpus: CorpusOpt = "mesc",
    data: Annotated[
        Path | None, typer.Option("--data", help="corpus file or folder (default: download the public corpus)")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="split to evaluate (default: val for MESC, valid for ESConv)")
    ] = None,
    rows: Annotated[str, typer.Option("--rows", help=f"comma list of: {', '.join(ROWS)}")] = "majority,classifier",
    classifier: Annotated[
        Path | None,
        typer.Option("--classifier", help="a model from `mesa train` (default: train one on the train split)"),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="LiteLLM model string for the LLM rows")] = "mesa-local/smollm2",
    mode: Annotated[str, typer.Option("--mode", help="graph mode for the LLM rows: stepwise | fused")] = "stepwise",
    limit: Annotated[
        int | None, typer.Option("--limit", help="evaluate every row on this many examples (seeded random subset)")
    ] = None,
    llm_limit: Annotated[
        int | None,
        typer.Option(
            "--llm-limit",
            help="LLM rows only on this many examples; the other rows run on all and are also scored on that subset",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the example subset")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="examples evaluated at once")] = 2,
    out: Annotated[
        Path, typer.Option("--out", help="output folder: report.json, report.md, plots, result cache")
    ] = Path("mesa-eval"),
    train_split: Annotated[
        str,
        typer.Option(
            "--train-split", help="split the majority class, the classifier and the demonstrations come from"
        ),
    ] = "train",
    demos: Annotated[int, typer.Option("--demos", help="demonstrations per prompt (llm+demos)")] = 4,
    taxonomy: CorpusTaxonomyOpt = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write PNG plots")] = True,
    resume: Annotated[
        bool, typer.Option("--resume/--fresh", help="reuse finished examples from the result cache")
    ] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show progress bars")] = True,
    safety: Annotated[
        str,
        typer.Option(
            "--safety",
            help="safety policy of the LLM rows: rules (rule layer only, no LLM judgement: faster) | full",
        ),
    ] = "rules",
    history: Annotated[
        str,
        typer.Option(
            "--history",
            help="what earlier user turns carry: predicted (live: the predictor's own labels) | gold | both "
            "(both protocols, printed side by side)",
        ),
    ] = "predicted",
    turn_timeout: Annotated[
        float | None,
        typer.Option(
            "--turn-timeout",
            min=1,
            help="seconds an LLM row's turn may take before it counts as failed (the agent's default: 120); "
            "raise it on a loaded CPU, where the embedded model's stepwise turn can take minutes",
        ),
    ] = None,
) -> None:
    """Evaluate baselines, the small supervised model and LLM rows on a labelled corpus; print one table."""
    import asyncio

    from mesa.eval.report import write_report

    settings = _EvalSettings(
        corpus=corpus, data=data, split=_default_split(corpus, split),
        rows=_parse_rows(rows), protocols=_parse_history(history), classifier=classifier,
        model=model, mode=mode, limit=limit, llm_limit=llm_limit, seed=seed,
        concurrency=concurrency, out=out, train_split=train_split, demos=demos, taxonomy=taxonomy,
        plots=plots, resume=resume, progress=progress, safety=safety, turn_timeout=turn_timeout,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    loaded = _load_eval_data(settings)
    results = asyncio.run(_arun_rows(settings, loaded))
    report = _eval_report(settings, loaded, results, started)
    written = write_report(report, out, taxonomy=loaded.taxonomy, plots=plots)
    _print_report(report, loaded.taxonomy, written)


# Chosen on held-out TRAIN dialogues (docs/evaluation.md): much stronger regularisation than the
# earlier 0.02 gains ESConv's strategy head ~5 points of accuracy and macro-F1 and MESC's ~10 points
# of weighted F1. A list: each head picks its own on 20 % of the train dialogues.
_DEFAULT_C = {"mesc": "0.0005,0.002,0.02", "esconv": "0.0001,0.02"}

#: ESConv's strategy head, chosen by grouped 4-fold CV on ESConv TRAIN dialogues
#: (bench/esconv_strategy_cv.py; docs/evaluation.md, "ESConv valid"): the strategy-sequence block
#: with weight 10, C 0.0001, class weights balanced^0.75, boosted trees beside it (weight 0.3 of the averaged
#: log probabilities, mesa.eval.boosting), decision offsets (macro-F1 + 0.25 x accuracy) from out-of-fold
#: predictions of the mixture.
ESCONV_STRATEGY: dict[str, Any] = {
    "strategy_sequence": 10.0,
    "strategy_c_grid": (0.0001,),
    "strategy_weight_powers": (0.75,),
    "strategy_offsets": True,
    "strategy_booster": 0.3,
    "strategy_accuracy_weight": 0.25,
}
_STRATEGY_MODELS = {"esconv": ESCONV_STRATEGY}


def _strategy_settings(strategy_model: str, corpus: str) -> dict[str, Any]:
    """The strategy head's training settings: ``auto`` is the corpus's measured choice (plain where none)."""
    if strategy_model == "plain":
        return {}
    if strategy_model == "sequence":
        return ESCONV_STRATEGY
    if strategy_model == "auto":
        return _STRATEGY_MODELS.get(corpus.lower(), {})
    raise typer.BadParameter("--strategy-model must be auto, sequence or plain")


def _torch_threads(threads: int) -> None:
    """Threads of the sentence encoder (PyTorch), for this process.

    On 2 cores shared with other jobs (load average ~13), embedding 300 MESC utterances took
    12-22 s wall with one thread and 42 s with two (3x the CPU time, spent waiting on each other).
    """
    try:
        import torch
    except ImportError:  # the embedder will say what to install
        return
    torch.set_num_threads(threads)


def _check_train_options(history: str, user_context: str) -> None:
    from mesa.errors import MesaError
    from mesa.eval.protocol import check_protocol

    try:
        check_protocol(history)
    except MesaError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if user_context not in ("filter", "distribution", "labels"):
        raise typer.BadParameter("--user-context must be filter, distribution or labels")


def _floats(comma_list: str) -> list[float]:
    return [float(value) for value in comma_list.split(",")]


def _print_training(clf: Any, target: Path, started: float, taxonomy_name: str, found_by_agent: bool) -> None:
    """Where the model went, whether SupportAgent finds it by itself, and what each head's tuning chose."""
    typer.echo(f"saved {target} ({target.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    if found_by_agent:
        typer.echo(
            f"SupportAgent(taxonomy={taxonomy_name!r}) now uses it (classifier='auto'; classifier=None to opt out)"
        )
    for which, info in clf.info["tasks"].items():
        if info.get("holdout_weighted_f1") is not None:
            typer.echo(
                f"  {which}: C={info['C']} weight_power={info['weight_power']} "
                f"holdout weighted F1={info['holdout_weighted_f1']:.3f}"
            )


def _print_held_out_scores(clf: Any, corpus: str, data: Path | None, split: str, taxonomy: Any) -> None:
    """The trained model scored on another split, under both history protocols."""
    from mesa.eval.report import markdown_table, score_run
    from mesa.eval.runner import ClassifierPredictor, run_predictor

    held = _load(corpus, data, split)
    rows = []
    for protocol in ("predicted", "gold"):
        result = run_predictor(ClassifierPredictor(clf), held, progress=False, history=protocol)
        rows.append(score_run(result, held, taxonomy) | {"name": f"classifier ({protocol} history)"})
    typer.echo("")
    typer.echo(markdown_table(rows, title=f"{corpus} {split}"))


def train_command(
    corpus: CorpusOpt = "mesc",
    data: DataOpt = None,
    split: Annotated[str, typer.Option("--split", help="split to train on")] = "train",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="where to save the model (.npz); default: where SupportAgent(classifier='auto') finds it, "
            "$MESA_CACHE_DIR/models/<taxonomy>.npz",
        ),
    ] = None,
    taxonomy: CorpusTaxonomyOpt = None,
    embedding_model: Annotated[
        str | None,
        typer.Option("--embedding-model", help="SentenceTransformer path or id (default: packaged all-MiniLM-L6-v2)"),
    ] = None,
    eval_split: Annotated[
        str | None, typer.Option("--eval-split", help="also score the model on this split (e.g. val)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="print the tuning grid")] = False,
    c_grid: Annotated[
        str | None,
        typer.Option(
            "--c-grid",
            help="inverse regularisation strengths to try (comma list); default: the best on held-out train "
            "dialogues of the corpus (MESC 0.0005,0.002,0.02; ESConv 0.0001,0.02; each head picks its own)",
        ),
    ] = None,
    weight_powers: Annotated[
        str,
        typer.Option(
            "--weight-powers",
            help="class-weight powers to try: 0 none, 1 balanced (comma list; balanced was the best on held-out "
            "MESC train dialogues)",
        ),
    ] = "1.0",
    history: Annotated[
        str,
        typer.Option(
            "--history",
            help="history the model learns from: predicted (out-of-fold predicted user emotions, as in a live "
            "chat) | gold (the dataset's labels)",
        ),
    ] = "predicted",
    user_context: Annotated[
        str,
        typer.Option(
            "--user-context",
            help="with predicted history, what the user-emotion step knows of earlier user turns: filter (a filter "
            "over all the user turns so far, from their words; history labels ignored) | distribution (the previous "
            "user turn's emotion distribution, from its words) | labels (out-of-fold predicted labels carried by the "
            "history; the oldest model)",
        ),
    ] = "filter",
    strategy_model: Annotated[
        str,
        typer.Option(
            "--strategy-model",
            help="strategy head: auto (ESConv: sequence; others: plain) | sequence (strategy-sequence features, "
            "boosted trees beside the head and decision offsets, chosen on ESConv train) | plain (the shared "
            "features and grid)",
        ),
    ] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show a progress bar")] = True,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads for embedding and fitting (1: fastest on a shared, loaded CPU; raise it on an idle one)",
        ),
    ] = 1,
) -> None:
    """Train the small supervised model (embeddings + logistic regression); SupportAgent then finds it."""
    from mesa.eval.classifier import SupervisedClassifier
    from mesa.eval.embeddings import default_embedder
    from mesa.eval.store import classifier_path

    _check_train_options(history, user_context)
    strategy = _strategy_settings(strategy_model, corpus)
    started = time.perf_counter()
    _torch_threads(threads)
    examples = _load(corpus, data, split)
    tax = _taxonomy(corpus, taxonomy, examples)
    target = out or classifier_path(tax)
    typer.echo(f"training on {corpus} {split}: {len(examples)} examples, taxonomy {tax.name}, {history} history")
    clf = SupervisedClassifier.train(
        examples,
        tax,
        embedder=default_embedder(embedding_model),
        verbose=verbose,
        c_grid=_floats(c_grid or _DEFAULT_C.get(corpus.lower(), "0.02")),
        weight_powers=_floats(weight_powers),
        history=history,
        progress=progress,
        user_context=user_context,
        threads=threads,
        **strategy,
    )
    clf.save(target)
    _print_training(clf, target, started, tax.name, found_by_agent=out is None)
    if eval_split:
        _print_held_out_scores(clf, corpus, data, eval_split, tax)


def export_command(
    corpus: CorpusOpt = "mesc",
    data: DataOpt = None,
    split: Annotated[str, typer.Option("--split", help="split to export")] = "train",
    out: Annotated[Path, typer.Option("--out", help="output JSONL")] = Path("smes-train.jsonl"),
    target: Annotated[str, typer.Option("--target", help="assistant target: json | tagged")] = "json",
    history_window: Annotated[
        int, typer.Option("--history-window", help="earlier messages per example (0: none)")
    ] = 8,
    annotate_history: Annotated[
        bool, typer.Option("--annotate-history", help="tag earlier turns with their gold labels")
    ] = False,
    taxonomy: Annotated[str | None, typer.Option("--taxonomy", help="taxonomy name or JSON file")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="export only the first N examples")] = None,
) -> None:
    """Export a corpus as SMES-format chat fine-tuning data (JSONL of chat messages)."""
    from mesa.eval.export import export_chat

    if target not in ("json", "tagged"):
        raise typer.BadParameter("--target must be json or tagged")
    examples = _load(corpus, data, split)
    tax = _taxonomy(corpus, taxonomy, examples)
    count = export_chat(
        examples[:limit] if limit else examples,
        out,
        tax,
        target=target,  # type: ignore[arg-type]
        history_window=history_window,
        annotate_history=annotate_history,
    )
    typer.echo(json.dumps({"examples": count, "out": str(out)}))
