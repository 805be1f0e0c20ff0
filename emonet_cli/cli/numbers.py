"""The one type of every number option that takes a fraction: finite, optionally bounded."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses `nan` and `inf`, as a usage error naming the option.

    A plain FloatRange lets NaN through any bounds (every comparison with NaN is false) and
    infinity through one-sided ones: a NaN threshold then silently means "always" or "never".
    Every float option of every command uses this type (tests/test_finite_options.py walks the
    command group to hold that)."""

    name = "float"

    def convert(self, value, param, ctx):
        number = click.types.FloatParamType.convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


class UsableLimitsType(click.ParamType):
    """`yaw=45,pitch=30,size=48,sharpness=35`: the limits within which a frame is usable
    (faces.quality.UsableLimits), any of them, the others at their defaults. A bad value
    (an unknown name, no number, NaN, infinity, a negative number) is a usage error naming
    the option."""

    name = "limits"

    def convert(self, value, param, ctx):
        from emonet_cli.faces.quality import UsableLimits, parse_limits

        if isinstance(value, UsableLimits):
            return value
        try:
            return parse_limits(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
