"""The tooling around the GVE Hub repository: everything here runs on a developer's or a pipeline's machine and is
never pushed to the Hub (the remote code at the repository's root is what the Hub serves).

Shared by every command:
    repo          the repository and the files of a GVE folder: paths, the remote code, the generated configs
    models        the one loader of a GVE checkpoint for the tooling
    quantization  the weight settings (float, int8, int4): their quantization configs and their memory
    vectors       the vector formats (float32, int8, binary, re-scoring, truncation): scoring and FAISS indexes
    identity      what identifies a checkpoint's embeddings, for every cache
    errors        the base of the tooling's exceptions
    text          small text helpers and command-line help
    loopback      servers on 127.0.0.1: a free port, a static file server, waiting for and stopping a child server

By role (each command in `scripts/` is an entry point of a few lines into one of them):
    video_search  the main job (`make demo`): search a folder of videos
    evaluation    UVRB-style evaluation: the dataset format, metrics, the embedding cache, the run
    corpus        corpus embedding on Ray Data: manifest, shards, the pipeline, the FAISS index and its search
    synthetic     synthetic clips with known content: the world, held-out rules, test splits, training pairs
    media         synthetic images and videos for tests, the demo and the benchmarks
    training      training the bundled tiny GVE; tiny: a tiny random GVE folder for the tests
    checkpoint    building a verified GVE folder from a LoRA, and pushing it to the Hub
    card          the model card, in the repository's and the Hub's renderings
    benchmark     throughput, hostile inputs' memory and time, compact vectors and weights (memory and storage)
    vllm_parity   vLLM against `model.encode`
    generate      every derived file of the repository (`make generate`)
"""

import logging

# torchao 0.18 (the CPU backend of int8 weights, `quantization`) registers Enum classes with torch's pytree, which
# torch 2.14 logs as deprecated each time transformers imports torchao (at every model import): harmless, not ours
# to fix, and noise in every command's output. Only that message is dropped.
logging.getLogger("torch.utils._pytree").addFilter(lambda record: "is an Enum subclass" not in record.getMessage())
