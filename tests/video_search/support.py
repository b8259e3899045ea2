"""Helpers of the video search's tests."""

from gve_tools.repo import query_instruction


def brute_force(model, videos, queries):
    """Cosine scores of each query against each video, straight from `model.encode`."""
    documents = model.encode([str(path) for path in videos])
    return model.encode([query.as_input() for query in queries], instruction=query_instruction()) @ documents.T
