import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from medportal.accounts.websocket_auth import TokenOrSessionAuthMiddleware  # noqa: E402
from medportal.streaming.routing import websocket_urlpatterns  # noqa: E402
from medportal.streaming.security import browser_origin_validator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are the app's own CSS/JS only; uploads are never served from here.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": browser_origin_validator(TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
