"""NAS-DIP's three published searched architectures (DIP/models/model_{task}.py)."""

from nasdip_jax.space import genotype as gt

_ROWS = {  # connection rows r = 0 (full resolution) .. 4 (H/16); columns z, enc1..enc4
    "nasdip_denoise": (158, ("11111", "01111", "00111", "00011", "00001")),
    "nasdip_inpaint": (86, ("11000", "01100", "10110", "01011", "00101")),
    "nasdip_sr": (119, ("10010", "11001", "01100", "00110", "00011")),
}

PUBLISHED = {name: gt.Genotype(gt.cell_from_id(cid), tuple(tuple(int(b) for b in row)
                                                           for row in rows))
             for name, (cid, rows) in _ROWS.items()}
