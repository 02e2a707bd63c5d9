"""Settings of the Django project that tests/layer3_http/test_django.py serves.

Production settings in small: DEBUG off, the hosts named, no database (the
CSRF token lives in a cookie, nothing needs a table). collectstatic copies
the static files into ``$DJANGO_PUBLIC/static``, a folder that
``python -m layer3_http --static $DJANGO_PUBLIC`` then serves at ``/static/``.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --8<-- [start:settings]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "a test key, never a production one")
ROOT_URLCONF = "django_app.urls"
WSGI_APPLICATION = "django_app.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}  # none needed: sessions and users are not used
INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
              "DIRS": [HERE / "templates"]}]
STATIC_URL = "/static/"
STATICFILES_DIRS = [HERE / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_PUBLIC", "/tmp/django-public")) / "static"
FILE_UPLOAD_TEMP_DIR = os.environ.get("DJANGO_UPLOADS")  # None: the system's temporary folder
# --8<-- [end:settings]
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"stderr": {"class": "logging.StreamHandler"}},
           "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}}}
