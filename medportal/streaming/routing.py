from django.urls import path

from medportal.dictation.consumers import DictationConsumer
from medportal.streaming.consumers import ReportStreamConsumer, WorklistConsumer

websocket_urlpatterns = [
    path("ws/reports/<int:report_id>/", ReportStreamConsumer.as_asgi(), name="ws-report"),
    path("ws/worklist/", WorklistConsumer.as_asgi(), name="ws-worklist"),
    path("ws/dictation/<int:report_id>/", DictationConsumer.as_asgi(), name="ws-dictation"),
]
