"""The shapes domain as the common domain interface sees it (stylediscover.domains.Domain)."""

from stylediscover.domains import Domain
from stylediscover.shapes.factors import FACTORS
from stylediscover.shapes.render import render

DOMAIN = Domain(name="shapes", factors=FACTORS, resolution=32, render=render)
