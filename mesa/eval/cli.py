"""Command functions for ``mesa eval``, ``mesa train`` and ``mesa export`` (registered by ``mesa.cli``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

__all__ = ["eval_command", "export_command", "train_command"]

ROWS = ("majority", "classifier", "llm", "llm+demos", "llm+prior")
_PROTOCOL_NAMES = {"predicted": "live protocol (predicted history)", "gold": "gold-history protocol"}
LLM_ROWS = ("llm", "llm+demos", "llm+prior")


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


def eval_command(
    corpus: str = typer.Option("mesc", "--corpus", help="mesc | esconv | custom"),
    data: Path | None = typer.Option(  # noqa: B008
        None, "--data", help="corpus file or folder (default: download the public corpus)"
    ),
    split: str | None = typer.Option(
        None, "--split", help="split to evaluate (default: val for MESC, valid for ESConv)"
    ),
    rows: str = typer.Option("majority,classifier", "--rows", help=f"comma list of: {', '.join(ROWS)}"),
    classifier: Path | None = typer.Option(  # noqa: B008
        None, "--classifier", help="a model from `mesa train` (default: train one on the train split)"
    ),
    model: str = typer.Option("mesa-local/smollm2", "--model", help="LiteLLM model string for the LLM rows"),
    mode: str = typer.Option("stepwise", "--mode", help="graph mode for the LLM rows: stepwise | fused"),
    limit: int | None = typer.Option(
        None, "--limit", help="evaluate every row on this many examples (seeded random subset)"
    ),
    llm_limit: int | None = typer.Option(
        None,
        "--llm-limit",
        help="LLM rows only on this many examples; the other rows run on all and are also scored on that subset",
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the example subset"),
    concurrency: int = typer.Option(2, "--concurrency", help="examples evaluated at once"),
    out: Path = typer.Option(  # noqa: B008
        Path("mesa-eval"), "--out", help="output folder: report.json, report.md, plots, result cache"
    ),
    train_split: str = typer.Option(
        "train", "--train-split", help="split the majority class, the classifier and the demonstrations come from"
    ),
    demos: int = typer.Option(4, "--demos", help="demonstrations per prompt (llm+demos)"),
    taxonomy: str | None = typer.Option(
        None, "--taxonomy", help="taxonomy name or JSON file (default: the corpus's own)"
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="reuse finished examples from the result cache"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars"),
    safety: str = typer.Option(
        "rules",
        "--safety",
        help="safety policy of the LLM rows: rules (rule layer only, no LLM judgement: faster) | full",
    ),
    history: str = typer.Option(
        "predicted",
        "--history",
        help="what earlier user turns carry: predicted (live: the predictor's own labels) | gold | both "
        "(both protocols, printed side by side)",
    ),
) -> None:
    """Evaluate baselines, the small supervised model and LLM rows on a labelled corpus; print one table."""
    import asyncio

    from mesa.errors import MesaError
    from mesa.eval.classifier import MajorityClassifier
    from mesa.eval.protocol import check_protocol
    from mesa.eval.report import distribution_table, markdown_table, protocol_table, score_run, write_report
    from mesa.eval.runner import AgentPredictor, ClassifierPredictor, arun_predictor, select_examples

    wanted = [r.strip() for r in rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        raise typer.BadParameter(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    try:
        protocols = ["predicted", "gold"] if history == "both" else [check_protocol(history)]
    except MesaError as exc:
        raise typer.BadParameter(str(exc)) from exc
    split = _default_split(corpus, split)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    examples = _load(corpus, data, split)
    tax = _taxonomy(corpus, taxonomy, examples)
    # Whole dialogues (the last one cut short): every example's earlier turns are evaluated too,
    # so the live protocol can give them the predictor's own labels.
    examples = select_examples(examples, limit, seed, by_dialogue=True)
    subset = select_examples(examples, llm_limit, seed, by_dialogue=True) if llm_limit else examples
    typer.echo(
        f"{corpus} {split}: {len(examples)} examples"
        + (f"; LLM rows on {len(subset)} (seed {seed})" if llm_limit else "")
    )

    need_train = any(r in wanted for r in ("majority", "llm+demos")) or (
        classifier is None and any(r in wanted for r in ("classifier", "llm+prior"))
    )
    train = _load(corpus, data, train_split) if need_train else []
    cache_dir = out / "cache"
    scope = {"corpus": corpus, "split": split, "taxonomy": tax.name}
    results: dict[str, list[Any]] = {p: [] for p in protocols}
    clf = None

    def get_classifier():
        nonlocal clf
        if clf is None:
            clf = _classifier(corpus, data, train_split, tax, classifier, out, train)
        return clf

    async def run_all() -> None:
        for row in wanted:
            row_examples = subset if row in LLM_ROWS else examples
            if row == "majority":
                predictor = ClassifierPredictor(
                    MajorityClassifier.fit(train, tax), name="majority", config={**scope, "train": train_split}
                )
            elif row == "classifier":
                predictor = ClassifierPredictor(
                    get_classifier(), name="classifier", config={**scope, "classifier": str(classifier or train_split)}
                )
            else:
                from mesa import SupportAgent

                kwargs: dict[str, Any] = {}
                if row == "llm+demos":
                    from mesa.eval.retrieval import EmbeddingRetriever

                    typer.echo(f"indexing {len(train)} {train_split} turns for retrieval ...")
                    kwargs["demonstrations"] = EmbeddingRetriever.from_examples(train)
                    kwargs["n_demonstrations"] = demos
                if row == "llm+prior":
                    kwargs["classifier"] = get_classifier()
                    kwargs["classifier_use"] = "prior"
                else:
                    kwargs["classifier"] = None  # not the trained model `classifier="auto"` would find
                from mesa.safety import SafetyPolicy

                policy = SafetyPolicy(llm_assessment=False) if safety == "rules" else SafetyPolicy.default()
                agent = SupportAgent(model=model, taxonomy=tax, mode=mode, safety=policy, **kwargs)
                predictor = AgentPredictor(
                    agent,
                    name=row,
                    config={
                        **scope,
                        "model": model,
                        "mode": mode,
                        "safety": safety,
                        "demos": demos if row == "llm+demos" else 0,
                        "classifier": str(classifier or train_split) if row == "llm+prior" else None,
                    },
                )
            try:
                for protocol in protocols:
                    result = await arun_predictor(
                        predictor,
                        row_examples,
                        cache_dir=cache_dir,
                        concurrency=concurrency,
                        progress=progress,
                        resume=resume,
                        history=protocol,
                    )
                    if result.errors:
                        first = result.extra.get("first_errors", [""])[0]
                        typer.echo(
                            f"{row} ({protocol}): {result.errors} examples failed; first error:\n{first}", err=True
                        )
                    results[protocol].append(result)
            finally:
                if isinstance(predictor, AgentPredictor) and hasattr(predictor.agent, "close"):
                    predictor.agent.close()

    asyncio.run(run_all())
    scored_by = {p: [score_run(r, examples, tax) for r in results[p]] for p in protocols}
    for protocol, rows_of in scored_by.items():
        for row, result in zip(rows_of, results[protocol], strict=True):
            row["key"] = f"{result.name}-{protocol}"
            row["protocol"] = protocol
            if result.name in LLM_ROWS and llm_limit:
                row["name"] = f"{result.name} ({model}, {mode}; n={len(subset)})"
    headline = protocols[0]
    scored = scored_by[headline]
    report: dict[str, Any] = {
        "title": f"mesa evaluation: {corpus} {split}",
        "meta": {
            "corpus": corpus,
            "split": split,
            "data": str(data) if data else "downloaded",
            "examples": len(examples),
            "llm_examples": len(subset),
            "seed": seed,
            "model": model if any(r in LLM_ROWS for r in wanted) else None,
            "mode": mode,
            "concurrency": concurrency,
            "history": ", ".join(protocols),
            "safety (LLM rows)": safety,
            "total_wall_seconds": round(time.perf_counter() - started, 1),
        },
        "table_title": f"{corpus} {split}, {_PROTOCOL_NAMES[headline]}"
        + (f" (LLM rows on a seeded random subset of {len(subset)})" if llm_limit else ""),
        "rows": scored,
        "tables": [{"title": f"{corpus} {split}, {_PROTOCOL_NAMES[p]}", "rows": scored_by[p]} for p in protocols[1:]],
    }
    if len(protocols) > 1:
        report["protocol_rows"] = scored_by
        report["protocol_title"] = f"{corpus} {split}: both history protocols"
    if llm_limit and any(r.name in LLM_ROWS for r in results[headline]):
        report["subset_rows"] = [score_run(r, subset, tax) for r in results[headline]]
        for row, result in zip(report["subset_rows"], results[headline], strict=True):
            row["name"] = result.name
            row["wall_seconds"] = row["examples_per_second"] = None
        report["subset_title"] = (
            f"all rows on the same {len(subset)}-example subset (seed {seed}), {_PROTOCOL_NAMES[headline]}"
        )
    written = write_report(report, out, taxonomy=tax, plots=plots)
    typer.echo("")
    if len(protocols) > 1:
        typer.echo(protocol_table(scored_by, title=report["protocol_title"]))
        typer.echo("")
    typer.echo(markdown_table(report["rows"], title=report["table_title"]))
    for table in report["tables"]:
        typer.echo("")
        typer.echo(markdown_table(table["rows"], title=table["title"]))
    shares = distribution_table(scored, "system_emotion", tax, title="system emotion: label shares (%)")
    if shares:
        typer.echo("")
        typer.echo(shares)
    if report.get("subset_rows"):
        typer.echo("")
        typer.echo(markdown_table(report["subset_rows"], title=report["subset_title"]))
    typer.echo(f"\nreport: {written['markdown']}  (json: {written['json']})")


# Chosen on held-out TRAIN dialogues (docs/evaluation.md): much stronger regularisation than the
# earlier 0.02 gains ESConv's strategy head ~5 points of accuracy and macro-F1 and MESC's ~10 points
# of weighted F1. A list: each head picks its own on 20 % of the train dialogues.
_DEFAULT_C = {"mesc": "0.0005,0.002,0.02", "esconv": "0.0001,0.02"}


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


def train_command(
    corpus: str = typer.Option("mesc", "--corpus", help="mesc | esconv | custom"),
    data: Path | None = typer.Option(None, "--data", help="corpus file or folder (default: download)"),  # noqa: B008
    split: str = typer.Option("train", "--split", help="split to train on"),
    out: Path | None = typer.Option(  # noqa: B008
        None,
        "--out",
        help="where to save the model (.npz); default: where SupportAgent(classifier='auto') finds it, "
        "$MESA_CACHE_DIR/models/<taxonomy>.npz",
    ),
    taxonomy: str | None = typer.Option(
        None, "--taxonomy", help="taxonomy name or JSON file (default: the corpus's own)"
    ),
    embedding_model: str | None = typer.Option(
        None, "--embedding-model", help="SentenceTransformer path or id (default: packaged all-MiniLM-L6-v2)"
    ),
    eval_split: str | None = typer.Option(None, "--eval-split", help="also score the model on this split (e.g. val)"),
    verbose: bool = typer.Option(False, "--verbose", help="print the tuning grid"),
    c_grid: str | None = typer.Option(
        None,
        "--c-grid",
        help="inverse regularisation strengths to try (comma list); default: the best on held-out train "
        "dialogues of the corpus (MESC 0.0005,0.002,0.02; ESConv 0.0001,0.02; each head picks its own)",
    ),
    weight_powers: str = typer.Option(
        "1.0",
        "--weight-powers",
        help="class-weight powers to try: 0 none, 1 balanced (comma list; balanced was the best on held-out "
        "MESC train dialogues)",
    ),
    history: str = typer.Option(
        "predicted",
        "--history",
        help="history the model learns from: predicted (out-of-fold predicted user emotions, as in a live chat) "
        "| gold (the dataset's labels)",
    ),
    user_context: str = typer.Option(
        "distribution",
        "--user-context",
        help="with predicted history, what the user-emotion head learns from: distribution (the previous user "
        "turn's emotion distribution, recomputed from its words; history labels ignored) | labels (out-of-fold "
        "predicted labels carried by the history; the earlier model)",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    threads: int = typer.Option(
        1,
        "--threads",
        min=1,
        help="CPU threads for embedding and fitting (1: fastest on a shared, loaded CPU; raise it on an idle one)",
    ),
) -> None:
    """Train the small supervised model (embeddings + logistic regression); SupportAgent then finds it."""
    from mesa.errors import MesaError
    from mesa.eval.classifier import SupervisedClassifier
    from mesa.eval.embeddings import default_embedder
    from mesa.eval.protocol import check_protocol
    from mesa.eval.store import classifier_path

    try:
        check_protocol(history)
    except MesaError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if user_context not in ("distribution", "labels"):
        raise typer.BadParameter("--user-context must be distribution or labels")
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
        c_grid=[float(c) for c in (c_grid or _DEFAULT_C.get(corpus.lower(), "0.02")).split(",")],
        weight_powers=[float(w) for w in weight_powers.split(",")],
        history=history,
        progress=progress,
        user_context=user_context,
        threads=threads,
    )
    clf.save(target)
    typer.echo(f"saved {target} ({target.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    if out is None:
        typer.echo(f"SupportAgent(taxonomy={tax.name!r}) now uses it (classifier='auto'; classifier=None to opt out)")
    for which, info in clf.info["tasks"].items():
        if info.get("holdout_weighted_f1") is not None:
            typer.echo(
                f"  {which}: C={info['C']} weight_power={info['weight_power']} "
                f"holdout weighted F1={info['holdout_weighted_f1']:.3f}"
            )
    if eval_split:
        from mesa.eval.report import markdown_table, score_run
        from mesa.eval.runner import ClassifierPredictor, run_predictor

        held = _load(corpus, data, eval_split)
        rows = []
        for protocol in ("predicted", "gold"):
            result = run_predictor(ClassifierPredictor(clf), held, progress=False, history=protocol)
            rows.append(score_run(result, held, tax) | {"name": f"classifier ({protocol} history)"})
        typer.echo("")
        typer.echo(markdown_table(rows, title=f"{corpus} {eval_split}"))


def export_command(
    corpus: str = typer.Option("mesc", "--corpus", help="mesc | esconv | custom"),
    data: Path | None = typer.Option(None, "--data", help="corpus file or folder (default: download)"),  # noqa: B008
    split: str = typer.Option("train", "--split", help="split to export"),
    out: Path = typer.Option(Path("smes-train.jsonl"), "--out", help="output JSONL"),  # noqa: B008
    target: str = typer.Option("json", "--target", help="assistant target: json | tagged"),
    history_window: int = typer.Option(8, "--history-window", help="earlier messages per example (0: none)"),
    annotate_history: bool = typer.Option(False, "--annotate-history", help="tag earlier turns with their gold labels"),
    taxonomy: str | None = typer.Option(None, "--taxonomy", help="taxonomy name or JSON file"),
    limit: int | None = typer.Option(None, "--limit", help="export only the first N examples"),
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
