"""GVE video search in the browser: a Gradio app (also this folder's Hugging Face Space) over the main job's search.

It loads a GVE checkpoint (the bundled tiny GVE by default; --model or GVE_MODEL for any other: a local folder or a
Hub id), indexes a folder of videos (the bundled samples by default; --videos or GVE_VIDEOS) with the main job's
index and cache (gve_tools.video_search), and answers a text, an image, a video or a composed query (text with an
image or a video) with the ranked videos: their scores, thumbnail strips and players, and for a video longer than
one window, the moment (time range) that matches best. Anyone can upload their own clips to search instead, within
the upload limits (--max-uploads, --max-upload-bytes, --max-upload-seconds; or GVE_SPACE_MAX_UPLOADS,
GVE_SPACE_MAX_UPLOAD_BYTES, GVE_SPACE_MAX_UPLOAD_SECONDS); anything else is refused with the reason, in the page.

It serves on 127.0.0.1 only, with Gradio's analytics off, a theme without web fonts and no share link, so nothing
leaves the machine; on a Hugging Face Space (SPACE_ID set) it serves where the Space's runtime says
(GRADIO_SERVER_NAME). Embeddings are cached under --workdir, like the main job's.

    python space/app.py                                   # bundled model and samples, http://127.0.0.1:7860
    python space/app.py --port 8000 --videos ~/clips --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16
"""

import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from gve_tools.errors import GVEToolsError
from gve_tools.repo import ROOT, query_instruction
from gve_tools.text import docstring_parser
from gve_tools.video_search import (
    BUNDLED_MODEL,
    BUNDLED_VIDEOS,
    Hit,
    Searcher,
    SearchError,
    VideoIndex,
    load_searcher,
    results_html,
)
from gve_tools.video_search.page import STYLE
from gve_tools.video_search.queries import make_query
from gve_tools.video_search.uploads import LIMIT_VARIABLES, UploadLimits, check_uploads, store_uploads

DEFAULT_WORKDIR = ROOT / "build" / "space"
DEFAULT_PORT = 7860
TOP_K = 5
# No web fonts: the system's own (Gradio's default theme loads its fonts from Gradio's server, still a fetch).
THEME = gr.themes.Base(font=("ui-sans-serif", "system-ui", "sans-serif"), font_mono=("ui-monospace", "monospace"))
CSS = STYLE + (
    "#results table { width: 100%; } #results video { max-width: 240px; } #results .strip { white-space: nowrap; }"
    " #results .strip img { display: inline-block; } #results td:nth-child(-n+2) { width: 4em; }"
    " #results .path { display: none; }"  # the query's media are the server's temporary files
)


def shown(place: str | Path) -> str:
    """A folder or a model as the page names it: relative to the repository when in it (the bundled ones)."""
    path = Path(place)
    return path.relative_to(ROOT).as_posix() if path.is_absolute() and path.is_relative_to(ROOT) else str(place)


def file_url(hit: Hit) -> str:
    """The hit's video as Gradio serves it (the folder is an allowed path), with its moment's media fragment."""
    url = f"/gradio_api/file={hit.path.resolve()}"
    return url if hit.span is None else f"{url}#t={hit.span[0]:g},{hit.span[1]:g}"


@dataclass
class VideoSearchApp:
    """What the page's events do: index a folder (once, then cached), answer a query, take an upload."""

    searcher: Searcher
    library: Path  # the folder searched until someone uploads their own clips
    workdir: Path
    limits: UploadLimits = field(default_factory=UploadLimits)
    indexes: dict[Path, VideoIndex] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def index(self, folder: Path, progress=None) -> VideoIndex:
        """The folder's index, built once (with `progress(fraction, desc=...)` as videos are embedded)."""
        with self.lock:
            if folder not in self.indexes:
                step = None if progress is None else lambda done, total: progress(done / total, desc="indexing")
                self.indexes[folder] = self.searcher.index(folder, self.workdir / "cache", step)
            return self.indexes[folder]

    def describe(self, folder: Path) -> str:
        """The status line of a folder's index: what is searched, with which model, and what could not be read."""
        index = self.index(folder)
        where = "your uploaded clips" if folder != self.library else f"the videos of {shown(self.library)}"
        segmented = len(index.segments())
        note = f", {segmented} of them as segments of {index.window:g} s" if segmented else ""
        skipped = f"; {len(index.errors)} could not be read" if index.errors else ""
        count = f"{len(index.videos)} video{'s' if len(index.videos) != 1 else ''}"
        return f"Searching {count}: {where}{note}{skipped}. Model: {shown(self.searcher.model_id)}."

    def search(
        self, text: str, image: str | None, video: str | None, instruction: str, top_k: int, folder: str | None
    ) -> tuple[str, str]:
        """The results' HTML and the status line for a query (an error's message instead of results)."""
        where = Path(folder) if folder else self.library
        try:
            query = make_query(text, image, video, instruction)
            (result,) = self.searcher.answer(self.index(where), where, [query], int(top_k))
        except GVEToolsError as error:
            return "", f"**Error:** {error}"
        return results_html([result], file_url, every_player=True), self.describe(where)

    def upload(self, files: list[str] | None, session: str, progress=None) -> tuple[str | None, str]:
        """Index the uploaded files that pass the limits as the session's collection (with `progress`, as `index`);
        the status says what was refused and why. Nothing accepted leaves the library searched (None)."""
        if not files:
            return None, "No files uploaded. " + self.describe(self.library)
        try:
            accepted, refused = check_uploads(self.searcher.gve, [Path(f) for f in files], self.limits)
        except SearchError as error:
            return None, f"**Refused:** {error}. " + self.describe(self.library)
        lines = [f"**Refused** `{name}`: {reason}" for name, reason in refused.items()]
        if not accepted:
            return None, "\n\n".join([*lines, self.describe(self.library)])
        folder = store_uploads(accepted, self.workdir / "uploads" / session)
        with self.lock:
            self.indexes.pop(folder, None)
        self.index(folder, progress)
        lines.append(self.describe(folder))
        return str(folder), "\n\n".join(lines)

    def forget(self, session: str) -> None:
        """A session's uploads and their index, when its page closes."""
        folder = self.workdir / "uploads" / session
        with self.lock:
            self.indexes.pop(folder, None)
        shutil.rmtree(folder, ignore_errors=True)


def build_ui(app: VideoSearchApp) -> gr.Blocks:
    """The page: the query (text, image, video, instruction), the results, and the upload of one's own clips."""
    with gr.Blocks(title="GVE video search", analytics_enabled=False) as demo:
        gr.Markdown(
            "# GVE video search\nFind videos with a text, an image, a video, or a text with an image or a video "
            "(a composed query). A long video is searched moment by moment: its hit names the best time range."
        )
        folder = gr.State(None)  # the session's uploaded clips' folder; None: the library
        with gr.Row(equal_height=True):
            text = gr.Textbox(label="Text", placeholder="a large red circle moves right", scale=4, elem_id="query-text")
            search = gr.Button("Search", variant="primary", scale=1, elem_id="search")
        with gr.Row():
            image = gr.Image(
                label="Image", type="filepath", format="png", sources=["upload"], height=180, elem_id="query-image"
            )
            video = gr.Video(label="Video", sources=["upload"], height=180, elem_id="query-video")
            with gr.Column():
                uploads = gr.File(
                    label="Your own clips to search",
                    file_count="multiple",
                    file_types=["video"],
                    height=130,
                    elem_id="uploads",
                )
                gr.Markdown(app.limits.describe().capitalize() + ".", elem_id="upload-limits")
                use_library = gr.Button("Search the sample videos again", size="sm", elem_id="use-library")
        with gr.Accordion("Instruction and results", open=False):
            with gr.Row():
                instruction = gr.Textbox(
                    label="Query instruction", placeholder=query_instruction(), scale=3, elem_id="query-instruction"
                )
                top_k = gr.Slider(1, 10, value=TOP_K, step=1, label="Results", scale=1)
        status = gr.Markdown(elem_id="status")
        results = gr.HTML(elem_id="results")

        def on_load(progress=gr.Progress()):  # noqa: B008 - Gradio's marker
            app.index(app.library, progress)
            return app.describe(app.library)

        def on_upload(files, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's marker
            progress(0, desc="checking the uploads")
            return app.upload(files, request.session_hash, progress)

        def on_search(text, image, video, instruction, top_k, folder, progress=gr.Progress()):  # noqa: B008 - Gradio's marker
            progress(0, desc="searching")
            return app.search(text, image, video, instruction, top_k, folder)

        demo.load(on_load, outputs=status)
        uploads.upload(on_upload, inputs=uploads, outputs=[folder, status])
        use_library.click(lambda: (None, app.describe(app.library)), outputs=[folder, status])
        inputs = [text, image, video, instruction, top_k, folder]
        search.click(on_search, inputs=inputs, outputs=[results, status])
        text.submit(on_search, inputs=inputs, outputs=[results, status])

        def on_unload(request: gr.Request):
            app.forget(request.session_hash)

        demo.unload(on_unload)
    return demo


def on_space() -> bool:
    """Whether this runs on a Hugging Face Space (whose runtime sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


def launch_options(app: VideoSearchApp, port: int) -> dict:
    """`Blocks.launch`'s arguments: loopback only (off a Space), no share link, no web fonts, files served from the
    library and the uploads only, and Gradio refusing an upload over the size limit."""
    return {
        "server_name": None if on_space() else "127.0.0.1",
        "server_port": None if on_space() else port,
        "share": False,
        "ssr_mode": False,
        "theme": THEME,
        "css": CSS,
        "allowed_paths": [str(app.library.resolve()), str((app.workdir / "uploads").resolve())],
        "max_file_size": app.limits.max_bytes,  # Gradio refuses a bigger file in the page, before it is sent
    }


# The upload limits' options, with the `UploadLimits` field each sets.
LIMIT_OPTIONS = {"--max-uploads": "max_files", "--max-upload-bytes": "max_bytes", "--max-upload-seconds": "max_seconds"}


def main(argv: list[str] | None = None) -> int:
    parser = docstring_parser(__doc__)
    model, videos = os.environ.get("GVE_MODEL", BUNDLED_MODEL), os.environ.get("GVE_VIDEOS", BUNDLED_VIDEOS)
    parser.add_argument("--model", default=model, help=f"GVE checkpoint, a folder or a Hub id (default: {model})")
    parser.add_argument("--revision", help="Hub branch, tag or commit of --model (default: main)")
    parser.add_argument("--videos", default=videos, help=f"folder of videos to search, recursively (default: {videos})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"the cache and the uploads (default: {DEFAULT_WORKDIR})"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--dtype", default="auto", help="weights dtype (default auto: bfloat16 on cuda, else float32)")
    for option, name in LIMIT_OPTIONS.items():
        default, variable = getattr(UploadLimits(), name), LIMIT_VARIABLES[name]
        kind = float if name == "max_seconds" else int
        parser.add_argument(
            option, dest=name, type=kind, metavar="N", help=f"upload limit (default: {variable}, else {default})"
        )
    args = parser.parse_args(argv)
    try:
        limits = UploadLimits.from_env(**{name: getattr(args, name) for name in LIMIT_OPTIONS.values()})
        folder = ROOT / args.videos if args.videos == BUNDLED_VIDEOS else Path(args.videos)
        if not folder.is_dir():
            raise SearchError(f"--videos: {folder} is not a folder")
        checkpoint = str(ROOT / args.model) if args.model == BUNDLED_MODEL else args.model
        searcher = load_searcher(checkpoint, revision=args.revision, device=args.device, dtype=args.dtype)
    except GVEToolsError as error:  # SearchError, ModelLoadError: what and why
        parser.exit(1, f"error: {error}\n")
    app = VideoSearchApp(searcher, folder.resolve(), args.workdir.resolve(), limits)
    build_ui(app).queue(default_concurrency_limit=1).launch(**launch_options(app, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
