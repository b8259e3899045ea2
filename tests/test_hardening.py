"""Untrusted input: the attacks of issue #17, each against a server on 127.0.0.1, refused with its input and reason.

Nothing here reaches another address: `network` answers name lookups from a table and refuses (and records) every
connection to a non-loopback address, so that a test can assert where a download went, or that it went nowhere.
"""

import base64
import ipaddress
import socket
import sys
import time
from urllib.parse import urlsplit

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gve_tools.media import write_blank_video
from handler import EndpointHandler, HandlerError
from tests.media_server import MediaServer, serve

PUBLIC = "93.184.216.34"  # an address the guard refuses to connect to: nothing is ever sent there


class Network:
    """Name answers from a table, and a record of every connection attempt (non-loopback ones refused)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}  # name -> one answer (a list of addresses) per lookup
        self.lookups: list[str] = []
        self.refused: list[tuple] = []

    def getaddrinfo(self, host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            self.lookups.append(host)
            if host not in self.answers or not self.answers[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = self.answers[host].pop(0) if len(self.answers[host]) > 1 else self.answers[host][0]
            return [_address_info(address, port) for address in addresses]
        return [_address_info(str(host), port)]


def _address_info(address: str, port) -> tuple:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


@pytest.fixture
def network(monkeypatch):
    guard = Network()
    connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            guard.refused.append(address)
            raise ConnectionRefusedError(f"test guard: no connection to {host}")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: pytest.fail(f"connect_ex({address})"))
    return guard


@pytest.fixture(scope="module")
def attacks(tmp_path_factory):
    """Media an attacker sends: tiny files that declare huge frames, or many frames between keyframes."""
    folder = tmp_path_factory.mktemp("attacks")
    files = {
        "4k": write_blank_video(folder / "uhd.mp4", 3840, 2160, 64, fps=8),  # one keyframe, 64 frames, ~46 KB
        "8k": write_blank_video(folder / "8k.mp4", 7680, 4320, 16, fps=8),  # ~99 KB
        "long_gop": write_blank_video(folder / "gop.mp4", 320, 240, 200, fps=25),  # one keyframe
        "short_gop": write_blank_video(folder / "short.mp4", 320, 240, 200, fps=25, keyframe_interval=10),
    }
    for name, side in (("bomb", 12000), ("huge_bomb", 20000)):  # 144 and 400 million pixels, in 18 and 50 KB
        files[name] = folder / f"{name}.png"
        Image.new("1", (side, side)).save(files[name])
    return files


@pytest.fixture(scope="module")
def server(media, tmp_path_factory):
    """The attack server on 127.0.0.1 (`tests.media_server`), over a folder with the test image and video."""
    folder = tmp_path_factory.mktemp("served")
    for name in ("image", "video"):
        (folder / media[name].name).write_bytes(media[name].read_bytes())
    with serve(folder) as url:
        yield url


@pytest.fixture
def served(server):
    """The paths the server was asked for during one test."""
    MediaServer.requests.clear()
    return MediaServer.requests


@pytest.fixture(scope="module")
def guarded(tiny_path):
    """An endpoint with the default limits: a public endpoint's."""
    return EndpointHandler(str(tiny_path))


def handler_error(handler, data) -> str:
    with pytest.raises(HandlerError) as caught:
        handler(data)
    return str(caught.value)


def data_uri(path, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def processing_of(model):
    return sys.modules[type(model.processor).__module__]


# ---------------------------------------------------------------------- where downloads may go


def test_a_url_parsers_disagree_on_is_refused_unsent(guarded, model, server, served, network):
    """`http://127.0.0.1:PORT\\@example.com/../img.png`: one parser reads the host example.com, another 127.0.0.1."""
    port = urlsplit(server).port
    url = f"http://127.0.0.1:{port}\\@example.com/../square.png"
    message = handler_error(guarded, {"inputs": [{"image": url}]})
    assert message.startswith("inputs[0].image: the URL ") and "has backslashes" in message
    with pytest.raises(ValueError, match=r"^inputs\[0\]: the URL .* has backslashes"):
        model.encode([{"image": url}])  # the library refuses it too, though it may read private hosts
    for url in (f"http://user@127.0.0.1:{port}/square.png", f"http://127.0.0.1:{port}@example.com/square.png"):
        assert "has user info" in handler_error(guarded, {"inputs": [{"image": url}]})
    assert served == [] and network.refused == [] and network.lookups == []


@pytest.mark.parametrize(
    "host, reason",
    [
        ("127.1", "non-canonical IPv4 host"),
        ("0x7f.0.0.1", "non-canonical IPv4 host"),
        ("2130706433", "non-canonical IPv4 host"),
        ("017700000001", "non-canonical IPv4 host"),
        ("127.000.000.001", "non-canonical IPv4 host"),
        ("ex%61mple.com", "host name that is not valid"),
        ("example.com.", "host name that is not valid"),
        ("[::ffff:7f00:1%25eth0]", "malformed or non-canonical IPv6 host"),
        ("[::ffff:127.0.0.1]", "malformed or non-canonical IPv6 host"),
    ],
)
def test_hosts_that_parsers_read_differently_are_refused(guarded, network, host, reason):
    message = handler_error(guarded, {"inputs": [{"image": f"http://{host}/a.png"}]})
    assert message.startswith("inputs[0].image: ") and reason in message
    assert network.refused == [] and network.lookups == []


def test_dns_rebinding_gets_one_lookup_and_the_checked_address(guarded, server, served, network):
    """The first answer is public, a second would be loopback: the fetcher asks once and connects where it checked."""
    port = urlsplit(server).port
    network.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    message = handler_error(guarded, {"inputs": [{"image": f"http://rebind.test:{port}/square.png"}]})
    assert message.startswith(f"inputs[0].image: could not download 'http://rebind.test:{port}/square.png': ")
    assert network.lookups == ["rebind.test"]
    assert network.refused == [(PUBLIC, port)]  # the checked address, never the rebound one
    assert served == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # cloud metadata
        "::1",
        "fd00::1",  # unique local
        "fe80::1",  # link-local
        "ff02::1",  # multicast
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
    ],
)
def test_internal_answers_are_refused_before_connecting(guarded, network, address):
    network.answers["internal.test"] = [[PUBLIC, address]]  # one internal address among the answers is enough
    message = handler_error(guarded, {"inputs": ["text", {"video": "http://internal.test/clip.mp4"}]})
    assert message.startswith("inputs[1].video: the host of 'http://internal.test/clip.mp4' is an internal address")
    assert f"({ipaddress.ip_address(address)})" in message or f"({address})" in message
    assert network.refused == []


def test_public_forms_are_not_internal(processor):
    processing = sys.modules[type(processor).__module__]
    for address in (PUBLIC, "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"):
        assert not processing.is_internal_address(address), address


def test_redirects_are_checked_at_every_hop(guarded, server, served, network, monkeypatch):
    """The server on 127.0.0.1 stands for a public host here; its redirects to internal hosts are refused at that
    hop, before any connection, and a redirect loop stops at `max_redirects`."""
    import handler as handler_module

    processing = handler_module.processing
    is_internal = processing.is_internal_address
    monkeypatch.setattr(
        processing, "is_internal_address", lambda address: address != "127.0.0.1" and is_internal(address)
    )
    network.answers["internal.test"] = [["10.0.0.1"]]
    port = urlsplit(server).port
    for target, address in (
        (f"http://127.0.0.2:{port}/square.png", "127.0.0.2"),
        ("http://internal.test/x", "10.0.0.1"),
    ):
        message = handler_error(guarded, {"inputs": [{"image": f"{server}/redirect?to={target}"}]})
        assert message.startswith("inputs[0].image: the host of ") and f"internal address ({address})" in message
    assert network.refused == [] and served == [
        f"/redirect?to={target}" for target in (f"http://127.0.0.2:{port}/square.png", "http://internal.test/x")
    ]
    assert len(guarded({"inputs": [{"image": f"{server}/redirect?to=/square.png"}]})) == 1  # a checked hop: fetched
    loop = f"{server}/loop"
    message = handler_error(guarded, {"inputs": [{"image": loop}]})
    assert message == f"inputs[0].image: could not download '{loop}': more than 5 redirects"


# ---------------------------------------------------------------------- how much may be fetched, and for how long


def test_library_downloads_have_caps_and_a_deadline(model, server, served, monkeypatch):
    """`model.encode` with URLs: caps and the deadline are on by default, and set per call or by environment."""
    processing = processing_of(model)
    defaults = processing.MediaLimits()
    assert defaults.allow_private_hosts and defaults.download_timeout == 60 and defaults.max_video_bytes == 1e9
    with pytest.raises(ValueError, match=r"^inputs\[0\]: download exceeds 1000000 bytes \(300000000 bytes declared\)"):
        model.encode([{"video": f"{server}/big?size=300000000"}], limits={"max_video_bytes": 1_000_000})
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"^inputs\[0\]: download exceeds 1000000 bytes$"):
        model.encode([{"video": f"{server}/big?size=300000000&declared=0"}], limits={"max_video_bytes": 1_000_000})
    assert time.monotonic() - started < 5  # stopped at the cap, not after 300 MB
    monkeypatch.setenv("GVE_DOWNLOAD_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(
        ValueError, match=r"^inputs\[1\]: could not download '.*/trickle\?every=0\.5&count=40': timed out after 1 s$"
    ):
        model.encode(["text", {"video": f"{server}/trickle?every=0.5&count=40"}])
    assert time.monotonic() - started < 3  # a byte every 0.5 s does not hold it past the deadline
    monkeypatch.setenv("GVE_ALLOW_PRIVATE_HOSTS", "false")
    with pytest.raises(ValueError, match="is an internal address"):
        model.encode([f"{server}/square.png"])
    assert served.count("/square.png") == 0


def test_frame_lists_of_urls_go_through_the_fetcher(model, media, server, served):
    frames = [f"{server}/square.png"] * 3
    local = [str(media["image"])] * 3
    assert F.cosine_similarity(model.encode([frames]), model.encode([local])).item() > 0.9999
    with pytest.raises(
        ValueError,
        match=r"^inputs\[0\]: video frame 1: could not download '.*/trickle\?every=0\.5&count=40': "
        r"timed out after 1 s$",
    ):
        model.encode([[f"{server}/square.png", f"{server}/trickle?every=0.5&count=40"]], limits={"download_timeout": 1})
    with pytest.raises(ValueError, match=r"download exceeds 100 bytes"):
        model.encode([[f"{server}/square.png"] * 2], limits={"max_image_bytes": 100})
    with pytest.raises(ValueError, match="is an internal address"):
        model.encode([frames], limits={"allow_private_hosts": False})


def test_the_corpus_reader_uses_the_same_limits(tiny_path, server, monkeypatch):
    """embed_corpus decodes rows with the processor's load, so the environment's limits hold there too."""
    from gve_tools import corpus as embed_corpus

    monkeypatch.setenv("GVE_MAX_IMAGE_BYTES", "100")
    import pyarrow as pa

    rows = {"id": ["a", "b"], "row": [0, 1], "shard": [0, 0], "image": [f"{server}/square.png", None]}
    table = embed_corpus.preprocess(
        pa.table({**rows, "text": [None, "fine"]}),
        str(tiny_path),
        None,
        None,
        "skip",
    )
    errors = table.column("error").to_pylist()
    assert errors[0].startswith("id 'a' (manifest row 1): download exceeds 100 bytes") and errors[1] is None


# ---------------------------------------------------------------------- how much may be decoded


@pytest.mark.slow  # writes 4K and 8K videos
def test_a_4k_video_asking_for_64_frames_is_refused_before_decoding(guarded, tiny_path, attacks, monkeypatch):
    """28-46 KB, 3840x2160, 64 frames, fps=8 and max_frames=64 (within the handler's limits): 9.7 GB before."""
    decoded = spy_on_decoding(guarded, monkeypatch)
    request = {"inputs": [{"video": data_uri(attacks["4k"])}], "parameters": {"fps": 8, "max_frames": 64}}
    message = handler_error(guarded, request)
    assert message.startswith("inputs[0].video: video 'data:video/mp4;base64,...' refused: 64 frames of 504x280")
    assert "more than max_length=4096" in message
    # two of them in one request: the first is refused as well, before anything is decoded
    request["inputs"] *= 2
    assert handler_error(guarded, request).startswith("inputs[0].video: video 'data:video/mp4;base64,...' refused")
    assert decoded == []


@pytest.mark.slow  # writes 4K and 8K videos
def test_an_8k_video_is_refused_from_its_header(guarded, attacks, monkeypatch):
    """99 KB, 7680x4320, 16 frames, default parameters: 9.5 GB and 36 s before."""
    decoded = spy_on_decoding(guarded, monkeypatch)
    message = handler_error(guarded, {"inputs": ["query", {"video": data_uri(attacks["8k"])}]})
    assert message == (
        "inputs[1].video: video 'data:video/mp4;base64,...' refused: its frames are 7680x4320 (33,177,600 pixels), "
        "more than max_video_frame_pixels=9,437,184"
    )
    assert decoded == []


@pytest.mark.slow  # writes 4K and 8K videos
def test_decoding_work_counts_the_frames_between_keyframes(model, attacks):
    """Eight frames sampled from 200: with one keyframe the decoder goes through all of them, with one every 10
    frames through about a tenth; the budget counts that work, not only the frames kept."""
    processing = processing_of(model)
    options = {**model.processor.embedding_config.video_options(), "fps": 25.0}
    plans = {
        name: processing.plan_video({"video": str(attacks[name]), **options}, processing.MediaLimits())
        for name in ("long_gop", "short_gop")
    }
    assert [plan.indices for plan in plans.values()] == [[0, 28, 57, 85, 114, 142, 171, 199]] * 2
    assert plans["long_gop"].decoded == 200
    assert plans["short_gop"].decoded == 1 + 9 + 8 + 6 + 5 + 3 + 2 + 10  # 44
    pixels, sampled = 320 * 240, 8 * (processing.SAMPLED_FRAME_COST - 1)  # the sampled frames' conversion and resize
    assert [plan.work for plan in plans.values()] == [(200 + sampled) * pixels, (44 + sampled) * pixels]
    limit = {"max_decode_pixels": (100 + sampled) * pixels}
    with pytest.raises(
        ValueError, match=rf"decoding it takes {(200 + sampled) * pixels:,} pixels of work, more than max_decode_pixels"
    ):
        model.encode([{"video": str(attacks["long_gop"]), "fps": 25.0}], limits=limit)
    model.encode([{"video": str(attacks["short_gop"]), "fps": 25.0}], limits=limit)  # 44 frames: within it


def test_the_decoder_model_matches_decord(model):
    """The count behind the budget, on decord's seeking (measured: forward within a run from a keyframe, else
    from the keyframe before; a repeated frame is sought again)."""
    _decoded_frames = processing_of(model)._decoded_frames

    assert _decoded_frames([0, 5, 9], [0]) == 10
    assert _decoded_frames([12, 13, 30], [0, 10, 20]) == 3 + 1 + 11
    assert _decoded_frames([40, 40], [0, 32]) == 9 + 9
    assert _decoded_frames([60, 30], [0]) == 61 + 31  # going back starts again from the keyframe


@pytest.mark.slow  # writes 4K and 8K videos
def test_a_call_shares_one_decoding_budget(model, attacks):
    video = {"video": str(attacks["short_gop"]), "fps": 25.0}
    pixels = (44 + 8 * (processing_of(model).SAMPLED_FRAME_COST - 1)) * 320 * 240
    model.encode([video], limits={"max_call_decode_pixels": pixels})
    with pytest.raises(ValueError, match=r"^inputs\[1\]: video .* refused: decoding it takes .* left of this call's"):
        model.encode([video, video], limits={"max_call_decode_pixels": pixels + 1}, num_workers=1)


@pytest.mark.slow  # writes 4K and 8K videos
def test_an_image_bomb_is_refused_from_its_header(guarded, model, attacks, monkeypatch):
    """PNGs of a few KB that declare 144 and 400 million pixels: refused before decoding, in the handler and the
    library (Pillow itself refuses to open the larger one)."""
    vision = sys.modules["qwen_vl_utils"].vision_process
    calls = []
    fetch_image = vision.fetch_image
    monkeypatch.setattr(vision, "fetch_image", lambda *a, **k: calls.append(a) or fetch_image(*a, **k))
    with pytest.warns(Image.DecompressionBombWarning):
        message = handler_error(guarded, {"inputs": [{"image": data_uri(attacks["bomb"], "image/png")}]})
    assert message == (
        "inputs[0].image: image 'data:image/png;base64,...' refused: it is 12000x12000 (144,000,000 pixels), "
        "more than max_image_pixels=12,500,000"
    )
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ValueError, match="max_image_pixels=100,000,000"):
        model.encode([str(attacks["bomb"])])
    with pytest.raises(ValueError) as caught:
        model.encode([str(attacks["huge_bomb"])])
    assert str(caught.value).endswith(
        "refused: it has more than the 178,956,970 pixels Pillow opens (a decompression bomb), more than "
        "max_image_pixels=100,000,000"
    )
    assert calls == []


def spy_on_decoding(handler, monkeypatch) -> list:
    """Record every video the handler's model decodes (its copy of the remote code's `read_video`)."""
    processing = processing_of(handler.model)
    calls = []
    read_video = processing.read_video
    monkeypatch.setattr(processing, "read_video", lambda plan: calls.append(plan) or read_video(plan))
    return calls


# ---------------------------------------------------------------------- controls, text


@pytest.mark.parametrize(
    "control, value, message",
    [
        ("max_frames", 10**9, "max_frames must be an integer from 2 to 768, got 1000000000"),
        ("min_pixels", 10**8, "min_pixels must be an integer from 784 to 12845056, got 100000000"),
        ("image_min_pixels", 10**9, "image_min_pixels must be an integer from 784 to 12845056, got 1000000000"),
        ("fps", float("inf"), "fps must be a number above 0 and at most 240, got inf"),
        ("fps", float("nan"), "fps must be a number above 0 and at most 240, got nan"),
        ("total_pixels", 10**400, "total_pixels must be an integer from 784 to 100352000, got an integer of about 401"),
        ("max_length", 10**9, "max_length must be an integer from 1 to"),
    ],
)
def test_controls_out_of_range_are_refused_before_reading(model, media, control, value, message):
    started = time.monotonic()
    with pytest.raises(ValueError) as caught:
        model.encode([str(media["video"])], **{control: value})
    assert str(caught.value).startswith(message)
    if control != "max_length":  # per input too, naming the input and the control
        with pytest.raises(ValueError) as caught:
            model.encode(["text", {"video": str(media["video"]), control: value}])
        assert str(caught.value).startswith(f"inputs[1]: {message}")
        assert (caught.value.position, caught.value.field) == (1, control)
    assert time.monotonic() - started < 5


@pytest.mark.slow  # writes 4K and 8K videos
def test_frames_sized_to_nothing_are_refused_before_decoding(model, attacks):
    """qwen-vl-utils sizes a 16:9 frame to 0 pixels high under a small max_pixels (fetch_video then fails)."""
    with pytest.raises(ValueError) as caught:
        model.encode([{"video": str(attacks["4k"]), "min_pixels": 784, "max_pixels": 784}])
    assert str(caught.value).endswith(
        "refused: frames of 3840x2160 would be resized to 28x0 (max_pixels=784); raise max_pixels to at least 1394"
    )
    model.encode([{"video": str(attacks["4k"]), "min_pixels": 784, "max_pixels": 1394}])


def test_a_10_mb_text_is_cut_before_it_is_tokenized(model, monkeypatch):
    """150 s before (about 20 µs a character): the tokenizer now sees a prefix of a few times max_length."""
    tokenizer = model.processor.tokenizer
    seen = []
    call = type(tokenizer).__call__
    monkeypatch.setattr(
        type(tokenizer),
        "__call__",
        lambda self, text, *a, **k: seen.append(_longest(text)) or call(self, text, *a, **k),
    )
    text = "lorem ipsum dolor sit amet " * 400_000  # 10.8 MB
    started = time.process_time()
    with pytest.warns(UserWarning, match="text truncated"):
        embedding = model.encode([text])
    assert time.process_time() - started < 10  # CPU, two threads included; about 0.3 s here
    assert max(seen) < 8 * (4096 + 64) + 1000
    with pytest.warns(UserWarning):
        assert F.cosine_similarity(embedding, model.encode([text[:100_000]])).item() > 0.99999


def _longest(text) -> int:
    return max(map(len, text)) if isinstance(text, list) else len(text)


@pytest.mark.parametrize(
    "text",
    [
        "lorem ipsum dolor sit amet, " * 3000,
        "視頻中的一隻狗在海灘上奔跑。" * 3000,
        "a" * 80_000,
        " " * 80_000 + "x",
        "0123456789" * 8000,
        "!?\n\n" * 20_000,
    ],
    ids=["words", "cjk", "one-long-word", "spaces", "digits", "punctuation"],
)
def test_cutting_a_long_text_keeps_the_prompt_exact(processor, monkeypatch, text):
    """The truncated prompt of a text cut before tokenization equals that of the whole text, tokenized whole."""
    with pytest.warns(UserWarning):
        cut = processor.prepare([text], max_length=512)["input_ids"]
    monkeypatch.setattr(type(processor), "_clip_text", lambda self, text, max_length: text)
    with pytest.warns(UserWarning):
        whole = processor.prepare([text], max_length=512)["input_ids"]
    assert torch.equal(cut, whole)


# ---------------------------------------------------------------------- the handler, fuzzed


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"inputs": "x", "parameters": {"fps": 10**400}}, "parameters.fps: must be a number greater than 0"),
        ({"inputs": "x", "parameters": {"max_frames": 10**400}}, "parameters.max_frames: must be an integer from 2"),
        ({"inputs": "x", "parameters": {"fps": 10**5000}}, "parameters.fps: an integer too large to be a value"),
        ({"inputs": ["ok", "\ud800"]}, "inputs[1]: is not valid Unicode (a lone surrogate '\\ud800' at character 0)"),
        ({"inputs": [{"text": "a\udfffb"}]}, "inputs[0].text: is not valid Unicode"),
        ({"inputs": "x", "parameters": {"instruction": "\ud800"}}, "parameters.instruction: is not valid Unicode"),
        ({"inputs": {"\ud800": 1}}, "inputs: key '\\ud800' is not valid Unicode"),
        ({"inputs": [{"image": "http://127.0.0.1:99999/a.png"}]}, "inputs[0].image: malformed URL"),
        ({"inputs": [{"image": "http://127.0.0.1:0/a.png"}]}, "inputs[0].image: malformed URL"),
        ({"inputs": [{"image": "http://[::1/a.png"}]}, "inputs[0].image: malformed URL"),
        ({"inputs": [{"video": "https://\ud800.test/a.mp4"}]}, "inputs[0].video: is not valid Unicode"),
    ],
)
def test_malformed_values_name_their_field(guarded, network, data, expected):
    assert handler_error(guarded, data).startswith(expected)


def test_deep_nesting_names_its_field(guarded):
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    message = handler_error(guarded, {"inputs": nested})
    assert message.startswith("inputs") and "nested deeper than 32 levels" in message


FIELD = r"^(request|inputs|parameters|sentences|source_sentence|[^:\s]+)(\.[\w\ud800-\udfff]+|\[\d+\])*(: key '.*')?: "


def test_fuzzed_requests_get_handler_errors_naming_a_field(guarded, network):
    """Random requests built from hostile values: each is answered, or refused with a `HandlerError` whose message
    starts with a request field; nothing else escapes (before, OverflowError, UnicodeEncodeError, ValueError and
    RecursionError did)."""
    import random
    import re

    generator = random.Random(17)
    values = [
        None, True, 0, -1, 2**63, 10**400, 1.5, float("inf"), float("nan"), "", " ", "\ud800", "x" * 30_000,
        "data:image/png;base64,@@", "data:video/mp4;base64,AAAA", "iVBORw0KGgo=", "http://127.0.0.1:99999/a.png",
        "http://[::1]:80/a.png", "http://a\\b@c/d.png", "ftp://x/a.png", "file:///etc/passwd", "/etc/passwd",
        "http://internal.test/a.mp4", "https://10.0.0.1/x.mp4", [], {}, [[[]]], {"text": "x"}, {"image": None},
    ]  # fmt: skip
    network.answers["internal.test"] = [["10.0.0.1"]]
    keys = ["inputs", "parameters", "text", "image", "video", "source_sentence", "sentences", "fps", "max_frames",
            "instruction", "min_pixels", "total_pixels", "\ud800", "extra"]  # fmt: skip

    def build(depth: int):
        choice = generator.random()
        if depth > 3 or choice < 0.5:
            return generator.choice(values)
        if choice < 0.75:
            return [build(depth + 1) for _ in range(generator.randint(0, 3))]
        return {generator.choice(keys): build(depth + 1) for _ in range(generator.randint(0, 3))}

    outcomes = {"answered": 0, "refused": 0}
    for _ in range(400):
        data = {"inputs": build(1)}
        if generator.random() < 0.5:
            data["parameters"] = {generator.choice(keys): build(3) for _ in range(generator.randint(1, 2))}
        try:
            guarded(data)
            outcomes["answered"] += 1
        except HandlerError as error:
            assert re.match(FIELD, str(error)), (data, str(error))
            outcomes["refused"] += 1
    assert outcomes["answered"] > 10 and outcomes["refused"] > 100
    assert network.refused == []


# ---------------------------------------------------------------------- Hub conventions


def test_bare_base64_images_are_read_like_data_uris(guarded, media, model):
    """The Hub's image widgets send an image as bare base64 (no data: prefix)."""
    payload = base64.b64encode(media["image"].read_bytes()).decode()
    rows = guarded({"inputs": [{"image": payload}, {"image": f"data:image/png;base64,{payload}"}]})
    assert F.cosine_similarity(torch.tensor(rows[:1]), model.encode([str(media["image"])])).item() > 0.9999
    assert rows[0] == rows[1]
    message = handler_error(guarded, {"inputs": [{"image": base64.b64encode(b"not an image").decode()}]})
    assert message.startswith("inputs[0].image: could not read image 'base64 image data': ")
    assert handler_error(guarded, {"inputs": [{"image": "photo/cat"}]}).startswith(
        "inputs[0].image: local file paths are not accepted"
    )
