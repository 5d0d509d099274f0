"""Scoring runs and writing the report: JSON for machines, Markdown for people, PNG plots."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesa.eval.datasets import Example
from mesa.eval.metrics import classification_metrics, generation_metrics
from mesa.eval.runner import TASKS, RunResult
from mesa.taxonomy import Taxonomy

__all__ = ["distribution_table", "markdown_table", "protocol_table", "score_run", "write_report"]

_TASK_TITLES = {"user_emotion": "user emotion", "strategy": "strategy", "system_emotion": "system emotion"}


def score_run(result: RunResult, examples: Sequence[Example], taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """Metrics of one run over ``examples`` (those it has a prediction for)."""
    scored = [e for e in examples if e.id in result.records]
    out: dict[str, Any] = {
        "name": result.name,
        "config": result.config,
        "n": len(scored),
        "errors": sum(1 for e in scored if result.records[e.id].get("error")),
        "wall_seconds": round(result.extra.get("total_wall_seconds", result.wall_seconds), 3),
        "computed": result.extra.get("total_computed", result.computed),
    }
    computed = out["computed"]
    out["examples_per_second"] = round(computed / out["wall_seconds"], 3) if computed and out["wall_seconds"] else None
    for which in TASKS:
        gold = [e.gold(which) for e in scored]
        if not any(g is not None for g in gold):
            continue
        pred = [result.records[e.id].get(which) for e in scored]
        if all(p is None for p in pred):
            continue
        labels = taxonomy.names(which) if taxonomy is not None else None  # type: ignore[arg-type]
        out[which] = classification_metrics(gold, pred, labels)
        out[which]["predicted_distribution"] = dict(Counter(p for p in pred if p is not None))
        out[which]["gold_distribution"] = dict(Counter(g for g in gold if g is not None))
    replies = [result.records[e.id].get("reply") for e in scored]
    if any(r for r in replies):
        out["reply"] = generation_metrics(replies, [e.reply for e in scored])
    crisis = sum(1 for e in scored if result.records[e.id].get("crisis"))
    if crisis:
        out["crisis_routed"] = crisis
    return out


def _fmt(value: Any, scale: float = 100.0) -> str:
    return "–" if value is None else f"{value * scale:.1f}"


def markdown_table(rows: Sequence[dict[str, Any]], *, title: str | None = None) -> str:
    """One Markdown table: accuracy / weighted F1 / macro F1 per label set, reply metrics, speed."""
    header = [
        "row",
        "n",
        "UE acc",
        "UE wF1",
        "UE mF1",
        "Str acc",
        "Str wF1",
        "Str mF1",
        "SE acc",
        "SE wF1",
        "BLEU-2",
        "ROUGE-L",
        "D-1",
        "D-2",
        "wall s",
        "ex/s",
    ]
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        ue, st, se, rp = (row.get(k) or {} for k in ("user_emotion", "strategy", "system_emotion", "reply"))
        cells = [
            row["name"],
            f"{row['n']} ({row['errors']} failed)" if row.get("errors") else str(row["n"]),
            _fmt(ue.get("accuracy")),
            _fmt(ue.get("weighted_f1")),
            _fmt(ue.get("macro_f1")),
            _fmt(st.get("accuracy")),
            _fmt(st.get("weighted_f1")),
            _fmt(st.get("macro_f1")),
            _fmt(se.get("accuracy")),
            _fmt(se.get("weighted_f1")),
            _fmt(rp.get("bleu2"), 1.0),
            _fmt(rp.get("rouge_l"), 1.0),
            _fmt(rp.get("distinct1"), 1.0) if not rp else f"{rp['distinct1']:.3f}",
            _fmt(rp.get("distinct2"), 1.0) if not rp else f"{rp['distinct2']:.3f}",
            f"{row['wall_seconds']:.1f}" if row.get("wall_seconds") else "–",
            f"{row['examples_per_second']:.2f}" if row.get("examples_per_second") else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "UE = user emotion, Str = strategy, SE = system emotion; acc / wF1 / mF1 = accuracy / weighted F1 / macro F1 (%);"
            " failed examples (no valid answer from the model) count as wrong."
        ),
        (
            "BLEU-2 and ROUGE-L in %, D-1/D-2 = Distinct-1/2 ratios; wall s and ex/s: wall time and examples per "
            "second of the computation (whole run, summed over resumed parts)."
        ),
    ]
    return "\n".join(lines)


_PROTOCOL_COLUMNS = (
    ("UE acc", "user_emotion", "accuracy"),
    ("UE wF1", "user_emotion", "weighted_f1"),
    ("Str acc", "strategy", "accuracy"),
    ("Str wF1", "strategy", "weighted_f1"),
    ("Str mF1", "strategy", "macro_f1"),
    ("SE wF1", "system_emotion", "weighted_f1"),
)


def protocol_table(rows: dict[str, Sequence[dict[str, Any]]], *, title: str | None = None) -> str:
    """Both history protocols side by side: for each row and metric, ``live / gold``.

    ``rows`` maps a protocol (``"predicted"``, ``"gold"``) to scored rows of the
    same predictors in the same order.
    """
    protocols = [p for p in ("predicted", "gold") if p in rows]
    names = {"predicted": "live", "gold": "gold"}
    header = ["row", "n"] + [
        f"{label} ({' / '.join(names[p] for p in protocols)})" for label, _, _ in _PROTOCOL_COLUMNS
    ]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for position, first in enumerate(rows[protocols[0]]):
        same = [rows[p][position] for p in protocols]
        cells = [first["name"], " / ".join(str(r["n"]) for r in same)]
        for _, which, metric in _PROTOCOL_COLUMNS:
            cells.append(" / ".join(_fmt((r.get(which) or {}).get(metric)) for r in same))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "live = predicted-history protocol (earlier user turns carry the predictor's own labels, as in a running"
            " chat); gold = earlier turns carry the dataset's gold labels. Metrics in %."
        ),
    ]
    return "\n".join(lines)


def distribution_table(
    rows: Sequence[dict[str, Any]], which: str, taxonomy: Taxonomy | None = None, *, title: str | None = None
) -> str:
    """The share of each label of ``which`` in every row's predictions, next to the gold shares (%)."""
    scored = [r for r in rows if which in r]
    if not scored:
        return ""
    gold = Counter(scored[0][which]["gold_distribution"])
    labels = taxonomy.names(which) if taxonomy is not None else sorted(gold)  # type: ignore[arg-type]

    def shares(counts: dict[str, int]) -> list[str]:
        total = sum(counts.values()) or 1
        return [f"{100 * counts.get(label, 0) / total:.1f}" for label in labels]

    lines = [f"**{title}**", ""] if title else []
    lines += ["| row | n | " + " | ".join(labels) + " |", "|" + "|".join(["---"] + ["---:"] * (len(labels) + 1)) + "|"]
    lines.append(f"| gold | {sum(gold.values())} | " + " | ".join(shares(gold)) + " |")
    for row in scored:
        counts = row[which]["predicted_distribution"]
        lines.append(f"| {row['name']} | {sum(counts.values())} | " + " | ".join(shares(counts)) + " |")
    return "\n".join(lines)


def _plot_confusion(metrics: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = metrics["labels"]
    matrix = np.asarray(metrics["confusion_matrix"], dtype=float)
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    short = [label if len(label) <= 18 else label[:16] + "…" for label in labels]
    ax.set_xticks(range(len(labels)), short, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), short, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    int(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="row share")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_distribution(rows: Sequence[dict[str, Any]], which: str, taxonomy: Taxonomy | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scored = [r for r in rows if which in r]
    if not scored:
        return
    gold = scored[0][which]["gold_distribution"]
    labels = [label for label in (taxonomy.names(which) if taxonomy else []) if label in gold]  # type: ignore[arg-type]
    for r in scored:
        labels += [label for label in list(gold) + list(r[which]["predicted_distribution"]) if label not in labels]
    series = [("gold", gold, scored[0]["n"])] + [
        (r["name"], r[which]["predicted_distribution"], r["n"]) for r in scored
    ]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.5))
    x = np.arange(len(labels))
    for k, (name, counts, n) in enumerate(series):
        ax.bar(
            x + k * width - 0.4 + width / 2, [counts.get(label, 0) / max(n, 1) for label in labels], width, label=name
        )
    ax.set_xticks(
        x, [label if len(label) <= 18 else label[:16] + "…" for label in labels], rotation=45, ha="right", fontsize=8
    )
    ax.set_ylabel("share of examples")
    ax.set_title(f"{_TASK_TITLES[which]}: gold vs predicted label distribution", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    report: dict[str, Any],
    out_dir: str | Path,
    *,
    taxonomy: Taxonomy | None = None,
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (``plots``) PNG confusion matrices and label distributions.

    ``report`` is ``{"title", "rows": [score_run(...)...], "subset_rows"?: [...], "notes"?: [...], ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    written["json"] = json_path
    parts = [f"# {report.get('title', 'mesa evaluation')}", ""]
    for key, value in (report.get("meta") or {}).items():
        parts.append(f"- {key}: {value}")
    parts.append("")
    if report.get("protocol_rows"):
        parts += [protocol_table(report["protocol_rows"], title=report.get("protocol_title")), ""]
    parts.append(markdown_table(report["rows"], title=report.get("table_title")))
    for table in report.get("tables") or []:
        parts += ["", markdown_table(table["rows"], title=table.get("title"))]
    if report.get("subset_rows"):
        parts += ["", markdown_table(report["subset_rows"], title=report.get("subset_title"))]
    # The counsellor's own emotion: how often each row shows each one, next to the corpus.
    shown = distribution_table(report["rows"], "system_emotion", taxonomy, title="system emotion: label shares (%)")
    if shown:
        parts += ["", shown]
    for note in report.get("notes") or []:
        parts += ["", note]
    if plots:
        images = []
        for row in report["rows"]:
            for which in TASKS:
                if which in row and row[which].get("labels"):
                    name = f"confusion-{_slug(row.get('key') or row['name'])}-{which}.png"
                    _plot_confusion(row[which], f"{row['name']}: {_TASK_TITLES[which]} (n={row['n']})", out / name)
                    written[name] = out / name
                    images.append(name)
        for which in TASKS:
            name = f"distribution-{which}.png"
            _plot_distribution(report["rows"], which, taxonomy, out / name)
            if (out / name).exists():
                written[name] = out / name
                images.append(name)
        if images:
            parts += ["", "## Plots", ""] + [f"![{img}]({img})" for img in images]
    md_path = out / "report.md"
    md_path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    written["markdown"] = md_path
    return written


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
