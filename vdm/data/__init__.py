"""Data: video sources -> deterministic webdataset shards -> clips and joint image+video batches.

``vdm.data.shard.shard_split`` (and ``vdm shard``) writes shards; ``vdm.data.loader.VideoLoader``
reads them; ``vdm.data.loader.eval_clips`` gives fixed evaluation clips. Imports are lazy.
"""

from vdm.data.config import DataConfig

__all__ = ["DataConfig"]
