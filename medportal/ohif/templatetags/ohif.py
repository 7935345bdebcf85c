from django import template

from medportal.imaging.models import Study
from medportal.ohif.links import viewer_url as _viewer_url

register = template.Library()


@register.filter
def viewer_url(study: Study) -> str:
    """``{{ study|viewer_url }}``: the OHIF Viewer opened on the study."""
    return _viewer_url(study)
