from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Browsers must come from one of our hosts (no cross-site websocket hijacking).

    A client that sends no Origin is not a browser (a script with a token), so no
    other site can act through it; it still has to authenticate.
    """

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def browser_origin_validator(application):
    return BrowserOriginValidator(application, settings.ALLOWED_HOSTS)
