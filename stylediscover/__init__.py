"""stylediscover: learned semantic directions for StyleGAN generators (ContraFeat), swept with Ray Tune."""

__version__ = "0.1.0"
