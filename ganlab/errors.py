"""The project's own exception types.

Core code raises these; only the CLI turns them into one-line messages.
Every message names the bad value and says what to do about it.
"""

from __future__ import annotations


class GanlabError(Exception):
    """Base class for every error a user can cause and fix."""


class PluginError(GanlabError):
    """A plugin could not be loaded, registered or found."""


class PluginValidationError(PluginError):
    """A plugin registered something that breaks the hook contract."""


class ConfigError(GanlabError):
    """An experiment configuration is invalid (bad name, value or combination)."""


class DatasetUnavailable(GanlabError):
    """A dataset cannot be loaded on this machine (missing file, no network)."""
