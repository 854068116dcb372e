"""The wind tunnel: train small transformers on real text to produce and verify loss curves.

The small-scale-proxy idea (Wortsman et al. 2023, arXiv:2309.14322; MiniCPM's "model wind tunnel",
Hu et al. 2024, arXiv:2404.06395): train small language models under any lrlab schedule, log what
the laws and the stability diagnostics need, and survive being killed.

Modules: `config` (settings, validation), `data` (corpora, tokenisers, cache, batches), `model`
(the transformer), `optim` (AdamW groups), `train` (the loop), `distributed` (one run on
several processes), `checkpoint`, `record` (logs), `threads` (how many CPU threads a run uses),
`pool` (runs trained at once), `sweep`. All but
`config`, `threads` and `pool` need PyTorch (``pip install 'lrlab[torch]'``), which is why this
package imports only the config:

>>> from lrlab.tunnel import config_from_dict
>>> from lrlab.tunnel.train import train
>>> record = train(config_from_dict({"train": {"steps": 200}}), "runs/first")  # doctest: +SKIP
"""

from lrlab.tunnel.config import Config, apply_overrides, config_from_dict, load_config

__all__ = ["Config", "apply_overrides", "config_from_dict", "load_config"]
