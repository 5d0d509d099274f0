"""Evaluation and quality levers: dataset loaders, metrics, runner, report, retrieval, the small model, export.

- Datasets: :func:`load_mesc`, :func:`load_esconv`, :func:`load_corpus` turn a
  corpus (local file or downloaded) into turn-level :class:`Example` objects.
- Metrics: :func:`classification_metrics` (scikit-learn), :func:`bleu2`
  (sacrebleu), :func:`rouge_l` (rouge-score), :func:`distinct_n`.
- Runner: :func:`arun_predictor` / :func:`run_predictor` evaluate a
  ``SupportAgent``, a compiled graph or a classifier, concurrently and resumably,
  under the live protocol (``history="predicted"``: earlier user turns carry the
  predictor's own labels) or the gold one (:mod:`mesa.eval.protocol`).
- Stored models: :func:`find_classifier` loads what ``mesa train`` wrote to
  :func:`classifier_path` (``SupportAgent(classifier="auto")``).
- Report: :func:`score_run`, :func:`write_report`, :func:`markdown_table`.
- Quality levers for any model: :class:`EmbeddingRetriever` (few-shot
  demonstrations), :class:`SupervisedClassifier` (the small supervised model,
  as the step or as a prior), :func:`export_chat` (SMES chat fine-tuning data).

Importing this package is cheap: scikit-learn, sentence-transformers and
matplotlib load only when a function needs them (install ``mesa-esc[eval]``).
"""

from mesa.eval.classifier import MajorityClassifier, SupervisedClassifier
from mesa.eval.datasets import (
    Dialogue,
    Example,
    Utterance,
    dialogues_to_examples,
    download,
    esconv_split,
    load_corpus,
    load_dialogues,
    load_esconv,
    load_mesc,
    split_clues,
    taxonomy_from_examples,
)
from mesa.eval.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder, default_embedder
from mesa.eval.export import example_to_chat, export_chat, smes_system_prompt
from mesa.eval.metrics import NONE_LABEL, bleu2, classification_metrics, distinct_n, generation_metrics, rouge_l
from mesa.eval.protocol import HISTORY_PROTOCOLS, with_predicted_history
from mesa.eval.report import distribution_table, markdown_table, protocol_table, score_run, write_report
from mesa.eval.retrieval import EmbeddingRetriever, render_context
from mesa.eval.runner import (
    AgentPredictor,
    ClassifierPredictor,
    GraphPredictor,
    Predictor,
    RunResult,
    arun_predictor,
    run_predictor,
    select_examples,
)
from mesa.eval.store import ClassifierFileError, ClassifierMismatchError, classifier_path, find_classifier

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "HISTORY_PROTOCOLS",
    "NONE_LABEL",
    "AgentPredictor",
    "ClassifierFileError",
    "ClassifierMismatchError",
    "ClassifierPredictor",
    "Dialogue",
    "Embedder",
    "EmbeddingRetriever",
    "Example",
    "GraphPredictor",
    "MajorityClassifier",
    "Predictor",
    "RunResult",
    "SupervisedClassifier",
    "Utterance",
    "arun_predictor",
    "bleu2",
    "classification_metrics",
    "classifier_path",
    "default_embedder",
    "dialogues_to_examples",
    "distinct_n",
    "distribution_table",
    "download",
    "esconv_split",
    "example_to_chat",
    "export_chat",
    "find_classifier",
    "generation_metrics",
    "load_corpus",
    "load_dialogues",
    "load_esconv",
    "load_mesc",
    "markdown_table",
    "protocol_table",
    "render_context",
    "rouge_l",
    "run_predictor",
    "score_run",
    "select_examples",
    "smes_system_prompt",
    "split_clues",
    "taxonomy_from_examples",
    "with_predicted_history",
    "write_report",
]
