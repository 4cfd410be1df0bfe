"""Settings of one HWC3D instance, read from environment variables.

`load_settings()` is the only entry point; nothing else in the project reads `os.environ`.
"""
from config.settings import ConfigError, RateLimit, Settings, load_settings, refuse_seed_in_production

__all__ = ["ConfigError", "RateLimit", "Settings", "load_settings", "refuse_seed_in_production"]
