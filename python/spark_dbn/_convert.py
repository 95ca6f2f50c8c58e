"""How a user's value becomes a param's (the typed converters PySpark lacks)."""


def to_schedule(value):
    """A step size or momentum (the JVM's ScheduleParam): a number, a schedule string 'epoch:value,...', a dict
    {epoch: value} or a list of (epoch, value) pairs; the JVM checks the values' range."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"Could not convert {value!r} to a schedule: a number, 'epoch:value,...', a dict or (epoch, value) pairs")
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, dict):
        value = sorted(value.items())
    try:
        pairs = [(int(e), float(v)) for e, v in value]
    except (TypeError, ValueError):
        raise TypeError(f"Could not convert {value!r} to a schedule: a number, 'epoch:value,...', a dict or "
                        "(epoch, value) pairs") from None
    return ",".join(f"{e}:{_number(v)}" for e, v in pairs)


def _number(v) -> str:
    """A number as the JVM writes it in a schedule: 1 as "1", 0.05 as "0.05"."""
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
