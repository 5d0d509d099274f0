"""nade's 8 Plutchik emotion scores of each text in a JSON list, saved as an (n, 8) array (columns in name order).

Screening only (docs/evaluation.md, "A larger encoder"): nade is not a mesa dependency. Run it in its own venv::

    pip install nade==0.3.1
    python bench/nade_scores.py items.json nade.npy   # items.json from user_emotion_filter_cv.py ... texts
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from nade import Nade

with open(sys.argv[1], encoding="utf-8") as handle:
    texts = json.load(handle)
model = Nade()
start = time.time()
blocks = []
for i in range(0, len(texts), 500):
    scores = model.predict(texts[i : i + 500])
    names = sorted(scores)
    blocks.append(np.array([scores[name] for name in names], dtype=np.float64).T)
matrix = np.vstack(blocks)
print(names, matrix.shape, f"{time.time() - start:.1f} s", flush=True)
np.save(sys.argv[2], matrix)
