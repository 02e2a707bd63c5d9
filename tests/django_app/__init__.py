"""A small Django project that tests/layer3_http/test_django.py serves with ``--wsgi``."""
