"""``{% communication_panel report %}``: the study page's critical results and follow-ups."""

from django import template

from medportal.communication.selectors import communication_context

register = template.Library()


@register.inclusion_tag("communication/panel.html", takes_context=True)
def communication_panel(context, report):
    return {**context.flatten(), **communication_context(report=report, user=context["request"].user)}
