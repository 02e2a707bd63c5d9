#!/bin/sh
# Serve the Django project of tests/django_app with layer 3; run from tests/.
# tests/layer3_http/test_django.py runs these same command lines (on port 0).
set -e
export DJANGO_SETTINGS_MODULE=django_app.settings
export DJANGO_PUBLIC=/tmp/django-public
# --8<-- [start:collectstatic]
python -m django collectstatic --noinput
# --8<-- [end:collectstatic]
# --8<-- [start:serve]
python -m layer3_http --wsgi django_app.wsgi:application --listen 127.0.0.1:8000 --workers 4 &
python -m layer3_http --static "$DJANGO_PUBLIC" --listen 127.0.0.1:8001
# --8<-- [end:serve]
