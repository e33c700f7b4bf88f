"""The network-structure study's Tables 1-3 (Anderson, "Regularization and Applications of a Network
Structure Deep Image Prior"): images, levels, methods and the published PSNRs (dB), the one home of
these facts (../shared/reference/network-structure-dip.md).

Each table: `images` {name: (path under the standard test sets' folder, or "bundled:<file>" for
nasdip_jax/assets; channels)}, `level` (the swept quantity) with its `levels`, the study's `methods`
in its column order, and `published[(image, level)]`: the PSNRs in that order (`published_row`).
"""

DECONVOLUTION = dict(
    task="deblur", level="noise_std", levels=(1e-3, 1e-2, 1e-1),
    # "Parrots": Kodak's kodim23, not Set12/07 (on whole images, Wiener and TV-ADMM land within
    # 1.2 dB of the study's on kodim23 and 5-6 dB below on Set12/07: benchmarks/README.md)
    images={"house": ("BM3D/house.png", "gray"), "parrots": ("Kodak24/kodim23.png", "gray")},
    methods=("wiener", "admm_tv_5e-3", "admm_tv_5e-2", "wiener_ns"),
    blur_sigma=5.0,
    published={
        ("house", 1e-3): (24.9376, 23.5814, 22.4688, 24.8879),
        ("house", 1e-2): (23.5545, 23.5759, 22.4694, 23.4526),
        ("house", 1e-1): (18.1195, 23.0354, 22.3920, 17.6956),
        ("parrots", 1e-3): (26.6473, 25.9782, 25.2714, 25.7898),
        ("parrots", 1e-2): (25.8921, 25.9751, 25.2696, 25.2730),
        ("parrots", 1e-1): (19.6848, 25.3060, 25.1263, 19.5468),
    })

DENOISING = dict(
    task="denoise", level="noise_std", levels=(5e-3, 1e-2, 5e-2, 1e-1, 5e-1),
    images={"cameraman": ("BM3D/Cameraman256.png", "gray"), "hill": ("BM3D/hill.png", "gray"),
            "f16": ("Set9/image_F16_512rgb.png", "rgb"),
            "baboon": ("Set9/image_Baboon512rgb.png", "rgb")},
    methods=("nlm", "bm3d", "ns"),
    published={
        ("cameraman", 5e-3): (31.3169, 47.1748, 28.7472),
        ("cameraman", 1e-2): (31.2866, 42.4136, 28.6989),
        ("cameraman", 5e-2): (30.3413, 32.6561, 28.1155),
        ("cameraman", 1e-1): (26.8188, 29.1090, 27.12),
        ("cameraman", 5e-1): (9.0870, 18.5934, 18.17),
        ("hill", 5e-3): (32.1112, 46.4566, 29.6394),
        ("hill", 1e-2): (32.0878, 41.3285, 29.1170),
        ("hill", 5e-2): (31.3310, 32.5035, 29.5311),
        ("hill", 1e-1): (27.4636, 29.7353, 28.7299),
        ("hill", 5e-1): (9.0704, 20.9436, 19.0584),
        ("f16", 5e-3): (36.6710, 47.5239, 29.4907),
        ("f16", 1e-2): (36.5363, 43.1490, 29.2364),
        ("f16", 5e-2): (33.3319, 35.6655, 28.3844),
        ("f16", 1e-1): (26.6053, 32.6968, 28.5641),
        ("f16", 5e-1): (9.2171, 19.1744, 18.1657),
        ("baboon", 5e-3): (28.2113, 46.1411, 21.2136),
        ("baboon", 1e-2): (28.1641, 40.4113, 20.9389),
        ("baboon", 5e-2): (26.8323, 29.2229, 21.0951),
        ("baboon", 1e-1): (22.9737, 25.8018, 21.1132),
        ("baboon", 5e-1): (9.0955, 18.0825, 17.2367),
    })

SINGLE_PIXEL = dict(
    task="single_pixel", level="compression", levels=(1, 2, 4, 8),
    images={"logo": ("bundled:logo.png", "gray"), "barbara": ("Set14/barbara.png", "gray")},
    methods=("tv", "nlm", "bm3d", "ns"),
    published={
        ("logo", 1): (51.1815, 47.8160, 56.1739, 18.9983),
        ("logo", 2): (43.1129, 42.3209, 50.2682, 23.4179),
        ("logo", 4): (17.6178, 33.6182, 42.1280, 13.5192),
        ("logo", 8): (15.7656, 16.4523, 20.9842, 10.9844),
        ("barbara", 1): (38.1158, 40.1670, 41.6852, 23.3253),
        ("barbara", 2): (28.9712, 31.2341, 31.8059, 20.7045),
        ("barbara", 4): (23.7100, 25.4420, 26.2328, 19.0856),
        ("barbara", 8): (20.2931, 20.1481, 21.6473, 16.7318),
    })

TABLES = {"deconvolution": DECONVOLUTION, "denoising": DENOISING, "single_pixel": SINGLE_PIXEL}


def published_row(table: dict, image: str, level) -> dict:
  """{method: the study's PSNR} of one row of a table."""
  return dict(zip(table["methods"], table["published"][(image, level)]))
