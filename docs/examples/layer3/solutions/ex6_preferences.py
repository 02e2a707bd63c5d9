"""Exercise 6: a preference kept in a cookie, set by a form.

An HTTP application for the layer 3 command line. ``GET /`` shows a page
in the theme the ``theme`` cookie names (``light`` by default) with a
form to change it; ``POST /theme`` with the field ``theme`` (urlencoded
or multipart) sets the cookie and answers ``303 See Other`` with
``Location: /``, so that the browser loads the page again with ``GET``
and a reload does not post the form twice. An unknown theme is a 400.
Serve it with
``python -m layer3_http docs/examples/layer3/solutions/ex6_preferences.py --listen 127.0.0.1:0``.
"""

from __future__ import annotations

from layer3_http import Request

THEMES = {"light": ("white", "black"), "dark": ("#222", "#eee")}
PAGE = """<!doctype html>
<title>Preferences</title>
<body style="background: {background}; color: {color}">
<p>Theme: {theme}</p>
<form method="post" action="/theme">
  <select name="theme"><option>light</option><option>dark</option></select>
  <button>Save</button>
</form>
"""


# --8<-- [start:solution]
def page(request: Request) -> None:
    theme = request.cookies.get("theme", "light")
    if theme not in THEMES:  # a cookie is client input like any other
        theme = "light"
    background, color = THEMES[theme]
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/html; charset=utf-8")
    request.send_header("Vary", "Cookie")
    request.send_data(PAGE.format(theme=theme, background=background, color=color))


def set_theme(request: Request) -> None:
    theme = request.post_params.get("theme", "")
    if theme not in THEMES:
        request.send_status("400 Bad Request")
        request.send_data(f"unknown theme {theme!r}\n")
        return
    request.send_status("303 See Other")  # "now GET this": no double post on reload
    request.send_header("Location", "/")
    request.send_header("Set-Cookie",
                        f"theme={theme}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly")


def app(request: Request) -> None:
    if request.path == "theme" and request.method == "POST":
        set_theme(request)
    elif request.path == "":
        page(request)
    else:
        request.send_status("404 Not Found")
        request.send_data("not found\n")
# --8<-- [end:solution]
