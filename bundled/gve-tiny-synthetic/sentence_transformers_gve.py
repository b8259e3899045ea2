# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""Sentence Transformers input module for GVE.

`SentenceTransformer("Alibaba-NLP/GVE-7B", trust_remote_code=True)` builds three modules from the
repo's `modules.json`:

0. `GVETransformer` (this file): GVE's preprocessing, then the GVE backbone's `last_hidden_state`;
1. sentence-transformers' `Pooling` with `pooling_mode="lasttoken"`: the pooling token's state;
2. sentence-transformers' `Normalize`.
"""

from typing import Any

from sentence_transformers.base.modules import Transformer

# sentence-transformers' per-modality processing kwargs -> GVE's controls (see GVEProcessor.prepare).
PROCESSING_KWARGS_TO_OPTIONS = {
    "video": {key: key for key in ("fps", "max_frames", "min_pixels", "max_pixels", "total_pixels")},
    "image": {"min_pixels": "image_min_pixels", "max_pixels": "image_max_pixels"},
    "text": {"max_length": "max_length"},
}


class GVETransformer(Transformer):
    """sentence-transformers' `Transformer` module with GVE's preprocessing.

    The stock module loads, runs and saves GVE as it is (through `AutoModel`/`AutoProcessor` with
    remote code); only `preprocess` is replaced, because the stock one cannot reproduce GVE's model
    inputs:

    - it decodes and samples videos with transformers' video loader, while GVE samples frames with
      qwen-vl-utils (fps 1.0, at most 8 frames of 200·28·28 pixels): other frames, other embeddings;
    - it orders a composed input's content as given, while GVE's prompt puts video, then image, then
      text, and it knows nothing of GVE's per-input controls, URL videos or input errors.

    This module hands the inputs to `GVEProcessor.prepare`, the same code path as `GVEModel.encode`.
    A prompt (`prompt=`, `prompt_name=`, `encode_query`) becomes the system instruction; no prompt,
    or an empty one, means the checkpoint's default instruction. Video and image controls can be set
    per call, e.g. `encode(..., processing_kwargs={"video": {"max_frames": 4}})`, or per input.
    """

    @property
    def modalities(self) -> list:
        return ["text", "image", "video", "message"]

    def preprocess(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        processing_kwargs: dict[str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Turn inputs into GVE model inputs with `GVEProcessor.prepare`."""
        if not inputs:
            return {}
        options = {}
        for modality, settings in self._merge_processing_kwargs(processing_kwargs).items():
            names = PROCESSING_KWARGS_TO_OPTIONS.get(modality)
            unknown = sorted(set(settings) - set(names or ()))
            if unknown:
                accepted = {name: sorted(keys) for name, keys in PROCESSING_KWARGS_TO_OPTIONS.items()}
                raise TypeError(f"GVE does not use processing_kwargs[{modality!r}] {unknown}; it accepts {accepted}")
            options.update({names[key]: value for key, value in settings.items() if value is not None})
        if kwargs.get("max_length") is not None:
            options["max_length"] = kwargs["max_length"]
        features = dict(self.processor.prepare(list(inputs), instruction=prompt or None, **options))
        features["modality"] = "message"
        return features
