"""The redis backend (:mod:`.redis`): sealed values in Redis or Valkey, shared by every worker and host."""
from dash_state.backends.redis.redis import RedisBackend, from_config, mask_url, parse_url

__all__ = ["RedisBackend", "from_config", "mask_url", "parse_url"]
