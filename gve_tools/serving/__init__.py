"""Serving GVE to many users at once: a Ray Serve deployment with cross-request batching (`app`), its model side
(`engine`), its settings and their defaults (`settings`), the OpenAI schema (`openai`), and a load test that checks
every answer against `model.encode` (`load_test`). `scripts/serve.py` and `scripts/load_test.py` are their commands.

Nothing here imports Ray at package import: `app` does, the rest do not.
"""
