"""Three views: a page, a form posted with its CSRF token, and a file upload."""

import hashlib
import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods


def hello(request: HttpRequest) -> HttpResponse:
    """A page with a static stylesheet, and the worker that answered."""
    return render(request, "hello.html", {"pid": os.getpid()})


@require_http_methods(["GET", "POST"])
def form(request: HttpRequest) -> HttpResponse:
    """GET: the form with its CSRF token; POST (token checked by the middleware): a greeting."""
    if request.method == "POST":
        return HttpResponse(f"hello, {request.POST.get('name', '')}\n",
                            content_type="text/plain; charset=utf-8")
    return render(request, "form.html")


# --8<-- [start:upload]
@require_http_methods(["POST"])
def upload(request: HttpRequest) -> JsonResponse:
    """A multipart upload: the file's name, size and SHA-256, read in chunks."""
    uploaded = request.FILES["file"]
    digest = hashlib.sha256()
    for chunk in uploaded.chunks():
        digest.update(chunk)
    return JsonResponse({"name": uploaded.name, "size": uploaded.size,
                         "sha256": digest.hexdigest()})
# --8<-- [end:upload]
