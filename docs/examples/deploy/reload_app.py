"""An application in two files, to watch a reload: it answers with ``version.NUMBER``.

``version.py`` sits next to it (the folder of a script TARGET is on
``sys.path``); rewrite it and send the master ``SIGUSR2``: the workers
of the new generation import it afresh. ``tests/layer3_http/test_reload_app.py``
serves this file across reloads.
"""

# --8<-- [start:app]
import version


def app(request):
    request.send_status("200 OK")
    request.send_data(f"version {version.NUMBER}\n")
# --8<-- [end:app]
