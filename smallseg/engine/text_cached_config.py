"""A Config that formats its text once: mmengine's Runner puts it in every checkpoint."""
from __future__ import annotations

from mmengine.config import Config


class TextCachedConfig(Config):
    """:class:`Config` whose :attr:`pretty_text` is formatted once per content.

    ``Runner.save_checkpoint`` stores ``cfg.pretty_text`` in each checkpoint, and yapf takes
    about 0.3 s to format a model config: two saves per improving epoch cost 0.6 s. The text
    is formatted again only when the config's content changes.
    """

    @classmethod
    def cache_text(cls, cfg: Config) -> 'TextCachedConfig':
        """Make ``cfg`` itself cache its text (its class changes in place): whatever holds
        the config, such as the run's tracker, keeps the same object."""
        if not isinstance(cfg, cls):
            object.__setattr__(cfg, '__class__', cls)  # Config.__setattr__ sets keys
        return cfg

    @property
    def pretty_text(self) -> str:
        key = repr(self._cfg_dict)
        cached = self.__dict__.get('_text_cache')
        if cached is None or cached[0] != key:
            cached = (key, Config.pretty_text.fget(self))
            super(Config, self).__setattr__('_text_cache', cached)
        return cached[1]
