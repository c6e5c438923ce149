"""Findings → CDS Hooks cards: summaries ≤ 139 characters, markdown detail, FHIR suggestions, links."""

from cards.models import Action, Card, CdsResponse, Suggestion
from cards.render import render_cards
from cards.suggestions import OrderContext

__all__ = ["Action", "Card", "CdsResponse", "OrderContext", "Suggestion", "render_cards"]
