"""A float type for bounded config fields: a NaN or infinite value is named as "not a finite number" (the message
sweep specs use for any non-finite option) before the field's range is checked."""

import math
from typing import Annotated, Any

from pydantic import BeforeValidator


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


FiniteFloat = Annotated[float, BeforeValidator(_finite)]
