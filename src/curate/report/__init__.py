"""Inspection helpers for notebooks: funnel tables, charts and samples rendered as HTML."""
