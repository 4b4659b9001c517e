"""The faces domain as the common domain interface sees it (stylediscover.domains.Domain), with the
options its shipped StyleGAN2 and predictor were trained with."""

from stylediscover.domains import Domain
from stylediscover.faces.factors import FACTORS
from stylediscover.faces.render import region_mask, render

GAN = {"domain": "faces", "resolution": 64, "z_dim": 128, "w_dim": 128, "mapping_layers": 4,
       "g_channels": {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}, "d_channels": {64: 32, 32: 64, 16: 128, 8: 128, 4: 128},
       "batch": 16, "steps": 60_000, "r1_gamma": 0.2}
PREDICTOR = {"domain": "faces", "resolution": 64, "channels": (16, 32, 64, 128, 128), "train_images": 40_000,
             "epochs": 12}

DOMAIN = Domain(name="faces", factors=FACTORS, resolution=64, render=render, region_mask=region_mask,
                gan=GAN, predictor=PREDICTOR)
