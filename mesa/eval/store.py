"""Where trained models live, and how ``SupportAgent(classifier="auto")`` finds them.

``mesa train --corpus mesc`` writes ``$MESA_CACHE_DIR/models/<taxonomy>.npz``
(default ``~/.cache/mesa/models/mesc.npz``; file 0600, folder 0700, no pickle).
:func:`find_classifier` loads the model for a taxonomy when there is one, and
refuses a model whose labels are not the taxonomy's: a label outside the
taxonomy must never reach the graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesa.errors import ClassifierFileError, ClassifierMismatchError, MesaError
from mesa.taxonomy import Taxonomy, get_taxonomy

if TYPE_CHECKING:
    from mesa.eval.classifier import SupervisedClassifier

__all__ = [
    "ClassifierFileError",
    "ClassifierMismatchError",
    "classifier_path",
    "find_classifier",
    "resolve_classifier",
]


def classifier_path(taxonomy: Taxonomy | str) -> Path:
    """Where the trained model of ``taxonomy`` is kept: ``$MESA_CACHE_DIR/models/<name>.npz``."""
    from mesa.cache import default_cache_dir

    name = get_taxonomy(taxonomy).name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return default_cache_dir() / "models" / f"{safe}.npz"


def check_labels(classifier: SupervisedClassifier, taxonomy: Taxonomy, source: Any = "the classifier") -> None:
    """Raise :class:`ClassifierMismatchError` unless every label set the model predicts is the taxonomy's."""
    for which, head in classifier.heads.items():
        expected = set(taxonomy.names(which))
        stored = set(classifier.taxonomy.names(which))
        unknown = sorted(set(head.classes) - expected)
        if unknown or stored != expected:
            raise ClassifierMismatchError(
                f"{source} was trained for taxonomy {classifier.taxonomy.name!r}; its {which} labels "
                f"{sorted(stored | set(head.classes))} are not those of taxonomy {taxonomy.name!r} "
                f"{sorted(expected)}. Retrain it: mesa train --taxonomy {taxonomy.name} ..."
            )


def find_classifier(taxonomy: Taxonomy | str, *, path: str | Path | None = None) -> SupervisedClassifier | None:
    """The trained model for ``taxonomy`` (from :func:`classifier_path` or ``path``), or ``None`` if there is none.

    Raises :class:`ClassifierMismatchError` when the file holds a model for other labels.
    """
    from mesa.eval.classifier import SupervisedClassifier

    tax = get_taxonomy(taxonomy)
    file = Path(path) if path is not None else classifier_path(tax)
    if not file.is_file():
        return None
    classifier = SupervisedClassifier.load(file)
    check_labels(classifier, tax, source=file)
    return classifier


def resolve_classifier(spec: Any, taxonomy: Taxonomy | str) -> Any:
    """``SupportAgent``'s ``classifier=``: ``"auto"`` finds the trained model, ``None`` disables, else as given.

    With ``"auto"``, a stored model that cannot be used (wrong labels, unreadable)
    is skipped with a warning: the agent still works, without the model.
    """
    if not (isinstance(spec, str) and spec == "auto"):
        return spec
    try:
        return find_classifier(taxonomy)
    except (MesaError, OSError, ValueError, KeyError) as exc:
        warnings.warn(f"classifier='auto': not using {classifier_path(taxonomy)}: {exc}", stacklevel=3)
        return None
