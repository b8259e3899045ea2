"""The retrieval tasks of the synthetic data and their query instructions: the one home for them, used by the
training and written into each test split's dataset.json. Documents (videos) use the model's default instruction."""

import functools
from collections.abc import Mapping
from types import MappingProxyType

from gve_tools.repo import query_instruction

TRAINING_TASKS = ("TXT", "CMP", "VIS", "S", "T", "PR", "LC")  # the moment tasks (MR, VCMR) are only measured


@functools.cache
def instructions() -> Mapping[str, str]:
    """The query instruction of each task, by task name (TXT, CMP, VIS, S, T, PR, LC, MR, VCMR).

    TXT, S, T and the moment tasks use GVE's default query instruction, read from the remote code on the first
    call (which imports transformers), so that importing the generator stays light.
    """
    query = query_instruction()
    return MappingProxyType(
        {
            "TXT": query,
            "CMP": "Find the video that shows the object in the image, changed as the text says.",
            "VIS": "Find the video that shows the same content as the given image or video.",
            "S": query,
            "T": query,
            "PR": "Find the video that contains the moment described by the query.",
            "LC": "Find the long video whose events match the description, in order.",
            "MR": query,
            "VCMR": query,
        }
    )
