"""Step 5: forms, cookies and streamed uploads on layer 3.

An HTTP application for the layer 3 command line:

* ``/`` is a page with two forms; it counts your visits in a cookie;
* ``/greet`` greets the ``name`` of a query (``GET``) or of a form (``POST``);
* ``/upload`` takes a ``multipart/form-data`` form: the ``note`` field is
  collected as text, and every field whose name starts with ``file`` is
  streamed, piece by piece, into a SHA-256, so a file of any size (within
  ``request_body_size_limit``) costs no memory. The answer describes each
  file, the calls its stream handler got, and how much the worker's peak
  memory grew meanwhile.

Serve it with
``python -m layer3_http docs/examples/layer3/step05_forms.py --listen 127.0.0.1:0``
and open ``http://127.0.0.1:PORT/`` in a browser, or use curl:
``curl -F note=hi -F file1=@FILE http://127.0.0.1:PORT/upload``.
"""

from __future__ import annotations

import hashlib
import resource

from layer3_http import PostMetadata, Request

PAGE = """<!doctype html>
<title>Forms</title>
<p>Visit number {visits}.</p>
<form method="post" action="/greet">
  <input name="name" placeholder="your name"> <button>Greet me</button>
</form>
<form method="post" action="/upload" enctype="multipart/form-data">
  <input name="note" placeholder="a note">
  <input type="file" name="file1"> <input type="file" name="file2">
  <button>Upload</button>
</form>
"""


# --8<-- [start:cookies]
def index(request: Request) -> None:
    seen = request.cookies.get("visits", "0")  # a str, as the client sent it
    visits = int(seen) + 1 if seen.isdigit() else 1
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/html; charset=utf-8")
    request.send_header("Set-Cookie", f"visits={visits}; Path=/; SameSite=Lax")
    request.send_data(PAGE.format(visits=visits))


def greet(request: Request) -> None:
    if request.method == "POST":
        name = request.post_params.get("name", "")  # reads and parses the body
    else:
        name = request.get_params.get("name", "")  # from the query, ?name=...
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(f"hello, {name or 'stranger'}\n")
# --8<-- [end:cookies]


# --8<-- [start:upload]
class File:
    """What the stream handler learnt about one uploaded file."""

    def __init__(self, metadata: PostMetadata) -> None:
        self.metadata = metadata  # field_name, file_name, content_type, headers
        self.size = 0
        self.chunks = 0  # calls with data after the first call
        self.digest = hashlib.sha256()
        self.ended = False


class Files:
    """A stream handler for many fields: their parts arrive one after the other."""

    def __init__(self) -> None:
        self.files: list[File] = []

    def __call__(self, chunk: bytes | None = None, metadata: PostMetadata | None = None) -> None:
        if metadata is not None:  # the first call of a part: its first chunk (maybe b"")
            self.files.append(File(metadata))
        current = self.files[-1]
        if chunk is None:  # called without arguments: the part has ended
            current.ended = True
            return
        current.chunks += metadata is None
        current.size += len(chunk)
        current.digest.update(chunk)


def upload(request: Request) -> None:
    files = Files()
    request.stream_post_params(r"^file", files)  # before the body is processed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, on Linux
    note = request.post_params.get("note", "")  # processes the whole body now
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(f"note: {note}\n")
    for file in files.files:
        meta = file.metadata
        request.send_data(
            f"{meta.field_name}: {meta.file_name} ({meta.content_type}), {file.size} bytes,"
            f" sha256 {file.digest.hexdigest()}, first call + {file.chunks} more,"
            f" {'ended' if file.ended else 'NOT ENDED'}\n")
    request.send_data(f"peak memory grew by {grown} KiB\n")
# --8<-- [end:upload]


def not_found(request: Request) -> None:
    request.send_status("404 Not Found")
    request.send_data(f"no page /{request.path}\n")


# --8<-- [start:app]
def app(request: Request) -> None:
    route = {"": index, "greet": greet, "upload": upload}.get(request.path or "", not_found)
    route(request)
# --8<-- [end:app]
