"""Making a GVE checkpoint folder and publishing it.

build  merge a LoRA (or repackage a merged checkpoint) into a complete folder, and verify it
push   upload a built folder's allowlisted files to the Hub
"""
