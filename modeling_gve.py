# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""GVE model: the Qwen2.5-VL backbone, pooled at GVE's pooling token, with no language-model head.

Both Qwen2.5-VL checkpoint layouts load into it: transformers 5.x (`model.language_model.*`,
`model.visual.*`) as they are, and the legacy one (`model.layers.*`, `visual.*`) through a key
mapping given to `from_pretrained`. A `lm_head` in the checkpoint is ignored. Loading fails loudly
when the checkpoint does not cover the whole backbone.
"""

import math
import queue
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionPatchEmbed,
    Qwen2_5_VLModel,
    Qwen2_5_VLPreTrainedModel,
    Qwen2_5_VLVisionAttention,
    apply_rotary_pos_emb_vision,
    eager_attention_forward,
)

from .configuration_gve import HUB_KWARGS, GVEConfig
from .processing_gve import worker_count, worker_pool

# Custom model classes skip transformers' built-in key conversions, so the legacy layout is mapped
# at load time: `visual.*` -> `model.visual.*`, `model.*` (the language model) ->
# `model.language_model.*`. Keys already in the 5.x layout match neither pattern.
LEGACY_KEY_MAPPING = {
    r"^visual\.": "model.visual.",
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
}


class GVEVisionPatchEmbed(Qwen2_5_VisionPatchEmbed):
    """The stock patch embedding, computed as one matrix product.

    Its Conv3d has stride equal to its kernel, so each output is a flattened patch times the flattened
    kernel; a Conv3d computes the same several times slower on CPUs (and in bf16 on GPUs).
    """

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.proj.weight.flatten(1)
        return F.linear(hidden_states.to(weight.dtype).view(-1, weight.shape[1]), weight)


class GVEVisionAttention(Qwen2_5_VLVisionAttention):
    """The stock vision attention, with all windows (or frames) of one length in one attention call.

    Outside flash-attention, transformers attends to each window of the vision tower separately: for a
    video, hundreds of small calls per block. flash-attention's variable-length kernel does them in one;
    this does the same for sdpa and eager attention by batching the windows of equal length, which
    gives the same result. Other attention implementations keep the stock code.
    """

    # most attention scores (windows x heads x length^2) per call, for the implementations that store them
    max_scores_per_call = 1 << 28

    def forward(
        self,
        hidden_states: torch.Tensor,
        cu_seqlens: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        max_seqlen: int | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        implementation = self.config._attn_implementation
        if implementation not in ("sdpa", "eager") or position_embeddings is None:
            return super().forward(hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        seq_length = hidden_states.shape[0]
        qkv = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        query, key = apply_rotary_pos_emb_vision(qkv[0], qkv[1], *position_embeddings)
        value = qkv[2]
        output = torch.empty_like(value)
        lengths = cu_seqlens[1:] - cu_seqlens[:-1]
        for length in lengths.unique().tolist():
            starts = cu_seqlens[:-1][lengths == length]
            per_call = max(1, self.max_scores_per_call // (self.num_heads * length * length))
            for group in starts.split(per_call):
                index = (group[:, None] + torch.arange(length, device=group.device)).flatten()
                q, k, v = (x[index].unflatten(0, (len(group), length)).transpose(1, 2) for x in (query, key, value))
                out, _ = attention(
                    self, q, k, v, attention_mask=None, scaling=self.scaling, dropout=0.0, is_causal=False, **kwargs
                )
                output[index] = out.flatten(0, 1)
        return self.proj(output.reshape(seq_length, -1))


class GVEModel(Qwen2_5_VLPreTrainedModel):
    r"""
    GVE embedding model.

    `forward` returns the backbone's `last_hidden_state` (after the final norm) and `pooler_output`,
    the L2-normalised hidden state at the last attended position, which [`GVEProcessor`] fills with
    the pooling token. `encode` embeds raw inputs end to end.
    """

    config: GVEConfig
    config_class = GVEConfig
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: GVEConfig):
        super().__init__(config)
        self.model = Qwen2_5_VLModel(config)
        # Same parameters, faster forward passes (see each class).
        vision = config.vision_config
        self.model.visual.patch_embed = GVEVisionPatchEmbed(
            vision.patch_size, vision.temporal_patch_size, vision.in_channels, vision.hidden_size
        )
        for block in self.model.visual.blocks:
            block.attn = GVEVisionAttention(vision)
        self._processor = None
        self._hub_kwargs = {}
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a checkpoint, refusing one that leaves any backbone weight uninitialised."""
        output_loading_info = kwargs.pop("output_loading_info", False)
        kwargs["key_mapping"] = {**LEGACY_KEY_MAPPING, **(kwargs.get("key_mapping") or {})}
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        if info["missing_keys"]:
            missing = sorted(info["missing_keys"])
            raise ValueError(
                f"The checkpoint at {pretrained_model_name_or_path!r} does not cover the GVE backbone: "
                f"{len(missing)} weight(s) missing, e.g. {missing[:5]}. Refusing to run with random weights."
            )
        model._hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        return (model, info) if output_loading_info else model

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        if (
            input_ids is not None
            and mm_token_type_ids is None
            and (pixel_values is not None or pixel_values_videos is not None)
        ):
            # Without it Qwen2.5-VL silently falls back to 1-D positions for the vision tokens.
            raise ValueError("mm_token_type_ids is required with images or videos; pass the processor's full output")
        kwargs.setdefault("use_cache", False)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            mm_token_type_ids=mm_token_type_ids,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        last = self._last_positions(attention_mask, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if input_ids is not None and not bool((input_ids[rows, last] == self.config.pooling_token_id).all()):
            warnings.warn(
                f"GVE embeddings are read at the pooling token (id {self.config.pooling_token_id}) appended after "
                "the generation prompt, but some inputs do not end with it: use GVEProcessor, or append it.",
                UserWarning,
                stacklevel=2,
            )
        pooled = F.normalize(hidden[rows, last].float(), p=2, dim=-1)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=pooled,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @staticmethod
    def _last_positions(attention_mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
        """Index of each row's last attended token (the last column when padding is on the left)."""
        length = hidden.shape[1]
        if attention_mask is None:
            return torch.full((hidden.shape[0],), length - 1, device=hidden.device)
        return length - 1 - attention_mask.flip(-1).to(torch.long).argmax(-1).to(hidden.device)

    # ------------------------------------------------------------------ end to end

    @property
    def processor(self):
        """The checkpoint's [`GVEProcessor`], loaded on first use."""
        if self._processor is None:
            if not self.name_or_path:
                raise ValueError(
                    "This model was not loaded with from_pretrained, so it has no processor to load; "
                    "set `model.processor = GVEProcessor.from_pretrained(...)` first."
                )
            self._processor = AutoProcessor.from_pretrained(
                self.name_or_path, trust_remote_code=True, **self._hub_kwargs
            )
        return self._processor

    @processor.setter
    def processor(self, value) -> None:
        self._processor = value

    def encode(
        self,
        inputs: Any,
        instruction: str | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
        *,
        on_error: str = "raise",
        **kwargs: Any,
    ) -> "torch.Tensor | EncodeResult":
        """Embed inputs; returns a float32 `[N, D]` tensor of L2-normalised embeddings on the CPU, in input order.

        Args:
            inputs: one input, or a list or any iterable of them (a generator is read as it goes). An
                input is a text, a PIL image, an image or video path or URL, a list of frames (one
                video), or a dict with any of `text`, `image` and `video` (a composed query),
                optionally with its own `instruction`, controls and `video_start`/`video_end` (seconds).
            instruction: the system instruction (default: the checkpoint's `default_instruction`).
                Set a task instruction for queries; leave documents on the default.
            batch_size: most inputs per forward pass.
            show_progress_bar: show a progress bar (default: when there is more than one batch).
            max_batch_tokens: most tokens (padding included) per forward pass; inputs are grouped by
                length so that little is padding.
            num_workers: threads that read, decode and preprocess inputs while the model runs
                (default: the number of CPU cores, at most 8).
            on_error: "raise" (default) stops at the first input that cannot be embedded, with its
                position; "skip" leaves such inputs out and returns an `EncodeResult` that lists them.
            max_length: maximum prompt length in tokens (default: the config's `max_length`); longer text
                is cut, keeping the template's tail with the pooling token.
            limits: what reading media may cost: a `MediaLimits`, or a dict of its fields (download
                hosts, size caps, deadline, decoding budget; default: the `GVE_*` environment variables,
                else `MediaLimits`' defaults).
            fps, max_frames, min_pixels, max_pixels, total_pixels: video sampling (defaults from the
                config: fps 1.0, at most 8 frames of at most 200·28·28 pixels).
            image_min_pixels, image_max_pixels: image resolution. Each control has a range
                (`processing_gve.CONTROL_RANGES`); a value outside it raises `ValueError`.

        `max_batch_tokens`, `num_workers`, `max_length`, `limits` and the controls are keyword arguments of
        `encode_stream`, which this collects.
        """
        if isinstance(inputs, (str, dict)) or not isinstance(inputs, Iterable) or _is_image(inputs):
            inputs = [inputs]
        indices, rows, errors = [], [], {}
        stream = self.encode_stream(
            inputs, instruction, batch_size=batch_size, show_progress_bar=show_progress_bar, on_error=on_error, **kwargs
        )
        for index, output in stream:
            if isinstance(output, Exception):
                errors[index] = str(output)
            else:
                indices.append(index)
                rows.append(output)
        embeddings = torch.stack(rows) if rows else torch.empty(0, self.config.text_config.hidden_size)
        return EncodeResult(embeddings, indices, errors) if on_error == "skip" else embeddings

    @torch.inference_mode()
    def encode_stream(
        self,
        inputs: Iterable[Any],
        instruction: str | None = None,
        *,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
        max_batch_tokens: int = 16384,
        num_workers: int | None = None,
        on_error: str = "raise",
        max_length: int | None = None,
        limits: Any = None,
        **controls: Any,
    ) -> Iterator[tuple[int, "torch.Tensor | Exception"]]:
        """Embed an iterable of inputs as it is read; yields `(position, embedding)` in input order.

        The pipeline behind `encode` (same arguments). Worker threads read, decode and preprocess
        the inputs ahead of the model (qwen-vl-utils and the processor, in order of submission);
        each window of `2 * batch_size` read inputs is sorted by length and cut into the batches of at
        most `batch_size` inputs and `max_batch_tokens` tokens (padding included) that waste the least
        padding. Memory stays bounded by a few windows, however long the iterable. With
        `on_error="skip"`, an input that cannot be embedded yields `(position, GVEInputError)` instead
        of an embedding.
        """
        from tqdm.auto import tqdm

        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        processor = self.processor
        max_length = processor.check_call(max_length, controls)
        budget = processor.decode_budget(limits)  # the processor's own classes (its module may be another copy)
        if max_batch_tokens < max_length:
            raise ValueError(f"max_batch_tokens ({max_batch_tokens}) must be at least max_length ({max_length})")
        window = 2 * batch_size
        total = len(inputs) if hasattr(inputs, "__len__") else None
        progress = tqdm(
            total=total, desc="Embedding", unit="input", disable=_quiet(show_progress_bar, total, batch_size)
        )

        def load(index: int, item: Any):
            try:
                loaded = processor.load(
                    item, instruction, position=index, budget=budget, max_length=max_length, **controls
                )
                processor.featurize(loaded, max_length, release_media=True)
                return loaded
            except ValueError as error:  # GVEInputError, and bad controls
                if on_error == "raise":
                    raise
                return error

        pending: deque = deque()
        source = enumerate(inputs)
        workers, threads = worker_count(num_workers), torch.get_num_threads()

        def model_threads() -> int:
            """Intra-op threads for the next forward pass: those the busy workers leave to it.

            On a CPU the workers and the forward pass share the cores, and intra-op threads beyond the
            free cores only wait for each other: on 2 cores with two decoding workers, a forward pass
            kept at 2 threads embedded 41.6 inputs a second where this gives 47.3
            (benchmarks/RESULTS.md). With the workers idle (texts, or the end of the input) the forward
            pass takes every thread.
            """
            busy = min(workers, sum(not future.done() for _, future in pending))
            return max(1, threads - busy)

        with worker_pool(workers) as pool:

            def refill() -> None:
                while len(pending) < batch_size:
                    try:
                        index, item = next(source)
                    except StopIteration:
                        return
                    pending.append((index, pool.submit(load, index, item)))

            try:
                refill()
                while pending:
                    chunk = []
                    while pending and len(chunk) < window:
                        index, future = pending.popleft()
                        chunk.append((index, future.result()))
                        refill()  # keep the workers busy while the model runs on this window
                    outputs = dict(
                        self._embed_window(
                            [entry for entry in chunk if not isinstance(entry[1], Exception)],
                            batch_size,
                            max_batch_tokens,
                            max_length,
                            model_threads,
                        )
                    )
                    for index, loaded in chunk:
                        yield index, outputs.get(index, loaded)
                    progress.update(len(chunk))
            finally:
                for _, future in pending:
                    future.cancel()
                progress.close()

    @torch.inference_mode()
    def encode_segments(
        self,
        video: str,
        window: float | None = None,
        stride: float | None = None,
        instruction: str | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
        *,
        max_batch_tokens: int = 16384,
        max_length: int | None = None,
        limits: Any = None,
        **controls: Any,
    ) -> "VideoSegments":
        """Embed a long video as consecutive time windows: one embedding per window, with its (start, end).

        `window` (seconds, default `max_frames / fps`: the span GVE samples at its full rate) and `stride`
        (default half the window: `processing_gve.segment_settings`) cut the video as
        `processing_gve.segment_spans` does; the last window ends at the video's end. Each window's embedding is
        that of `{"video": video, "video_start": start, "video_end": end}` embedded alone, but the video is read
        once and decoded in one pass, in a thread ahead of the forward passes (`GVEProcessor.load_segments`), and
        memory holds a few windows at a time however long the video. `instruction`, `batch_size`,
        `max_batch_tokens`, `max_length`, `limits` and the video controls
        are `encode`'s.
        """
        from tqdm.auto import tqdm

        processor = self.processor
        max_length = processor.check_call(max_length, controls)
        if max_batch_tokens < max_length:
            raise ValueError(f"max_batch_tokens ({max_batch_tokens}) must be at least max_length ({max_length})")
        items = processor.load_segments(
            video, window, stride, instruction, limits=limits, max_length=max_length, **controls
        )

        def featurized() -> Iterator[Any]:
            for item in items:
                processor.featurize(item, max_length, release_media=True)
                yield item

        threads = torch.get_num_threads()
        spans, embeddings, chunk = [], {}, []
        progress = tqdm(desc="Embedding segments", unit="segment", disable=show_progress_bar is False)
        try:
            for item in _read_ahead(featurized(), 2 * batch_size):
                chunk.append((len(spans), item))
                spans.append(item.span)
                if len(chunk) == 2 * batch_size:
                    embeddings.update(
                        self._embed_window(chunk, batch_size, max_batch_tokens, max_length, lambda: max(1, threads - 1))
                    )
                    progress.update(len(chunk))
                    chunk = []
            embeddings.update(self._embed_window(chunk, batch_size, max_batch_tokens, max_length, lambda: threads))
            progress.update(len(chunk))
        finally:
            progress.close()
        return VideoSegments(spans, torch.stack([embeddings[index] for index in range(len(spans))]))

    def _embed_window(
        self, loaded: list, batch_size: int, max_batch_tokens: int, max_length: int, threads: Callable[[], int]
    ):
        """Embed featurized inputs, shortest first, in the batches that waste the least padding.

        On a CPU each forward pass runs with `threads()` intra-op threads.
        """
        ordered = sorted(loaded, key=lambda entry: entry[1].features["input_ids"].shape[1])
        lengths = [item.features["input_ids"].shape[1] for _, item in ordered]
        for start, end in _cut_batches(lengths, batch_size, max_batch_tokens):
            batch = self._to_device(
                self.processor.collate([item for _, item in ordered[start:end]], max_length=max_length)
            )
            with _intra_op_threads(threads() if self.device.type == "cpu" else None):
                embeddings = self(**batch).pooler_output.cpu()
            yield from zip((index for index, _ in ordered[start:end]), embeddings, strict=True)

    def _to_device(self, batch) -> dict:
        """Move model inputs to the model's device, with pixels in its dtype."""
        moved = {
            key: value.to(self.device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()
        }
        for key in ("pixel_values", "pixel_values_videos"):
            if key in moved:
                moved[key] = moved[key].to(self.dtype)
        return moved


@dataclass
class EncodeResult:
    """What `encode(..., on_error="skip")` returns."""

    embeddings: torch.Tensor  # [len(indices), D], the inputs that could be embedded
    indices: list[int]  # the input position of each row
    errors: dict[int, str]  # input position -> why it could not be embedded


@dataclass
class VideoSegments:
    """What `encode_segments` returns: the windows' time spans and their embeddings, in order."""

    spans: list[tuple[float, float]]  # (start, end) in seconds
    embeddings: torch.Tensor  # [len(spans), D], L2-normalised

    def best(self, query: torch.Tensor) -> tuple[tuple[float, float], float]:
        """The span whose embedding is closest to `query` (a [D] embedding), with its cosine: the video's score
        for that query is its best segment's."""
        scores = self.embeddings @ query.to(self.embeddings.dtype)
        top = int(scores.argmax())
        return self.spans[top], float(scores[top])


def _read_ahead(items: Iterator[Any], size: int) -> Iterator[Any]:
    """`items`, produced by a thread of their own up to `size` ahead of the consumer, so that reading them (a
    video's decoding) overlaps what the consumer does (forward passes). An error in the thread is raised to the
    consumer; a consumer that stops early stops the thread, which closes `items`."""
    ahead: queue.Queue = queue.Queue(maxsize=size)
    stop, done = threading.Event(), object()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, which raises it
            put(error)
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="gve-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# The fixed cost of one forward pass, counted in padded tokens: `_cut_batches` starts another batch
# only where that saves more padding than this. On a CPU any value from 100 to 300 cut the padding of
# benchmarks/RESULTS.md's corpus from 41% to 3-4% and its forward time by 40%; on a GPU a 3B forward
# pass's fixed cost (kernel launches) is estimated to be of the same order (not yet measured).
BATCH_COST_TOKENS = 256


def _cut_batches(lengths: list[int], batch_size: int, max_batch_tokens: int) -> list[tuple[int, int]]:
    """Cut ascending prompt lengths into consecutive `(start, end)` batches.

    Each batch has at most `batch_size` rows and `max_batch_tokens` tokens padded to its longest
    (a single row is always allowed); among such cuts this one has the fewest padded tokens plus
    `BATCH_COST_TOKENS` a batch (dynamic programming over the sorted lengths).
    """
    count = len(lengths)
    best = [0] + [math.inf] * count  # best[end]: least cost of lengths[:end]
    start_of = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(end - 1, max(0, end - batch_size) - 1, -1):
            padded = (end - start) * lengths[end - 1]
            if padded > max_batch_tokens and end - start > 1:
                break  # more rows only pad more
            cost = best[start] + padded + BATCH_COST_TOKENS
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    cuts, end = [], count
    while end:
        cuts.append((start_of[end], end))
        end = start_of[end]
    return cuts[::-1]


@contextmanager
def _intra_op_threads(count: int | None) -> Iterator[None]:
    """Run this thread's torch operations on `count` intra-op threads (None: leave them as they are)."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _quiet(show_progress_bar: bool | None, total: int | None, batch_size: int) -> bool:
    """Whether to hide the progress bar (by default it shows when there is more than one batch)."""
    if show_progress_bar is not None:
        return not show_progress_bar
    return total is not None and total <= batch_size


def _is_image(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image)


__all__ = ["GVEModel", "EncodeResult", "VideoSegments", "GVEVisionAttention", "GVEVisionPatchEmbed"]
