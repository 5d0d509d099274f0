"""Safety-layer benchmark: recall on frozen and own batches, false alarms on MESC, time per turn.

Prints, for the non-LLM layers (rules + semantic layer; the LLM judgement can only add):

- recall per kind and category on the **frozen blind set** (``--frozen``, default ``tests/safety_frozen``,
  written by someone who never saw this layer; goals: explicit 100 %, implicit >= 95 %, hard negatives
  <= 5 % escalated), if that folder is present;
- the same on mesa's own validation batch (``tests/safety_batches/valid.jsonl``, never tuned on) and, for
  reference, on the tuning batch (tuned on: not a measure of generalisation);
- the false-alarm rate on every MESC val client turn (``Speaker == Client``; MESC is therapy dialogue with
  no user in acute crisis, so every escalation is a false alarm; goal <= 2 %);
- the median and p95 time the non-LLM layers add per MESC turn (goal <= 20 ms median).

Usage::

    python bench/safety_bench.py /work/shared/data/mesc/mesc_train_val.csv
    python bench/safety_bench.py data.csv --frozen tests/safety_frozen --show
    python bench/safety_bench.py --frozen tests/safety_frozen,tests/safety_frozen2 --by-length  # two sets as one, per length
    python bench/safety_bench.py --frozen tests/safety_frozen14 --by-layer   # which layer each wrong answer comes from
    python bench/safety_bench.py data.csv --rules-only          # the rule layer alone
    python bench/safety_bench.py data.csv --reader large --frozen tests/safety_frozen13   # the opt-in pair (safety-large)
    python bench/safety_bench.py data.csv --calibrate           # choose thresholds on tune.jsonl (+ MESC train sample)
    python bench/safety_bench.py --rebuild-bank                  # after editing mesa/safety/data/exemplars.json
    python bench/safety_bench.py data.csv --time-against old/classifier.npz  # time per turn: packaged vs another
    python bench/train_safety_classifier.py data.csv             # retrain adapter + classifier (then --rebuild-bank)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mesa.safety import SafetyPolicy
from mesa.safety.measure import load_batch, rates, report_lines


def mesc_client_turns(path: Path, split: str) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == split and r["Speaker"] == "Client" and r["Utterance"].strip()]


def show_batch(name: str, rows: list[dict], policy: SafetyPolicy, show: bool, by_length: bool = False,
               by_layer: bool = False) -> dict:
    result = rates(rows, lambda text: policy.assess_local(text).crisis, by_length=by_length)
    print(f"\n== {name}: {len(rows)} messages ==")
    print("\n".join(report_lines(result)))
    if by_layer:
        print("\n".join(layer_lines(result["misses"], policy)))
    if show:
        for row in result["misses"]:
            print(f"    wrong [{row['kind']}/{row['category']}] {row['text'][:140]!r}")
    return result


def layer_lines(misses: list[dict], policy: SafetyPolicy) -> list[str]:
    """Which layer each wrong answer comes from: a hard negative escalated by the rule layer (the semantic layer cannot
    lower a level) or by the semantic layer alone; a risk message missed with the semantic layer at ``low`` (in the
    default grounded mode the LLM judgement is asked about it) or at ``none`` (nothing asks the LLM)."""
    counts: dict[str, int] = {}
    for row in misses:
        if row["kind"] == "hard_negative":
            key = "hard negatives escalated by the rules" if policy.assess_rules(row["text"]).crisis else \
                "hard negatives escalated by the semantic layer alone"
        else:
            signal = policy.semantic.assess(row["text"]) if policy.semantic is not None else None
            asked = signal is not None and signal.level == "low"
            key = f"{row['kind']} missed, {'put to the LLM judgement (semantic: low)' if asked else 'asked of nobody (semantic: none)'}"
        counts[key] = counts.get(key, 0) + 1
    return ["  by layer:", *(f"    {key:<62} {n}" for key, n in sorted(counts.items()))]


def timed_mesc(policy: SafetyPolicy, turns: list[str], show: bool) -> tuple[int, list[float], int]:
    """False alarms, seconds per turn, and how many turns would ask the LLM judgement (grounded mode)."""
    alarms, times, asks = 0, [], 0
    for text in turns:
        start, cpu = time.perf_counter(), time.thread_time()
        result = policy.assess_local(text)
        times.append((time.perf_counter() - start, time.thread_time() - cpu))
        asks += policy.llm_verdict_can_count(result, text)
        if result.crisis:
            alarms += 1
            if show:
                print(f"    MESC escalated [{result.level} {result.category}] {text[:120]!r} <- {result.evidence[-1][:120]}")
    return alarms, times, asks


# -- calibration ------------------------------------------------------------------------------------------


def window_scores(layer, text: str) -> list[tuple[float, float]]:
    """(similarity to the nearest risk exemplar, margin over the nearest safe one) per window of ``text``."""
    from mesa.safety.semantic import _choose, windows

    parts = _choose(windows(text))
    if not parts:
        return []
    sims = layer.similarities(parts)
    return [(float(row[: layer.n_risk].max()), float(row[: layer.n_risk].max() - row[layer.n_risk :].max())) for row in sims]


def _hits(rules: list[bool], scores: list[list[tuple[float, float]]], t: float, m: float) -> list[bool]:
    return [r or any(s >= t and g >= m for s, g in sc) for r, sc in zip(rules, scores, strict=True)]


def calibrate(policy: SafetyPolicy, tune: list[dict], mesc_sample: list[str]) -> None:
    """Grid-search the semantic thresholds on the tuning batch (+ a MESC train sample for false alarms).

    Chooses the pair with the highest risk recall such that hard negatives stay <= 3 % and the MESC sample
    <= 1 % escalated (stricter than the goals, to leave room for messages never seen); ties go to the higher
    threshold.
    """
    layer = policy.semantic
    rules = [policy.assess_rules(r["text"]).crisis for r in tune]
    scores = [window_scores(layer, r["text"]) for r in tune]
    print(f"  tuning batch scored ({len(tune)})", file=sys.stderr, flush=True)
    # MESC turns the rules already escalate stay escalated whatever the thresholds: only the others matter
    mesc_rules = [policy.assess_rules(t).crisis for t in mesc_sample]
    mesc_scores = [window_scores(layer, t) if not r else [] for t, r in zip(mesc_sample, mesc_rules, strict=True)]
    print(f"  MESC sample scored ({len(mesc_sample)})", file=sys.stderr, flush=True)
    risky = [row["expect"] == "escalate" for row in tune]
    best = None
    for t in [x / 100 for x in range(40, 86)]:
        for m in [x / 100 for x in range(-6, 16)]:
            hit = _hits(rules, scores, t, m)
            recalled = sum(h for h, r in zip(hit, risky, strict=True) if r)
            neg_rate = sum(h for h, r in zip(hit, risky, strict=True) if not r) / max(1, risky.count(False))
            mesc_rate = sum(_hits(mesc_rules, mesc_scores, t, m)) / max(1, len(mesc_sample))
            if neg_rate <= 0.03 and mesc_rate <= 0.01 and (best is None or (recalled, t, m) > best[0]):
                best = ((recalled, t, m), neg_rate, mesc_rate)
    if best is None:
        print("no threshold pair meets the constraints")
        return
    (recalled, t, m), neg_rate, mesc_rate = best
    print(f"calibration: risk_threshold={t:.2f} margin={m:.2f}: tuning recall {recalled}/{risky.count(True)}, "
          f"hard negatives {100 * neg_rate:.1f} %, MESC train sample {100 * mesc_rate:.2f} % ({len(mesc_sample)} turns)")
    print("write these into mesa/safety/data/exemplars.json 'calibration', then run --rebuild-bank")


def compare_time(turns: list[str], other: Path, sample: int = 300) -> None:
    """The semantic layer's CPU time per turn with the packaged classifier and with ``other``, interleaved in random
    order on the same turns, so the machine's load falls on both alike: the ratio is what counts. Each layer runs the
    encoder its classifier was trained on (the base MiniLM, or MiniLM with the adapter beside the classifier file)."""
    from mesa.safety.semantic import SemanticLayer

    layers = {"packaged": SemanticLayer(), str(other): SemanticLayer(classifier=other)}
    rng = random.Random(1)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for text in rng.sample(turns, min(sample, len(turns))):
        for name in rng.sample(list(layers), len(layers)):
            layers[name]._assess_cached.cache_clear()  # time the work, not the cache
            start = time.thread_time()
            layers[name].assess(text)
            times[name].append(time.thread_time() - start)
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"\n== semantic layer CPU time per turn, interleaved ({len(times['packaged'])} MESC turns) ==")
    for name, ms in medians.items():
        print(f"  {name}: median {ms:.2f} ms")
    print(f"  packaged / other: {medians['packaged'] / medians[str(other)]:.3f}")


def rebuild_bank() -> None:
    """Recompute the packaged exemplar embeddings after the bank or the adapter changed (with the encoder the packaged
    layer runs: MiniLM with the packaged adapter when the classifier names one)."""
    from mesa.safety.semantic import _bank_text, bank_digest, default_encoder, save_bank_embeddings
    from mesa.safety.textfold import fold

    raw = _bank_text()
    bank = json.loads(raw)
    texts = [t for kinds in bank["risk"].values() for ts in kinds.values() for t in ts]
    texts += [t for ts in bank["safe"].values() for t in ts]
    encoder = default_encoder()
    matrix = encoder.encode([fold(t) for t in texts])
    target = HERE.parent / "mesa" / "safety" / "data" / "exemplars.npz"
    save_bank_embeddings(target, matrix, bank_digest(raw, encoder.identity))
    print(f"wrote {target} ({len(texts)} exemplars)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mesc_csv", type=Path, nargs="?", help="MESC mesc_train_val.csv (false alarms and time per turn)")
    ap.add_argument("--frozen", type=Path, default=HERE.parent / "tests" / "safety_frozen",
                    help="the frozen blind batches (a folder, or several separated by commas, measured as one set)")
    ap.add_argument("--by-length", action="store_true", help="also report each kind of the frozen set per message length")
    ap.add_argument("--by-layer", action="store_true", help="also say which layer each wrong answer on the frozen set "
                    "comes from (hard negatives: the rules or the semantic layer; misses: put to the LLM or not)")
    ap.add_argument("--batches", type=Path, default=HERE.parent / "tests" / "safety_batches", help="mesa's own tune/valid batches")
    ap.add_argument("--split", default="val", help="MESC split for false alarms (calibration uses a train sample)")
    ap.add_argument("--rules-only", action="store_true", help="the rule layer alone (no semantic layer)")
    ap.add_argument("--reader", choices=("default", "large"), default="default",
                    help="the semantic layer's reader: the default (MiniLM) or the opt-in pair (with all-mpnet-base-v2)")
    ap.add_argument("--show", action="store_true", help="list every wrong message and MESC false alarm")
    ap.add_argument("--calibrate", action="store_true", help="choose the semantic thresholds on the tuning batch")
    ap.add_argument("--rebuild-bank", action="store_true", help="recompute mesa/safety/data/exemplars.npz")
    ap.add_argument("--sizes", action="store_true", help="also time the rule layer on 10 KB, 100 KB and 1 MB")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    ap.add_argument("--time-against", type=Path, default=None,
                    help="also time the semantic layer with this classifier.npz beside the packaged one (interleaved)")
    args = ap.parse_args(argv)

    if args.rebuild_bank:
        rebuild_bank()
        return 0
    policy = SafetyPolicy(semantic=False if args.rules_only else args.reader)
    start = time.perf_counter()
    policy.assess_local("hello")  # loads the semantic layer
    layers = "rules" if args.rules_only else f"rules + semantic ({args.reader} reader)"
    print(f"layers: {layers}; load {time.perf_counter() - start:.2f} s")
    if args.calibrate:
        sample = []
        if args.mesc_csv:
            sample = random.Random(7).sample(mesc_client_turns(args.mesc_csv, "train"), 800)
        calibrate(policy, load_batch(args.batches / "tune.jsonl"), sample)
        return 0
    figures: dict = {}
    folders = [Path(part) for part in str(args.frozen).split(",")]
    present = [folder for folder in folders if folder.is_dir() and list(folder.glob("*.jsonl"))]
    if present:
        rows = [row for folder in present for row in load_batch(folder)]
        name = f"frozen blind set ({', '.join(map(str, present))})"
        figures["frozen"] = show_batch(name, rows, policy, args.show, args.by_length, args.by_layer)["groups"]
    for folder in folders:
        if folder not in present:
            print(f"\n(no frozen batches at {folder}: skipped)")
    for name in ("valid", "tune"):
        path = args.batches / f"{name}.jsonl"
        if path.exists():
            label = "own validation batch (never tuned on)" if name == "valid" else "own tuning batch (tuned on: reference only)"
            figures[name] = show_batch(label, load_batch(path), policy, args.show)["groups"]
    if args.mesc_csv:
        turns = mesc_client_turns(args.mesc_csv, args.split)
        alarms, times, asks = timed_mesc(policy, turns, args.show)
        ms = sorted(1000 * wall for wall, _ in times)
        cpu_ms = sorted(1000 * cpu for _, cpu in times)
        median, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
        cpu_median, cpu_p95 = statistics.median(cpu_ms), cpu_ms[int(0.95 * (len(cpu_ms) - 1))]
        print(f"\n== MESC {args.split} client turns: {len(turns)} ==")
        print(f"  false-alarm rate {100 * alarms / len(turns):.2f} % ({alarms}/{len(turns)})   (goal <= 2 %)")
        print(f"  time added by the non-LLM layers per turn: median {median:.1f} ms, p95 {p95:.1f} ms wall clock   (goal <= 20 ms median)")
        print(f"  the same as CPU time of the assessing thread: median {cpu_median:.1f} ms, p95 {cpu_p95:.1f} ms "
              f"(less sensitive to other processes on a shared machine; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"  turns that would ask the LLM judgement (default grounded policy): {100 * asks / len(turns):.1f} % ({asks})")
        figures["mesc"] = {
            "turns": len(turns), "false_alarms": alarms, "median_ms": median, "p95_ms": p95,
            "cpu_median_ms": cpu_median, "cpu_p95_ms": cpu_p95, "llm_asked": asks,
        }
        if args.time_against:
            compare_time(turns, args.time_against)
    if args.sizes:
        print("\n== rule layer time by message size (every character read) ==")
        sentence = "Work was long today and the bus was late again, so I read a book on the way home. "
        for size in (10_000, 100_000, 1_000_000):
            text = (sentence * (size // len(sentence) + 1))[:size]
            start, cpu = time.perf_counter(), time.thread_time()
            policy.engine.assess(text)
            print(f"  {size // 1000:>5} KB: {time.perf_counter() - start:.2f} s wall clock, {time.thread_time() - cpu:.2f} s CPU")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
