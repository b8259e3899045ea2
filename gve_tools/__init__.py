"""The tooling around the GVE Hub repository: everything here runs on a developer's or a pipeline's machine and is
never pushed to the Hub (the remote code at the repository's root is what the Hub serves).

Shared by every command:
    repo      the repository and the files of a GVE folder: paths, the remote code, the sentence-transformers files
    models    loading a GVE checkpoint for the tooling
    identity  what identifies a checkpoint's embeddings, for every cache
    errors    the base of the tooling's own exceptions
    text      small text helpers and command-line help

The commands' modules are listed in the README's Development section; each command in `scripts/` is a thin
entry point over one of them.
"""
