"""The model families (see `registry`): `emonet/` is the published EmoNet; each family is a
package of its own beside it."""

from emonet_cli.models.registry import DEFAULT_FAMILY, FAMILIES, ModelFamily, family

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "ModelFamily", "family"]
