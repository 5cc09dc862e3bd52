"""news-monitor: polls news feeds, matches watch rules, delivers each alert once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("news-monitor")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"
