"""matplotlib, when it is installed: figures are optional everywhere in minires (the lab, training curves,
graph drawings), so one place imports it, on the Agg backend (files only, no window)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
