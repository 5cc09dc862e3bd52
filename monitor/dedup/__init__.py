"""Dedup stage: is this hit new, the same item again, or the same story again?

- :mod:`monitor.dedup.identity`: an item's identity key (one alert per item and rule).
- :mod:`monitor.dedup.similarity`: whether two headlines tell the same story (pure functions).
- :mod:`monitor.dedup.stories`: the per-rule index of recent stories that a new hit is checked
  against, so a story carried by five outlets alerts once.

This stage decides; it never touches the store or the network. The poll path records what it
decided, and delivery acts on it.
"""

from monitor.dedup.identity import GOOGLE_NEWS_HOSTS, Keyed, is_google_news, item_key, key_items

__all__ = ["GOOGLE_NEWS_HOSTS", "Keyed", "is_google_news", "item_key", "key_items"]
