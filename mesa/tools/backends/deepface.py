"""Facial expression with deepface (its own emotion model and face detectors).

deepface runs on TensorFlow, PyTorch or ONNX Runtime (``engine``; by default
deepface picks the first installed of those, in that order) and downloads its
emotion weights on first use into ``$DEEPFACE_HOME/.deepface/weights``. With no
internet, put ``facial_expression_model_weights.{h5,pth,onnx}`` there (for the
engine in use) and pass ``home=``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, ClassVar

from mesa.tools.base import BackendError, FaceBackend, FaceEmotions, Images, MediaError, check_cancelled

__all__ = ["DEEPFACE_LABELS", "DeepFaceFace"]

DEEPFACE_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_ENGINES = ("tensorflow", "pytorch", "onnx")


class DeepFaceFace(FaceBackend):
    """deepface's facial-expression model with one of its face detectors.

    Settings: ``detector_backend`` (``"opencv"``; also ``"retinaface"``,
    ``"mtcnn"``, ``"ssd"``, ``"yunet"``, ... as deepface supports), ``engine``
    (``"tensorflow"``, ``"pytorch"``, ``"onnx"``: sets
    ``DEEPFACE_BACKEND_ENGINE`` for the process before deepface is imported),
    ``home`` (sets ``DEEPFACE_HOME``: where deepface keeps its weights),
    ``align`` (True), ``expand_percentage`` (0), ``faces`` (``"largest"`` or ``"all"``).
    """

    name = "deepface"
    extra: ClassVar[str] = "deepface"
    # deepface imports werkzeug without declaring it
    modules: ClassVar[tuple[str, ...]] = ("deepface", "cv2", "werkzeug")
    distributions: ClassVar[tuple[str, ...]] = ("deepface",)

    def __init__(
        self,
        *,
        detector_backend: str = "opencv",
        engine: str | None = None,
        home: str | Path | None = None,
        align: bool = True,
        expand_percentage: int = 0,
        faces: str = "largest",
    ) -> None:
        super().__init__(
            detector_backend=detector_backend,
            engine=engine,
            home=str(home) if home is not None else None,
            align=align,
            expand_percentage=expand_percentage,
            faces=faces,
        )
        if faces not in ("largest", "all"):
            raise ValueError("faces must be 'largest' or 'all'")
        if engine is not None:
            engine = engine.lower()
            if engine not in _ENGINES:
                raise BackendError(f"deepface engine must be one of {_ENGINES}, not {engine!r}")
            utils = sys.modules.get("deepface.commons.backend_utils")
            current = getattr(utils, "_backend_engine", None) if utils else None
            if current is not None and current != engine:
                raise BackendError(f"deepface already runs on {current!r} in this process; cannot switch to {engine!r}")
            os.environ["DEEPFACE_BACKEND_ENGINE"] = engine
        if home is not None:
            os.environ["DEEPFACE_HOME"] = str(home)

    def cache_settings(self) -> dict[str, Any]:
        keep = ("detector_backend", "engine", "align", "expand_percentage", "faces")
        return {"version": self.version, **{k: str(self.settings.get(k)) for k in keep}}

    def _load(self) -> Any:
        from deepface import DeepFace

        return DeepFace

    def recognize(self, images: Images) -> FaceEmotions:
        import cv2
        import numpy as np

        images = Images.coerce(images)
        if len(images) == 0:
            raise MediaError("no images to analyse")
        s = self.settings
        per_frame: list[dict[str, Any]] = []
        with self._lock:
            deepface = self.model
            for index, frame in enumerate(images.frames):
                check_cancelled()  # between frames: a timed-out call stops here
                array = np.asarray(frame)
                if array.dtype != np.uint8:
                    array = np.clip(array, 0, 255).astype(np.uint8)
                bgr = (
                    cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
                    if array.ndim == 2
                    else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
                )
                try:
                    found = deepface.analyze(
                        img_path=bgr,
                        actions=["emotion"],
                        detector_backend=s["detector_backend"],
                        enforce_detection=True,
                        align=s["align"],
                        expand_percentage=s["expand_percentage"],
                        silent=True,
                    )
                except ValueError as exc:
                    if "face could not be detected" in str(exc).lower():
                        continue
                    raise
                if not found:
                    continue
                if s["faces"] == "largest":
                    found = [max(found, key=lambda f: f["region"]["w"] * f["region"]["h"])]
                probs = {
                    label: float(np.mean([float(f["emotion"][label]) for f in found])) / 100.0
                    for label in DEEPFACE_LABELS
                }
                region = found[0]["region"]
                per_frame.append(
                    {
                        "time": round(float(images.times[index]) if index < len(images.times) else float(index), 3),
                        "box": [int(region["x"]), int(region["y"]), int(region["w"]), int(region["h"])],
                        "faces": len(found),
                        "scores": {k: round(v, 4) for k, v in probs.items()},
                    }
                )
        if not per_frame:
            raise MediaError(f"no face found in {len(images)} frame(s)")
        mean = {label: round(float(np.mean([f["scores"][label] for f in per_frame])), 4) for label in DEEPFACE_LABELS}
        scores = dict(sorted(mean.items(), key=lambda kv: -kv[1]))
        result = FaceEmotions(scores=scores, frames=len(images), frames_with_face=len(per_frame), per_frame=per_frame)
        return self._stamp(result)  # type: ignore[return-value]
